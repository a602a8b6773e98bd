"""This process's part among replicas: it runs the pool when it leads it.

On SQLite a bot runs alone (`bot.store.alone`) and leads from the start. On PostgreSQL
every replica answers Slack; one leads the pool (`bot.store.leader`): a follower asks for
the lock every `ASK_SECONDS` and, once it has it, begins what only the leader does (the
ticker and the runs, which re-attach to every request in flight exactly as after a
restart; the event watcher; Slack's catch-up). The leader checks its session at the same
pace, and the runner before every XAPI step (`fence`); a leader that lost its session
stops issuing steps at once and `ended` is set, so `migrate-bot run` exits (code 3) and
its supervisor starts it again, as a follower.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.store.leader import Leadership

log = logging.getLogger(__name__)
ASK_SECONDS = 2.0  # a dead leader's pool is taken within this plus PostgreSQL's notice


class Replica:
    def __init__(
        self,
        leadership: Leadership | None,
        begin: Callable[[], None],
        halt: Callable[[], None],
        ask_seconds: float = ASK_SECONDS,
    ) -> None:
        """`begin` starts the leader's work; `halt` stops issuing steps at once."""
        self.leadership = leadership
        self.begin, self.halt = begin, halt
        self.ask_seconds = ask_seconds
        self.ended = threading.Event()  # stop, or the leadership was lost
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
        while not self.ended.is_set():
            if leadership.lost or (leadership.held and not leadership.holds()):
                # Lost (seen here or by the runner's fence): no step more, and out.
                log.critical("lost the database lock: no step is issued any more; exiting")
                self.lost = True
                self.halt()
                self.ended.set()
                return
            if not leadership.held and leadership.acquire():
                self.begin()
            self.ended.wait(self.ask_seconds)
