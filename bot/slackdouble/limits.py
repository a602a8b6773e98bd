"""Slack's rate limits as token buckets judged against the injected clock.

Each Web API method has a tier, a budget per workspace per minute (Tier 2: 20, Tier 3: 50,
Tier 4: 100); Slack tolerates short bursts, so a method's bucket holds a full minute's
budget and refills evenly (Tier 3: one call every 1.2 s). `chat.postMessage` is limited
per channel instead: about one message a second "with short bursts tolerated", modelled
as a bucket of 3 refilling one a second; its workspace-wide limit is unpublished and not
modelled. Over a limit the caller gets `Retry-After`: whole seconds until a call fits
again, at least 1, as Slack sends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

TIERS: dict[str, int] = {
    "usergroups.users.list": 20,
    "chat.update": 50,
    "chat.delete": 50,
    "chat.getPermalink": 50,
    "conversations.info": 50,
    "chat.postEphemeral": 100,
    "views.open": 100,
    "views.update": 100,
    "views.push": 100,
    "views.publish": 100,
    "users.info": 100,
    "auth.test": 100,
}
POST_BURST = 3
POST_PER_SECOND = 1.0


@dataclass
class _Bucket:
    capacity: float
    per_second: float
    tokens: float
    at: float

    def take(self, now: float) -> int | None:
        """Spend one token; when none is left, the whole seconds to wait for one."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return max(1, math.ceil((1 - self.tokens) / self.per_second))


class RateLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def retry_after(self, method: str, channel: str = "") -> int | None:
        """Count one call; None when it is within the limit, else Retry-After seconds."""
        if method == "chat.postMessage":
            key, capacity, rate = (method, channel), POST_BURST, POST_PER_SECOND
        elif method in TIERS:
            key, capacity, rate = (method, ""), TIERS[method], TIERS[method] / 60
        else:
            return None
        now = self._clock()
        bucket = self._buckets.setdefault(key, _Bucket(capacity, rate, capacity, now))
        return bucket.take(now)
