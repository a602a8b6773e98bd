"""Faults a test asks for: the next calls of a method fail with an HTTP error or get no answer.

`fail_next` answers like Slack under load: 429 with `Retry-After` and `ratelimited`,
500 `internal_error`, 503 `service_unavailable`; given a channel, only that channel's calls
meet it (Slack limits posts per channel), before the method's faults for any channel.
`drop_next` closes the connection without a response: urllib raises
`http.client.RemoteDisconnected` (not wrapped in `URLError`), which slack_sdk's default
`ConnectionErrorRetryHandler` retries once.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

ERRORS = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}


@dataclass(frozen=True)
class Fault:
    status: int  # 0: drop the connection
    retry_after: int = 0


class Faults:
    def __init__(self) -> None:
        self._queued: defaultdict[tuple[str, str | None], deque[Fault]] = defaultdict(deque)

    def fail_next(
        self, method: str, status: int, retry_after: int, times: int, channel: str | None = None
    ) -> None:
        if status not in ERRORS:
            raise ValueError(f"status must be one of {sorted(ERRORS)}, not {status}")
        self._queued[method, channel].extend([Fault(status, retry_after)] * times)

    def drop_next(self, method: str, times: int) -> None:
        self._queued[method, None].extend([Fault(0)] * times)

    def clear(self) -> None:
        """Slack is healthy again: every queued fault is forgotten."""
        self._queued.clear()

    def take(self, method: str, channel: str | None = None) -> Fault | None:
        """The fault this call of `method` in `channel` meets, if any; each one is used once."""
        for key in ((method, channel), (method, None)):
            if queued := self._queued.get(key):
                return queued.popleft()
        return None
