"""Sessions to the pool master: timeouts, TLS, originator, HOST_IS_SLAVE, a bounded pool.

The XenAPI client has no timeouts, is not thread-safe and does not follow HOST_IS_SLAVE.
`Xapi` gives each caller a session of its own from a small pool (xapi evicts beyond 500
sessions per originator, so we never open one per call), follows a master change by
reconnecting with XEN_URL's scheme and port, and turns every error into `bot.xen.errors`.
When the master refuses connections it asks the members it knows who the master is now;
promoting one (emergency transition) is a person's decision, so it only says so.
"""

from __future__ import annotations

import errno
import http.client
import logging
import queue
import socket
import ssl
import threading
import xmlrpc.client
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import XenAPI

from bot.errors import XapiFailure, XapiUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
ORIGINATOR = "migrate-bot"
MAX_MASTER_HOPS = 3


@dataclass(frozen=True)
class XenConfig:
    url: str
    username: str
    password: str
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout: float = 30.0


@dataclass
class XapiStats:
    """What the pool master saw from us: every XML-RPC request, and the failures by code."""

    calls: int = 0
    answered: int = 0  # calls the master answered (with a result or a XAPI failure)
    failures: Counter[str] = field(default_factory=Counter)
    unavailable: int = 0


def _transport(
    url: str, config: XenConfig, timeout: float, stats: XapiStats | None = None
) -> xmlrpc.client.Transport:
    """A transport with a socket timeout, verifying TLS unless told not to."""

    base = xmlrpc.client.SafeTransport if url.startswith("https") else xmlrpc.client.Transport

    class _Timed(base):  # type: ignore[misc, valid-type]
        def make_connection(self, host: Any) -> http.client.HTTPConnection:
            connection = super().make_connection(host)
            connection.timeout = timeout
            return connection

        def single_request(self, *args: Any, **kwargs: Any) -> Any:
            if stats is not None:
                stats.calls += 1
            answer = super().single_request(*args, **kwargs)
            if stats is not None:
                stats.answered += 1
            return answer

    if not url.startswith("https"):
        return _Timed()
    if config.verify_tls:
        context = ssl.create_default_context(cafile=config.ca_bundle)
    else:
        context = ssl._create_unverified_context()  # explicit opt-out, logged at start-up
    return _Timed(context=context)


def _unavailable(error: BaseException) -> XapiUnavailable:
    return XapiUnavailable(f"XAPI did not answer: {type(error).__name__}: {error}")


NETWORK_ERRORS = (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError, socket.timeout)
UNREACHED = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})


def _unreached(error: BaseException) -> bool:
    """Refused or unreachable: the request never got to xapi (unlike a reset or a timeout,
    which a slow or restarting master also gives), so the host is down and asking another
    host, then replaying the request, is safe."""
    return isinstance(error, OSError) and error.errno in UNREACHED


