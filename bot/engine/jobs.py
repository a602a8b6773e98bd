"""apscheduler runs the migrations (thread pool) and ticks the deadlines.

apscheduler 3 reads the wall clock, so it is only a ticker here: what is due is judged by
the engine from stored timestamps against the injectable clock, and runs are submitted to
its thread pool so they never block a Slack handler.

The ticker has a thread of its own: runs waiting for a concurrency slot wait in the run
pool's queue (as many threads as slots), so expiry, windows and stuck checks never wait
behind them.
"""

from __future__ import annotations

import logging

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.engine import events as ev
from bot.engine.deadlines import Deadline
from bot.engine.engine import Engine
from bot.errors import BotError

log = logging.getLogger(__name__)
TICK_SECONDS = 5.0
TICKER = "ticker"


class Jobs:
    def __init__(self, engine: Engine, workers: int) -> None:
        """Runs what the engine queues (it subscribes to `Queued` here: no request can be
        queued with nobody to run it)."""
        self.engine = engine
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers), TICKER: ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        engine.subscribe(self._on_event)

    def _on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Queued):
            self.submit(event.request_id)

    def start(self) -> Jobs:
        self.scheduler.add_job(
            self.tick, "interval", seconds=TICK_SECONDS, id="tick", executor=TICKER
        )
        self.scheduler.start()
        for req in self.engine.recoverable():
            log.info("re-attaching to #%s (%s)", req.id, req.state)
            self.submit(req.id)
        return self

    def submit(self, request_id: int) -> None:
        """Run (or resume) a request on the pool; waits for a slot there, not here."""
        self.scheduler.add_job(
            self.engine.run, args=[request_id], id=f"run-{request_id}", replace_existing=True
        )

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
