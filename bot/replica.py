"""This process's part among replicas: it runs a pool when it leads it.

On SQLite a bot runs alone (`bot.store.alone`) and leads every pool from the start. On
PostgreSQL every replica answers Slack; one leads each pool (`bot.store.leader`): a
follower asks for the pool's lock every `ASK_SECONDS` and, once it has it, begins what
only the leader does (the ticker and the runs, which re-attach to every request in flight
exactly as after a restart; the event watcher; Slack's catch-up). The leader checks its
session at the same pace, and the runner before every XAPI step (`fence`); a leader that
lost its session stops issuing steps at once and `ended` is set, so `migrate-bot run`
exits (code 3) and its supervisor starts it again, as a follower.

With several pools, a replica that already leads k pools asks for one more only after
k x `SPREAD_SECONDS` of asking, so replicas started together share the pools out, while a
dead leader's pools are still taken at the next ask (the others have asked for long).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.store.leader import Leadership

log = logging.getLogger(__name__)
ASK_SECONDS = 2.0  # a dead leader's pool is taken within this plus PostgreSQL's notice
SPREAD_SECONDS = 6.0


class Replica:
    def __init__(
        self,
        leadership: Leadership | None,
        begin: Callable[[], None],
        halt: Callable[[], None],
        ended: threading.Event,
        others_led: Callable[[], int] = lambda: 0,
        claiming: threading.Lock | None = None,
        ask_seconds: float = ASK_SECONDS,
    ) -> None:
        """`begin` starts the leader's work; `halt` stops issuing steps at once; `ended` is
        the process's (stop, or a lock lost); `others_led`: how many other pools it leads,
        counted under `claiming`, which the process's replicas share (one claim at a time)."""
        self.leadership = leadership
        self.begin, self.halt = begin, halt
        self.ask_seconds = ask_seconds
        self.ended = ended
        self.others_led = others_led
        self.claiming = claiming or threading.Lock()
        self.lost = False
        self._thread = threading.Thread(target=self._watch, name="replica", daemon=True)

    def start(self) -> Replica:
        if self.leadership is None:
            self.begin()
        else:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop asking for the lock (first, so a stopping process never takes the pool)."""
        self.ended.set()
        if self._thread.is_alive():
            self._thread.join(self.ask_seconds + 5)

    def _watch(self) -> None:
        assert self.leadership is not None
        leadership = self.leadership
        asking_since = time.monotonic()
        while not self.ended.is_set():
            if leadership.lost or (leadership.held and not leadership.holds()):
                # Lost (seen here or by the runner's fence): no step more, and out.
                log.critical("lost the database lock: no step is issued any more; exiting")
                self.lost = True
                self.halt()
                self.ended.set()
                return
            if not leadership.held and self._claim(time.monotonic() - asking_since):
                self.begin()
            self.ended.wait(self.ask_seconds)

    def _claim(self, waited: float) -> bool:
        """Take the pool's lock if this process has waited its turn for it."""
        assert self.leadership is not None
        with self.claiming:
            return waited >= self.others_led() * SPREAD_SECONDS and self.leadership.acquire()
