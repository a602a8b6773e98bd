"""One queue for every Slack Web API call the bot makes on its own (not replies to a press).

Slack's budget is per workspace and per channel, so one worker sends in priority order:
a busy channel's board, outcomes, then step changes and request messages, then progress
edits, and paces each call to its method's limit (a token bucket per channel for posts,
one for the workspace's edits), so it does not send what Slack would refuse with a 429.
Below the first rank (a board, an outcome), every call leaves `RESERVE` calls of its
budget unspent, so the first rank rarely waits for a call something else just took. A
job with a `key` is coalesced: queuing it again replaces what it will send but keeps its
place, and paced jobs (progress, by default) are spaced `min_interval` apart, so a
migration reporting progress every second costs one edit every few seconds.

A 429 is not slept through here (one channel's Retry-After would hold every channel): the
job goes back to its place and its lane waits out Retry-After, so the lane's later jobs
(that channel's thread lines, or the workspace's edits) stay behind it while the other
lanes go on; a job without a lane waits alone. A 429 is never a failed try. slack_sdk's
handlers retry 5xx; a job that still fails is retried with back-off until it gets through
or `attempts` run out (a Slack outage must not cost the final state).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError

from bot.metrics import WAIT_OUT_429

log = logging.getLogger(__name__)

BOARD, OUTCOME, STEP, PROGRESS = -1, 0, 1, 2
RESERVE = 1.0  # calls of each budget that step changes and progress leave for the first rank
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "message_not_found",
    "invalid_blocks",
    "msg_too_long",
    "invalid_auth",
    "account_inactive",
}


# Slack's published limits, as token buckets (per second, burst), with a margin for the
# jitter between our clock and Slack's: posting is about one message a second per
# channel; chat.update is Tier 3 (50 a minute) for the workspace; views.publish (the Home
# tab) Tier 4 (100 a minute).
LANES: dict[str, tuple[float, float]] = {
    "post": (0.9, 2.0),
    "update": (45 / 60, 4.0),
    "views": (90 / 60, 5.0),
}


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    at: float

    def ready_in(self, now: float, need: float = 1.0) -> float:
        """Seconds until `need` calls fit the budget (0: now)."""
        tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        return 0.0 if tokens >= need else (need - tokens) / self.rate

    def take(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate) - 1
        self.at = now


@dataclass
class _Job:
    priority: int
    seq: int
    send: Callable[[], None]
    key: str | None = None
    lane: str | None = None  # "post:C123" or "update": whose budget the call spends
    not_before: float = 0.0
    tries: int = 0


@dataclass
class Outbox:
    min_interval: float = 3.0  # between two sends of one keyed job (a progress message)
    retry_seconds: float = 2.0
    attempts: int = 30
    monotonic: Callable[[], float] = time.monotonic
    _jobs: list[_Job] = field(default_factory=list)
    _keyed: dict[str, _Job] = field(default_factory=dict)
    _last_sent: dict[str, float] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _held: dict[str, float] = field(default_factory=dict)  # lane -> when its Retry-After ends
    _seq: itertools.count = field(default_factory=itertools.count)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _busy: bool = False
    _stopping: bool = False
    _thread: threading.Thread | None = None

    def start(self) -> Outbox:
        self._thread = threading.Thread(target=self._work, name="slack-outbox", daemon=True)
        self._thread.start()
        return self

    def put(
        self,
        priority: int,
        send: Callable[[], None],
        key: str | None = None,
        lane: str | None = None,
        paced: bool | None = None,
    ) -> None:
        """Queue `send`; `paced` (default: progress) keeps a keyed job `min_interval` from
        its last send, unpaced news goes as soon as its budget allows."""
        paced = priority >= PROGRESS if paced is None else paced
        with self._cond:
            job = self._keyed.get(key) if key else None
            if job is not None:
                job.send, job.priority, job.lane = send, min(job.priority, priority), lane
            else:
                job = _Job(priority, next(self._seq), send, key, lane)
                if key:
                    self._keyed[key] = job
                    job.not_before = self._last_sent.get(key, -1e9) + self.min_interval
                self._jobs.append(job)
            if not paced:
                job.not_before = min(job.not_before, self.monotonic())  # a final edit waits not
            self._cond.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued has been sent (or given up); False on timeout."""
        deadline = time.monotonic() + timeout  # real time: how long the caller waits
        with self._cond:
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to `timeout`), then end the worker."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout)

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                now = self.monotonic()
                waits = {
                    id(j): max(j.not_before - now, self._budget(j.lane, now, j.priority))
                    for j in self._jobs
                }
                ready = [j for j in self._jobs if waits[id(j)] <= 0]
                if ready:
                    job = min(ready, key=lambda j: (j.priority, j.seq))
                    self._jobs.remove(job)
                    if job.key:
                        self._keyed.pop(job.key, None)
                        self._last_sent[job.key] = now
                    if job.lane:
                        self._buckets[job.lane].take(now)
                    self._busy = True
                    return job
                wait = min(waits.values(), default=1.0)
                self._cond.wait(max(0.01, min(wait, 1.0)))
        return None

    def charge(self, lane: str) -> None:
        """Count a call made outside the queue (the desk posts a request message itself),
        so what the queue sends next still fits Slack's budget."""
        with self._cond:
            now = self.monotonic()
            self._bucket(lane, now).take(now)

    def delay(self, lane: str) -> float:
        """Seconds a news call queued now in `lane` would wait for the jobs ahead of it."""
        with self._cond:
            now = self.monotonic()
            ahead = sum(1 for j in self._jobs if j.lane == lane and j.priority < PROGRESS)
            return self._lane_wait(lane, now, ahead + 1.0)

    def _budget(self, lane: str | None, now: float, priority: int) -> float:
        """Seconds until `lane` may spend a call (Slack's limit for that method)."""
        if lane is None:
            return 0.0
        return self._lane_wait(lane, now, 1.0 + (RESERVE if priority > OUTCOME else 0.0))

    def _lane_wait(self, lane: str, now: float, need: float) -> float:
        """Seconds until `lane` has `need` calls of budget and Slack's Retry-After is over."""
        held = self._held.get(lane, now) - now
        return max(held, self._bucket(lane, now).ready_in(now, need))

    def _bucket(self, lane: str, now: float) -> _Bucket:
        bucket = self._buckets.get(lane)
        if bucket is None:
            rate, burst = LANES[lane.split(":")[0]]
            bucket = self._buckets[lane] = _Bucket(rate, burst, burst, now)
        return bucket

    def _work(self) -> None:
        WAIT_OUT_429.set(False)  # this thread reschedules its 429s (`_hold`)
        while (job := self._next()) is not None:
            try:
                job.send()
            except SlackApiError as error:
                reason = error.response.get("error", "")
                if error.response.status_code == 429:
                    self._hold(job, _retry_after(error))
                elif reason in PERMANENT:
                    log.error("Slack refused a message for good: %s", reason)
                else:
                    self._retry(job, error)
            except Exception as error:  # connection errors after slack_sdk's own retries
                self._retry(job, error)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _retry(self, job: _Job, error: Exception) -> None:
        job.tries += 1
        if job.tries >= self.attempts:
            log.error("gave up on a Slack message after %s tries: %s", job.tries, error)
            return
        log.warning("Slack call failed (%s); retrying", error)
        with self._cond:
            self._requeue(job, self.monotonic() + self.retry_seconds * min(job.tries, 15))

    def _hold(self, job: _Job, seconds: float) -> None:
        """Slack refused `job`'s lane for `seconds`: the lane waits, `job` keeps its place."""
        log.warning("Slack rate-limited %s for %.0f s", job.lane or "a call", seconds)
        with self._cond:
            until = self.monotonic() + seconds
            if job.lane:
                self._held[job.lane] = max(self._held.get(job.lane, until), until)
            self._requeue(job, until)

    def _requeue(self, job: _Job, not_before: float) -> None:
        """Queue `job` again at its place, not before `not_before`; a newer version of it
        queued meanwhile takes that place instead, carrying the latest state."""
        newer = self._keyed.get(job.key) if job.key else None
        if newer is not None:
            newer.seq, newer.priority = job.seq, min(newer.priority, job.priority)
            newer.not_before = max(newer.not_before, not_before)
            return
        job.not_before = not_before
        if job.key:
            self._keyed[job.key] = job
        self._jobs.append(job)


def _retry_after(error: SlackApiError) -> float:
    """Slack's Retry-After in seconds (1 when the header is missing or not a number)."""
    try:
        return float(error.response.headers.get("Retry-After", 1))
    except ValueError:
        return 1.0
