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
from dataclasses import dataclass
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.clock import Clock, SystemClock
from bot.engine import events as ev
from bot.engine.engine import Engine, EngineConfig
from bot.engine.jobs import Jobs
from bot.metrics import Metrics
from bot.planning.planner import Planner, PlannerConfig
from bot.replica import Replica
from bot.settings import Settings
from bot.slack.app import Front, build_front
from bot.slack.outbox import Outbox
from bot.store.alone import Alone, alone
from bot.store.leader import Leadership, is_shared
from bot.store.store import Store
from bot.web import WebServer, metrics_app, wsgi_app
from bot.xen.connection import Xapi, XenConfig
from bot.xen.gateway import Xen
from bot.xen.watch import TaskWatcher
from handlers import actions, commands, modal

log = logging.getLogger(__name__)


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
    alone: Alone | None = None  # SQLite: this process runs the database's migrations
    leadership: Leadership | None = None  # PostgreSQL: the pool's lock, once held

    def start(self) -> Core:
        self.watcher.start()
        self.jobs.start()
        return self

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the database works and, on the pool's leader, the scheduler; XAPI's
        events are only reported. A follower is ready: it answers Slack."""
        leading = self.leadership is None or self.leadership.held
        body = {
            "database": self.store.ping(),
            "scheduler": self.jobs.scheduler.running,
            "leader": leading,
            "xapi_events": self.watcher.connected,
        }
        return bool(body["database"] and (body["scheduler"] or not leading)), body

    def stop(self) -> None:
        """Stop taking work; running migrations are re-attached by the next start."""
        self.engine.stop()
        self.jobs.stop()
        self.watcher.stop()
        self.xapi.close()
        self.store.close()
        if self.alone is not None:
            self.alone.release()
        if self.leadership is not None:  # last: nothing here issues steps any more
            self.leadership.release()


def build_core(settings: Settings, clock: Clock | None = None, watch_pause: float = 0.5) -> Core:
    """`watch_pause`: real seconds between event batches (shorter when a test or the demo
    runs the pool's clock faster than the wall clock)."""
    clock = clock or SystemClock()
    lock = alone(settings.bot_database_url)
    if lock is not None:
        lock.hold()  # before anything runs: a second bot on one SQLite file stops here
    # Sessions: one per run, and room for the desk's checklists and a batch's parallel checks.
    xapi = Xapi(xen_config(settings), max_sessions=settings.bot_max_concurrent_migrations + 20)
    try:
        store = Store(settings.bot_database_url, clock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    watcher = TaskWatcher(xapi, batch_pause=watch_pause)
    shared = is_shared(settings.bot_database_url)
    leadership = Leadership(settings.bot_database_url, settings.xen_url) if shared else None
    engine = Engine(
        store,
        planner(settings, xapi, store),
        Xen(xapi, watcher),
        clock,
        EngineConfig(
            max_concurrent=settings.bot_max_concurrent_migrations,
            stuck_grace_seconds=settings.bot_stuck_grace_seconds,
            stall_seconds=settings.bot_stall_seconds,
            backup_tag=settings.bot_backup_exclude_tag,
            approval_ttl_seconds=settings.bot_approval_ttl_seconds,
            missed_window_grace_seconds=settings.bot_missed_window_grace_seconds,
        ),
        fence=leadership.holds if leadership else None,
    )
    jobs = Jobs(engine, settings.bot_max_concurrent_migrations, shared)  # takes what is queued
    return Core(xapi, engine.planner, store, watcher, engine, jobs, lock, leadership)


@dataclass
class Service:
    core: Core
    front: Front
    web: WebServer
    socket: SocketModeHandler | None
    replica: Replica
    metrics_web: WebServer | None = None

    def stop(self) -> None:
        self.replica.stop()
        if self.socket is not None:
            self.socket.close()
        if self.metrics_web is not None:
            self.metrics_web.stop()
        self.web.stop()
        self.front.stop()
        self.core.stop()  # releases the pool's lock last


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
    front = build_front(settings, core.engine, core.store, outbox)
    for handlers in (commands, actions, modal):
        handlers.register(front.app, front.desk)
    metrics = Metrics(
        core.store,
        core.xapi.stats,
        front.stats,
        {"default": lambda: core.watcher.connected},
        (lambda: socket is not None and socket.client.is_connected()) if socket_mode else None,
    )
    core.engine.subscribe(metrics.on_event)
    core.engine.subscribe(ev.log_line)

    def lead() -> None:
        """What the pool's leader does (at once, unless replicas share the database)."""
        front.notifier.catch_up()
        core.start()

    replica = Replica(core.leadership, lead, core.engine.stop).start()
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
    socket = None
    if socket_mode and settings.slack_app_token:
        socket = SocketModeHandler(front.app, settings.slack_app_token.get_secret_value())
        socket.connect()
    gc.freeze()  # what start-up built lives for good: full collections skip it (ack tails)
    log.info("serving Slack (%s mode); probes on %s", settings.bot_mode, web.url)
    return Service(core, front, web, socket, replica, metrics_web)
