"""apscheduler runs the migrations (thread pool) and ticks the deadlines.

apscheduler 3 reads the wall clock, so it is only a ticker here: what is due is judged by
the engine from stored timestamps against the injectable clock, and runs are submitted to
its thread pool so they never block a Slack handler.
"""

from __future__ import annotations

import logging

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.engine.engine import Engine
from bot.planning.planner import UserError
from bot.xen.errors import XenError

log = logging.getLogger(__name__)
TICK_SECONDS = 5.0


class Jobs:
    def __init__(self, engine: Engine, workers: int) -> None:
        self.engine = engine
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers + 2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )

    def start(self) -> Jobs:
        self.scheduler.add_job(self.tick, "interval", seconds=TICK_SECONDS, id="tick")
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
                if kind == "stuck":
                    self.engine.check_stuck(request_id)
                    self.engine.mark_checked(request_id)
                elif kind == "expire":
                    self.engine.expire(request_id)
                elif kind == "missed":
                    self.engine.miss(request_id)
                elif self.engine.start_window(request_id):
                    self.submit(request_id)
            except (UserError, XenError) as error:
                log.warning("#%s: %s check failed: %s", request_id, kind, error)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
