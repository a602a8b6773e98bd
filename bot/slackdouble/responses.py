"""response_url bookkeeping: Slack honours each URL at most 5 times within 30 minutes.

Accepted posts are kept as `Response` records; their effects (an ephemeral reply, a
replaced or deleted original) are not applied to the channel, so tests assert on the
records. Slack does not document the refusals' bodies; the double answers 404 with
`used_url`, `expired_url`, or `no_service` for a URL it never issued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.slackdouble.state import JSON, Response

USES = 5
TTL_S = 30 * 60


@dataclass
class _Url:
    issued_at: float
    uses: int = 0


class ResponseUrls:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._urls: dict[str, _Url] = {}
        self.accepted: list[Response] = []

    def issue(self, key: str) -> None:
        self._urls.setdefault(key, _Url(self._clock()))

    def post(self, key: str, payload: JSON | None) -> tuple[int, JSON]:
        """Status and JSON answer to one post of `payload` (None: not a JSON object)."""
        url = self._urls.get(key)
        now = self._clock()
        if url is None:
            return 404, {"ok": False, "error": "no_service"}
        if now - url.issued_at > TTL_S:
            return 404, {"ok": False, "error": "expired_url"}
        if url.uses >= USES:
            return 404, {"ok": False, "error": "used_url"}
        if payload is None:
            return 400, {"ok": False, "error": "invalid_payload"}
        url.uses += 1
        self.accepted.append(Response(key, url.uses, payload, now))
        return 200, {"ok": True}
