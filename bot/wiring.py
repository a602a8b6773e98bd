"""Wiring of the parts that do not need Slack: XAPI gateway, planner, store, engine, jobs.

Built once by the CLI (the composition root); nothing here connects at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock, SystemClock
from bot.engine.engine import Engine, EngineConfig
from bot.engine.jobs import Jobs
from bot.planning.planner import Planner, PlannerConfig
from bot.settings import Settings
from bot.store.store import Store
from bot.xen.connection import Xapi, XenConfig
from bot.xen.watch import TaskWatcher


def xen_config(settings: Settings) -> XenConfig:
    settings.require("XEN_URL", "XEN_USERNAME", "XEN_PASSWORD")
    return XenConfig(
        url=settings.xen_url or "",
        username=settings.xen_username or "",
        password=settings.xen_password.get_secret_value() if settings.xen_password else "",
        verify_tls=settings.xen_verify_tls,
        ca_bundle=settings.xen_ca_bundle,
        timeout=settings.xen_timeout_seconds,
    )


def planner(settings: Settings, xapi: Xapi, store: Store | None = None) -> Planner:
    return Planner(
        xapi,
        PlannerConfig(
            backup_tag=settings.bot_backup_exclude_tag,
            cpu_threshold=settings.bot_live_cpu_threshold,
            throughput_mbps=settings.bot_default_throughput_mbps,
        ),
        store.measured_throughput if store else lambda: None,
    )


@dataclass
class Core:
    xapi: Xapi
    planner: Planner
    store: Store
    watcher: TaskWatcher
    engine: Engine
    jobs: Jobs

    def start(self) -> Core:
        self.watcher.start()
        self.jobs.start()
        return self

    def stop(self) -> None:
        """Stop taking work; running migrations are re-attached by the next start."""
        self.engine.stop()
        self.jobs.stop()
        self.watcher.stop()
        self.xapi.close()
        self.store.close()


def build_core(settings: Settings, clock: Clock | None = None, watch_pause: float = 0.5) -> Core:
    """`watch_pause`: real seconds between event batches (shorter when a test or the demo
    runs the pool's clock faster than the wall clock)."""
    clock = clock or SystemClock()
    xapi = Xapi(xen_config(settings), max_sessions=settings.bot_max_concurrent_migrations + 4)
    store = Store(settings.bot_database_url, clock)
    watcher = TaskWatcher(xapi, batch_pause=watch_pause)
    engine = Engine(
        store,
        planner(settings, xapi, store),
        watcher,
        clock,
        EngineConfig(
            max_concurrent=settings.bot_max_concurrent_migrations,
            stuck_grace_seconds=settings.bot_stuck_grace_seconds,
            stall_seconds=settings.bot_stall_seconds,
            backup_tag=settings.bot_backup_exclude_tag,
            approval_ttl_seconds=settings.bot_approval_ttl_seconds,
            missed_window_grace_seconds=settings.bot_missed_window_grace_seconds,
        ),
    )
    jobs = Jobs(engine, settings.bot_max_concurrent_migrations)
    engine.set_dispatcher(jobs.submit)
    return Core(xapi, engine.planner, store, watcher, engine, jobs)
