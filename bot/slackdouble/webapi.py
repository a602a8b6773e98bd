"""`SlackDouble`: Slack's Web API, response_urls and Socket Mode on 127.0.0.1.

The bot's real `WebClient(base_url=double.api_url)` and Socket Mode client talk to it over
HTTP and WebSocket; it records every call and keeps what Slack would show, so a test
asserts on what Slack saw rather than on mocks. Each call meets, in this order: a queued
fault (`fail_next`, `drop_next`), an unknown method, the token check, the rate limit
(`enforce_limits`), then the method itself (`methods`). One lock serialises calls and
reads; tests get copies.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from bot.slackdouble.faults import ERRORS, Faults
from bot.slackdouble.limits import RateLimiter
from bot.slackdouble.methods import METHODS, answer
from bot.slackdouble.responses import ResponseUrls
from bot.slackdouble.socket import SocketModeServer
from bot.slackdouble.state import JSON, Call, Ephemeral, Identity, Message, Response, Workspace
from bot.slackdouble.transcript import Names, render, render_view
from bot.slackdouble.wire import Answer, HttpServer, json_object


class SlackDouble:
    """A Slack workspace with one bot in it. `start()` it (or use `with`) before use."""

    def __init__(
        self,
        token: str = "xoxb-test",
        app_token: str = "xapp-test",
        *,
        users: Mapping[str, str] | None = None,
        usergroups: Mapping[str, list[str]] | None = None,
        channels: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        enforce_limits: bool = False,
    ) -> None:
        self.token = token
        self.app_token = app_token
        self.identity = identity = Identity()
        self.enforce_limits = enforce_limits
        self.socket = SocketModeServer(identity.app_id)
        self._clock = clock
        self._workspace = Workspace(
            identity=identity,
            users=users or {},
            usergroups=usergroups or {},
            channels=channels or {},
            clock=clock,
        )
        self._lock = threading.Lock()
        self._faults = Faults()
        self._limiter = RateLimiter(clock)
        self._calls: list[Call] = []
        self._rate_limited = 0
        self._response_urls = ResponseUrls(clock)
        self._http: HttpServer | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> SlackDouble:
        self._http = HttpServer(self._api, self._respond)
        self._http.start()
        self.socket.start()
        return self

    def stop(self) -> None:
        self.socket.stop()
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self) -> SlackDouble:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """The `base_url` for `WebClient`: "http://127.0.0.1:PORT/api/"."""
        return f"{self._base()}/api/"

    def _base(self) -> str:
        if self._http is None:
            raise RuntimeError("the Slack double is not started")
        return f"http://127.0.0.1:{self._http.port}"

    # -- what tests arrange ---------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        channel: str | None = None,
    ) -> None:
        """The next `times` calls of `method` (in `channel`, if given) get HTTP `status`
        (429, 500 or 503)."""
        with self._lock:
            self._faults.fail_next(method, status, retry_after, times, channel)

    def drop_next(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` see the connection closed without an answer."""
        with self._lock:
            self._faults.drop_next(method, times)

    def clear_faults(self) -> None:
        """Forget every queued fault (Slack has recovered)."""
        with self._lock:
            self._faults.clear()

    def response_url(self, key: str) -> str:
        """A response_url for a payload: 5 uses within 30 minutes of this call."""
        with self._lock:
            self._response_urls.issue(key)
        return f"{self._base()}/response/{key}"

    def trigger_id(self, view_id: str | None = None) -> str:
        """A trigger_id for a payload: one use within 3 s; `view_id` when pressed in a modal."""
        with self._lock:
            return self._workspace.issue_trigger(view_id)

    # -- what tests read ----------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    @property
    def rate_limited(self) -> int:
        """How many calls got HTTP 429 from the enforced limits (faults not counted)."""
        with self._lock:
            return self._rate_limited

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages in `channel`, oldest first (copies)."""
        return [m for m in self._channel(channel) if m.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self._channel(channel) if m.thread_ts == thread_ts]

    def message(self, channel: str, ts: str) -> Message:
        found = [m for m in self._channel(channel) if m.ts == ts]
        if not found:
            raise KeyError(f"no message {ts} in {channel}")
        return found[0]

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [e for e in self._workspace.ephemerals if user in (None, e.user)]

    @property
    def responses(self) -> list[Response]:
        with self._lock:
            return list(self._response_urls.accepted)

    @property
    def views(self) -> dict[str, JSON]:
        """Every view opened, pushed or updated, by id, as it is now."""
        with self._lock:
            return copy.deepcopy(self._workspace.views)

    @property
    def homes(self) -> dict[str, JSON]:
        """Each user's Home tab as views.publish last set it, by user id."""
        with self._lock:
            return copy.deepcopy(self._workspace.homes)

    def transcript(self, channel: str, handles: Mapping[str, str] | None = None) -> str:
        """The channel as a person reads it; `handles` maps user-group ids to handles."""
        return render(self._channel(channel), self._names(handles))

    def home_transcript(self, user: str, handles: Mapping[str, str] | None = None) -> str:
        """`user`'s Home tab as they read it ("" before anything was published)."""
        home = self.homes.get(user)
        return render_view(home["blocks"], self._names(handles)) if home else ""

    def _names(self, handles: Mapping[str, str] | None) -> Names:
        ws = self._workspace
        users = {**ws.users, self.identity.bot_user_id: "migrate-bot"}
        return Names(users=users, handles=handles or {}, channels=ws.channels)

    def _channel(self, channel: str) -> list[Message]:
        with self._lock:
            if channel not in self._workspace.channels:
                raise KeyError(f"unknown channel {channel}")
            return copy.deepcopy(self._workspace.in_channel(channel))

    # -- what the HTTP handler calls ----------------------------------------------------

    def _api(self, method: str, args: JSON, token: str) -> Answer:
        with self._lock:
            channel = str(args.get("channel", ""))
            answered = self._fault(method, channel) or self._api_answer(method, args, token)
            self._record(method, args, answered)
            return answered

    def _api_answer(self, method: str, args: JSON, token: str) -> Answer:
        if method not in METHODS and method != "apps.connections.open":
            return Answer(200, {"ok": False, "error": "unknown_method", "req_method": method})
        expected = self.app_token if method == "apps.connections.open" else self.token
        if token != expected:
            known = token in (self.token, self.app_token)
            error = "not_allowed_token_type" if known else "invalid_auth" if token else "not_authed"
            return Answer(200, {"ok": False, "error": error})
        if self.enforce_limits:
            wait = self._limiter.retry_after(method, str(args.get("channel", "")))
            if wait is not None:
                self._rate_limited += 1
                return _failure(429, wait)
        if method == "apps.connections.open":
            return Answer(200, {"ok": True, "url": self.socket.issue_url()})
        return Answer(200, answer(self._workspace, method, args))

    def _respond(self, key: str, body: bytes) -> Answer:
        payload = json_object(body)
        with self._lock:
            answered = self._fault("response_url")
            if answered is None:
                answered = Answer(*self._response_urls.post(key, payload))
            self._record("response_url", {"key": key, **(payload or {})}, answered)
            return answered

    def _fault(self, method: str, channel: str | None = None) -> Answer | None:
        fault = self._faults.take(method, channel)
        if fault is None:
            return None
        return Answer(0, {}) if fault.status == 0 else _failure(fault.status, fault.retry_after)

    def _record(self, method: str, args: JSON, answered: Answer) -> None:
        self._calls.append(Call(method, args, self._clock(), answered.status))


def _failure(status: int, retry_after: int) -> Answer:
    headers = {"Retry-After": str(retry_after)} if status == 429 else {}
    return Answer(status, {"ok": False, "error": ERRORS[status]}, headers)
