"""Sessions to the pool master: timeouts, TLS, originator, HOST_IS_SLAVE, a bounded pool.

The XenAPI client has no timeouts, is not thread-safe and does not follow HOST_IS_SLAVE.
`Xapi` gives each caller a session of its own from a small pool (xapi evicts beyond 500
sessions per originator, so we never open one per call), follows a master change by
reconnecting with XEN_URL's scheme and port, and turns every error into `bot.xen.errors`.
"""

from __future__ import annotations

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

from bot.xen.errors import XapiFailure, XapiUnavailable

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


class Xapi:
    """Calls to one pool through a bounded pool of logged-in sessions."""

    def __init__(self, config: XenConfig, max_sessions: int = 8) -> None:
        self.config = config
        self.stats = XapiStats()
        self._url = config.url.rstrip("/")
        self._idle: queue.LifoQueue[XenAPI.Session] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_sessions)
        self._lock = threading.Lock()
        self._open: list[XenAPI.Session] = []
        if config.url.startswith("https") and not config.verify_tls:
            log.warning("XEN_VERIFY_TLS is off: the pool's certificate is not checked")

    @property
    def url(self) -> str:
        """The current master's URL (changes when the master moves)."""
        return self._url

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(session.xenapi)` on a pooled session, following a master change once."""
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
                self._discard(session)
                self.stats.unavailable += 1
                raise _unavailable(error) from None
            except BaseException:  # the caller's own error (a typo'd name): the session is fine
                self._checkin(session)
                raise
            self._checkin(session)
            return result
        raise XapiUnavailable("the pool master keeps moving; try again")

    def open_session(self, timeout: float | None = None) -> XenAPI.Session:
        """A session outside the pool (the event watcher's own, with its longer timeout)."""
        for _ in range(MAX_MASTER_HOPS):
            try:
                return self._login(timeout or self.config.timeout)
            except XenAPI.Failure as failure:
                if failure.details and failure.details[0] == "HOST_IS_SLAVE":
                    self._follow(failure.details)
                    continue
                raise XapiFailure(failure.details) from None
            except NETWORK_ERRORS as error:
                raise _unavailable(error) from None
        raise XapiUnavailable("the pool master keeps moving; try again")

    def end_session(self, session: XenAPI.Session) -> None:
        """Log out of a session from `open_session`."""
        with self._lock:
            if session in self._open:
                self._open.remove(session)
        _logout(session)

    def close(self) -> None:
        """Log out of every session (xapi keeps them 24 h otherwise)."""
        with self._lock:
            sessions, self._open = self._open, []
        for session in sessions:
            _logout(session)

    def _login(self, timeout: float) -> XenAPI.Session:
        transport = _transport(self._url, self.config, timeout, self.stats)
        session = XenAPI.Session(self._url, transport=transport)
        try:
            session.xenapi.login_with_password(
                self.config.username, self.config.password, "2.0", ORIGINATOR
            )
        except BaseException:
            session("close")()
            raise
        with self._lock:
            self._open.append(session)
        return session

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
            if session in self._open:
                self._open.remove(session)
        session("close")()
        self._slots.release()

    def _follow(self, details: list[str]) -> None:
        """Reconnect to the master HOST_IS_SLAVE names, with XEN_URL's scheme and port."""
        master = details[1] if len(details) > 1 else ""
        if not master:
            raise XapiUnavailable("a pool member answered, but did not name its master")
        parts = urlsplit(self.config.url)
        host = f"[{master}]" if ":" in master else master
        netloc = f"{host}:{parts.port}" if parts.port else host
        new_url = urlunsplit((parts.scheme, netloc, "", "", "")).rstrip("/")
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
