"""`migrate-bot run`: the engine, the Slack front and the HTTP endpoints, started in order.

Order matters: the notifier subscribes to the engine before the jobs start, so requests
re-attached at start-up report into their threads. Stopping is the reverse: stop taking
Slack requests, let the desk finish its answers, flush what is queued for Slack, log out
of XAPI; running migrations are left for the next start to re-attach.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.clock import Clock
from bot.core import Core, build_core
from bot.front import Front, build_front
from bot.outbox import Outbox
from bot.settings import Settings
from bot.web import WebServer, wsgi_app

log = logging.getLogger(__name__)


@dataclass
class Service:
    core: Core
    front: Front
    web: WebServer
    socket: SocketModeHandler | None

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.web.stop()
        self.front.stop()
        self.core.stop()


def start(
    settings: Settings,
    host: str = "0.0.0.0",
    clock: Clock | None = None,
    outbox: Outbox | None = None,
) -> Service:
    """Serve Slack in `BOT_MODE`; the probes are on `BOT_HTTP_PORT` in both modes."""
    socket_mode = settings.bot_mode == "socket"
    if socket_mode:
        settings.require("SLACK_APP_TOKEN")
    core = build_core(settings, clock)
    front = build_front(settings, core, outbox)
    core.start()
    web = WebServer(
        wsgi_app(core, None if socket_mode else front.app), host, settings.bot_http_port
    ).start()
    socket = None
    if socket_mode and settings.slack_app_token:
        socket = SocketModeHandler(front.app, settings.slack_app_token.get_secret_value())
        socket.connect()
    log.info("serving Slack (%s mode); probes on %s", settings.bot_mode, web.url)
    return Service(core, front, web, socket)
