"""apscheduler runs the migrations (thread pool) and ticks the deadlines.

apscheduler 3 reads the wall clock, so it is only a ticker here: what is due is judged by
the engine from stored timestamps against the injectable clock, and runs are submitted to
its thread pool so they never block a Slack handler.

The ticker has a thread of its own: runs waiting for a concurrency slot wait in the run
pool's queue (as many threads as slots), so expiry, windows and stuck checks never wait
behind them.

Replicas (`bot.replica`): only the leader starts its jobs. A follower's approvals queue
requests in the database; the leader adopts every queued or running request it is not
running yet, every `ADOPT_SECONDS`.
"""

from __future__ import annotations

import logging
import threading

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.engine import events as ev
from bot.engine.deadlines import Deadline
from bot.engine.engine import Engine
from bot.errors import BotError

log = logging.getLogger(__name__)
TICK_SECONDS = 5.0
ADOPT_SECONDS = 1.0
TICKER = "ticker"


class Jobs:
    def __init__(self, engine: Engine, workers: int, shared_database: bool = False) -> None:
        """Runs what the engine queues (it subscribes to `Queued` here: no request can be
        queued with nobody to run it); on a `shared_database` also what other replicas
        queued."""
        self.engine = engine
        self.shared_database = shared_database
        self._running: set[int] = set()  # submitted here and not ended
        self._lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers), TICKER: ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        engine.subscribe(self._on_event)

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Queued) and self.scheduler.running:  # a follower: the leader's
            self.submit(event.request_id)

    def start(self) -> Jobs:
        self.scheduler.add_job(
            self.tick, "interval", seconds=TICK_SECONDS, id="tick", executor=TICKER
        )
        if self.shared_database:
            self.scheduler.add_job(
                self.adopt, "interval", seconds=ADOPT_SECONDS, id="adopt", executor=TICKER
            )
        self.scheduler.start()
        self.adopt()
        return self

    def adopt(self) -> None:
        """Run every request that is queued or running and not run here yet: at start-up
        (re-attach after a restart or a takeover), and what another replica queued."""
        for req in self.engine.recoverable():
            if req.id not in self._running:
                log.info("taking #%s (%s)", req.id, req.state)
                self.submit(req.id)

    def submit(self, request_id: int) -> None:
        """Run (or resume) a request on the pool; waits for a slot there, not here."""
        with self._lock:
            if request_id in self._running:
                return
            self._running.add(request_id)
        self.scheduler.add_job(self._run, args=[request_id])  # ids of its own: never coalesced

    def _run(self, request_id: int) -> None:
        try:
            self.engine.run(request_id)
        finally:
            with self._lock:
                self._running.discard(request_id)

    def tick(self) -> None:
        for kind, request_id in self.engine.due():
            try:
                match kind:
                    case Deadline.AGENT:
                        self.engine.check_agent(request_id)
                    case Deadline.STUCK:
                        self.engine.check_stuck(request_id)
                        self.engine.mark_checked(request_id)
                    case Deadline.EXPIRE:
                        self.engine.expire(request_id)
                    case Deadline.MISSED:
                        self.engine.miss(request_id)
                    case Deadline.START:
                        self.engine.start_window(request_id)  # queued: `_on_event` runs it
            except BotError as error:
                log.warning("#%s: %s check failed: %s", request_id, kind, error)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
