"""Time as a dependency: production reads the wall clock, tests move a manual one.

Every deadline (task progress in the simulator, stuck grace, stall, expiry) is judged
against a `Clock`, so tests advance time instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def sleep(self, seconds: float) -> None:
        """Block for `seconds` of this clock's time."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told; `sleep` blocks until `advance` passes its end."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        with self._cond:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._cond:
            end = self._now + seconds
            while self._now < end:
                self._cond.wait(0.05)

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._now += seconds
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every advance (the simulator ticks its tasks)."""
        with self._cond:
            self._listeners.append(listener)
