"""The composition root: every part built once, in order, and nothing at import time.

`build_core` wires what does not need Slack (XAPI gateway, planner, store, engine, jobs);
`start` adds the Slack front, registers the handlers and serves HTTP (`migrate-bot run`).

Order matters: the notifier subscribes to the engine before the jobs start, so requests
re-attached at start-up report into their threads. Stopping is the reverse: stop taking
Slack requests, let the desk finish its answers, flush what is queued for Slack, log out
of XAPI; running migrations are left for the next start to re-attach.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.clock import Clock, SystemClock
from bot.engine import events as ev
from bot.engine.engine import Engine, EngineConfig
from bot.engine.fleet import Fleet
from bot.engine.jobs import Jobs
from bot.metrics import Metrics
from bot.planning.planner import Planner, PlannerConfig
from bot.replica import Replica
from bot.settings import PoolConfig, Settings, pool_configs
from bot.slack.app import Front, build_front
from bot.slack.outbox import Outbox
from bot.store.alone import Alone, alone
from bot.store.leader import Leadership, is_shared
from bot.store.store import Store
from bot.web import WebServer, metrics_app, wsgi_app
from bot.xen.connection import Xapi, XenConfig
from bot.xen.gateway import Xen
from bot.xen.watch import TaskWatcher
from handlers import actions, commands, home, modal

log = logging.getLogger(__name__)


def xen_config(pool: PoolConfig) -> XenConfig:
    return XenConfig(
        url=pool.url,
        username=pool.username,
        password=pool.password,
        verify_tls=pool.verify_tls,
        ca_bundle=pool.ca_bundle,
        timeout=pool.timeout,
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
class PoolRun:
    """One pool's parts: its XAPI sessions, event watcher, planner, engine (its own
    concurrency limit and silent-master wait) and jobs; on PostgreSQL its lock."""

    config: PoolConfig
    xapi: Xapi
    planner: Planner
    watcher: TaskWatcher
    engine: Engine
    jobs: Jobs
    leadership: Leadership | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def leads(self) -> bool:
        return self.leadership is None or self.leadership.held

    def start(self) -> None:
        """What the pool's leader runs: events, the ticker, and every run in flight."""
        self.watcher.start()
        self.jobs.start()

    def stop(self) -> None:
        self.engine.stop()
        self.jobs.stop()
        self.watcher.stop()
        self.xapi.close()


@dataclass
class Core:
    store: Store
    pools: dict[str, PoolRun]
    fleet: Fleet
    alone: Alone | None = None  # SQLite: this process runs the database's migrations

    def pool(self, name: str | None = None) -> PoolRun:
        """The named pool, or the only one."""
        if name is None:
            if len(self.pools) != 1:
                raise ValueError(f"several pools: {sorted(self.pools)}")
            return next(iter(self.pools.values()))
        return self.pools[name]

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the database works and, for each pool this replica leads, the
        scheduler; XAPI's events are only reported. A follower is ready: it answers Slack."""
        database = self.store.ping()
        pools = {
            run.name: {
                "leader": run.leads,
                "scheduler": run.jobs.scheduler.running,
                "xapi_events": run.watcher.connected,
            }
            for run in self.pools.values()
        }
        ready = database and all(p["scheduler"] or not p["leader"] for p in pools.values())
        return ready, {"database": database, "pools": pools}

    def stop(self) -> None:
        """Stop taking work; running migrations are re-attached by the next start."""
        self.fleet.stop()
        for run in self.pools.values():
            run.stop()
        self.store.close()
        if self.alone is not None:
            self.alone.release()
        for run in self.pools.values():  # last: nothing here issues steps any more
            if run.leadership is not None:
                run.leadership.release()