class Xapi:
    """Calls to one pool through a bounded pool of logged-in sessions."""

    def __init__(self, config: XenConfig, max_sessions: int = 8) -> None:
        self.config = config
        self.stats = XapiStats()
        self._url = config.url.rstrip("/")
        self._idle: queue.LifoQueue[XenAPI.Session] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_sessions)
        self._lock = threading.Lock()
        self._open: dict[XenAPI.Session, str] = {}  # session -> the URL it logged in at
        self._hosts: dict[str, str] = {}  # every host's address -> name, read at login
        if config.url.startswith("https") and not config.verify_tls:
            log.warning("XEN_VERIFY_TLS is off: the pool's certificate is not checked")

    @property
    def url(self) -> str:
        """The current master's URL (changes when the master moves)."""
        return self._url

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(session.xenapi)` on a pooled session, following the master when it moves
        or dies (a request that never reached xapi is sent again, to the new master)."""
        for _ in range(MAX_MASTER_HOPS):
            session = self._checkout()
            try:
                result = fn(session.xenapi)
            except XenAPI.Failure as failure:
                self._checkin(session)
                self.stats.failures[str((failure.details or ["?"])[0])] += 1
                if failure.details and failure.details[0] == "HOST_IS_SLAVE":
                    self._follow(failure.details)
                    continue
                raise XapiFailure(failure.details) from None
            except xmlrpc.client.Fault as fault:  # the client's own: re-login failed
                self._discard(session)
                raise XapiUnavailable(
                    f"XAPI session could not be renewed: {fault.faultString}"
                ) from None
            except NETWORK_ERRORS as error:
                failed = self._open.get(session, self._url)
                self._discard(session)
                self.stats.unavailable += 1
                if not _unreached(error):
                    raise _unavailable(error) from None
                self._find_master(error, failed)
                continue
            except BaseException:  # the caller's own error (a typo'd name): the session is fine
                self._checkin(session)
                raise
            self._checkin(session)
            return result
        raise XapiUnavailable("the pool master keeps moving; try again")

    def open_session(self, timeout: float | None = None) -> XenAPI.Session:
        """A session outside the pool (the event watcher's own, with its longer timeout)."""
        for _ in range(MAX_MASTER_HOPS):
            url = self._url
            try:
                return self._login(url, timeout or self.config.timeout)
            except XenAPI.Failure as failure:
                if failure.details and failure.details[0] == "HOST_IS_SLAVE":
                    self._follow(failure.details)
                    continue
                raise XapiFailure(failure.details) from None
            except NETWORK_ERRORS as error:
                if not _unreached(error):
                    raise _unavailable(error) from None
                self._find_master(error, url)
        raise XapiUnavailable("the pool master keeps moving; try again")

    def end_session(self, session: XenAPI.Session) -> None:
        """Log out of a session from `open_session`."""
        with self._lock:
            self._open.pop(session, None)
        _logout(session)

    def close(self) -> None:
        """Log out of every session (xapi keeps them 24 h otherwise)."""
        with self._lock:
            sessions, self._open = list(self._open), {}
        for session in sessions:
            _logout(session)

    def _login(self, url: str, timeout: float) -> XenAPI.Session:
        transport = _transport(url, self.config, timeout, self.stats)
        session = XenAPI.Session(url, transport=transport)
        try:
            session.xenapi.login_with_password(
                self.config.username, self.config.password, "2.0", ORIGINATOR
            )
        except BaseException:
            session("close")()
            raise
        with self._lock:
            self._open[session] = url
        self._remember_hosts(session)
        return session

    def _remember_hosts(self, session: XenAPI.Session) -> None:
        """Note every host's address while the master answers: if it dies, the members
        are the ones to ask. Best effort: the login itself worked."""
        try:
            records = session.xenapi.host.get_all_records()
        except (XenAPI.Failure, xmlrpc.client.Fault, *NETWORK_ERRORS) as error:
            log.info("could not read the pool's hosts: %s", error)
            return
        self._hosts = {record["address"]: record["name_label"] for record in records.values()}

    def _checkout(self) -> XenAPI.Session:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        if not self._slots.acquire(timeout=self.config.timeout):
            raise XapiUnavailable("no free XAPI session (all busy)")
        try:
            return self.open_session()
        except BaseException:
            self._slots.release()
            raise

    def _checkin(self, session: XenAPI.Session) -> None:
        self._idle.put(session)

    def _discard(self, session: XenAPI.Session) -> None:
        with self._lock:
            self._open.pop(session, None)
        session("close")()
        self._slots.release()

    def _follow(self, details: list[str]) -> None:
        """Reconnect to the master HOST_IS_SLAVE names."""
        master = details[1] if len(details) > 1 else ""
        if not master:
            raise XapiUnavailable("a pool member answered, but did not name its master")
        self._move_to(master)

    def _find_master(self, error: OSError, failed: str) -> None:
        """The master at `failed` is down: move to the master a member names, or to a
        member that logs us in (it was made master). Raise when no member answers, or when
        they all still name the dead master: only a person should promote one."""
        if failed != self._url:
            return  # another call found the master meanwhile: try there
        dead = urlsplit(failed).hostname or ""
        answered = False
        for address in sorted(self._hosts.keys() - {dead}):
            master = self._ask(address)
            if master is not None and master != dead:
                self._move_to(master)
                return
            answered = answered or master is not None
        if not answered:
            raise _unavailable(error) from None
        name = self._hosts.get(dead)
        raise XapiUnavailable(
            f"the pool master {f'{name} ({dead})' if name else dead} is down and no member "
            "took over: if it stays down, run `xe pool-emergency-transition-to-master` on a "
            "member"
        ) from None

    def _ask(self, address: str) -> str | None:
        """Who `address` says the master is: itself if it logs us in (or refuses us as only
        a master would), the address in its HOST_IS_SLAVE, None if it does not answer."""
        url = self._url_of(address)
        session = XenAPI.Session(url, transport=_transport(url, self.config, self.config.timeout))
        try:
            session.xenapi.login_with_password(
                self.config.username, self.config.password, "2.0", ORIGINATOR
            )
        except XenAPI.Failure as failure:
            session("close")()
            slave = failure.details[0] == "HOST_IS_SLAVE" and len(failure.details) > 1
            return failure.details[1] if slave else address
        except (xmlrpc.client.Fault, *NETWORK_ERRORS):
            session("close")()
            return None
        _logout(session)
        return address

    def _url_of(self, address: str) -> str:
        """The URL of the host at `address`, with XEN_URL's scheme and port."""
        parts = urlsplit(self.config.url)
        host = f"[{address}]" if ":" in address else address
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, "", "", "")).rstrip("/")

    def _move_to(self, master: str) -> None:
        new_url = self._url_of(master)
        log.warning("pool master moved: reconnecting to %s", new_url)
        with self._lock:
            self._url = new_url
        while True:
            try:
                self._discard(self._idle.get_nowait())
            except queue.Empty:
                break


def _logout(session: XenAPI.Session) -> None:
    try:
        session.xenapi.session.logout()
    except (XenAPI.Failure, xmlrpc.client.Fault, *NETWORK_ERRORS):
        pass  # the session is gone either way
    finally:
        session("close")()
