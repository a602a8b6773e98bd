"""`migrate-bot run`: the engine, the Slack front and the HTTP endpoints, started in order.

Order matters: the notifier subscribes to the engine before the jobs start, so requests
re-attached at start-up report into their threads. Stopping is the reverse: stop taking
Slack requests, let the desk finish its answers, flush what is queued for Slack, log out
of XAPI; running migrations are left for the next start to re-attach.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot import logs
from bot.clock import Clock
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack.app import Front, build_front
from bot.slack.outbox import Outbox
from bot.web import WebServer, metrics_app, wsgi_app
from bot.wiring import Core, build_core

log = logging.getLogger(__name__)


@dataclass
class Service:
    core: Core
    front: Front
    web: WebServer
    socket: SocketModeHandler | None
    metrics_web: WebServer | None = None

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.metrics_web is not None:
            self.metrics_web.stop()
        self.web.stop()
        self.front.stop()
        self.core.stop()


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
    front = build_front(settings, core, outbox)
    metrics = Metrics(core.store, core.xapi.stats, front.stats)
    core.engine.subscribe(metrics.on_event)
    core.engine.subscribe(logs.event_line)
    front.notifier.catch_up()
    core.start()
    apart = settings.bot_metrics_port is not None
    slack_app = None if socket_mode else front.app
    web = WebServer(
        wsgi_app(core, slack_app, None if apart else metrics), host, settings.bot_http_port
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
    return Service(core, front, web, socket, metrics_web)