def build_core(settings: Settings, clock: Clock | None = None, watch_pause: float = 0.5) -> Core:
    """`watch_pause`: real seconds between event batches (shorter when a test or the demo
    runs the pool's clock faster than the wall clock)."""
    clock = clock or SystemClock()
    configs = pool_configs(settings)
    lock = alone(settings.bot_database_url)
    if lock is not None:
        lock.hold()  # before anything runs: a second bot on one SQLite file stops here
    try:
        store = Store(settings.bot_database_url, clock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    runs = {c.name: _pool_run(settings, c, store, clock, watch_pause) for c in configs}
    for req in store.open_requests():
        if req.pool not in runs:  # nobody here runs or expires it: say so at every start
            log.warning(
                "request #%s (%s) is %s in pool %s, which BOT_POOLS_FILE no longer lists",
                req.id,
                req.vm_name,
                req.state,
                req.pool,
            )
    fleet = Fleet({name: run.engine for name, run in runs.items()})
    return Core(store, runs, fleet, lock)


def _pool_run(
    settings: Settings, config: PoolConfig, store: Store, clock: Clock, watch_pause: float
) -> PoolRun:
    # Sessions: one per run, and room for the desk's checklists and a batch's parallel checks.
    xapi = Xapi(xen_config(config), max_sessions=config.max_concurrent + 20)
    watcher = TaskWatcher(xapi, batch_pause=watch_pause)
    shared = is_shared(settings.bot_database_url)
    leadership = Leadership(settings.bot_database_url, config.url) if shared else None
    engine = Engine(
        store.for_pool(config.name),
        planner(settings, xapi, store),
        Xen(xapi, watcher),
        clock,
        EngineConfig(
            max_concurrent=config.max_concurrent,
            stuck_grace_seconds=settings.bot_stuck_grace_seconds,
            stall_seconds=settings.bot_stall_seconds,
            backup_tag=settings.bot_backup_exclude_tag,
            approval_ttl_seconds=settings.bot_approval_ttl_seconds,
            missed_window_grace_seconds=settings.bot_missed_window_grace_seconds,
        ),
        fence=leadership.holds if leadership else None,
    )
    jobs = Jobs(engine, config.max_concurrent, shared)  # takes what is queued
    return PoolRun(config, xapi, engine.planner, watcher, engine, jobs, leadership)


@dataclass
class Service:
    core: Core
    front: Front
    web: WebServer
    socket: SocketModeHandler | None
    replicas: list[Replica]
    ended: threading.Event  # SIGTERM, Ctrl-C, or this replica lost a pool's lock
    metrics_web: WebServer | None = None

    @property
    def lost(self) -> bool:
        return any(replica.lost for replica in self.replicas)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        if self.socket is not None:
            self.socket.close()
        if self.metrics_web is not None:
            self.metrics_web.stop()
        self.web.stop()
        self.front.stop()
        self.core.stop()  # releases the pools' locks last


def start(
    settings: Settings,
    host: str = "0.0.0.0",
    clock: Clock | None = None,
    outbox: Outbox | None = None,
    watch_pause: float = 0.5,
) -> Service:
    """Serve Slack in `BOT_MODE`; the probes are on `BOT_HTTP_PORT` in both modes."""
    socket_mode = settings.bot_mode == "socket"
    if socket_mode:
        settings.require("SLACK_APP_TOKEN")
    core = build_core(settings, clock, watch_pause)
    configs = [run.config for run in core.pools.values()]
    front = build_front(settings, core.fleet, configs, core.store, outbox)
    for handlers in (commands, actions, modal, home):
        handlers.register(front.app, front.desk)
    watchers = {name: (lambda run=run: run.watcher.connected) for name, run in core.pools.items()}
    socket: SocketModeHandler | None = None
    metrics = Metrics(
        core.store,
        {name: run.xapi.stats for name, run in core.pools.items()},
        front.stats,
        watchers,
        (lambda: socket is not None and socket.client.is_connected()) if socket_mode else None,
    )
    core.fleet.subscribe(metrics.on_event)
    core.fleet.subscribe(ev.log_line)
    ended, claiming = threading.Event(), threading.Lock()

    def leader_of(run: PoolRun) -> Callable[[], None]:
        def lead() -> None:
            """What the pool's leader does (at once, unless replicas share the database)."""
            log.info("leading pool %s", run.name)
            front.notifier.catch_up(run.name)
            run.start()

        return lead

    replicas = [
        Replica(
            run.leadership,
            leader_of(run),
            run.engine.stop,
            ended,
            lambda run=run: sum(other.leads for other in core.pools.values() if other is not run),
            claiming,
        )
        for run in core.pools.values()
    ]
    for replica in replicas:
        replica.start()
    apart = settings.bot_metrics_port is not None
    slack_app = None if socket_mode else front.app
    web = WebServer(
        wsgi_app(core.readiness, slack_app, None if apart else metrics),
        host,
        settings.bot_http_port,
    ).start()
    metrics_web = (
        WebServer(metrics_app(metrics), host, settings.bot_metrics_port or 0).start()
        if apart
        else None
    )
    if socket_mode and settings.slack_app_token:
        socket = SocketModeHandler(front.app, settings.slack_app_token.get_secret_value())
        socket.connect()
    gc.freeze()  # what start-up built lives for good: full collections skip it (ack tails)
    log.info("serving Slack (%s mode); probes on %s", settings.bot_mode, web.url)
    return Service(core, front, web, socket, replicas, ended, metrics_web)
