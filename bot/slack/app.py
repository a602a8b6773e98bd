"""The Slack front, built once: Web API client, access rules, notifier, Home tab, desk,
bolt app.

`build_front` makes the parts; the composition root (`bot.wiring`) registers the handlers
on its app. Nothing connects at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.engine.fleet import Fleet
from bot.metrics import CountingRateLimitHandler, CountingWebClient, SlackStats
from bot.settings import PoolConfig, Settings, require_approvers
from bot.slack.access import Access, PoolRules
from bot.slack.desk import Desk
from bot.slack.home import Home
from bot.slack.notify import Notifier
from bot.slack.outbox import Outbox
from bot.store.store import Store

log = logging.getLogger(__name__)


@dataclass
class Front:
    app: App
    client: WebClient
    desk: Desk
    notifier: Notifier
    outbox: Outbox
    stats: SlackStats

    def stop(self) -> None:
        """Finish what the desk is doing, then send what is queued for Slack."""
        self.desk.stop()
        self.outbox.stop()


def web_client(settings: Settings, stats: SlackStats) -> WebClient:
    """slack_sdk retries only connection errors by default: add 429 and 5xx."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    return CountingWebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=3),
            CountingRateLimitHandler(stats, max_retry_count=5),
            ServerErrorRetryHandler(max_retry_count=3),
        ],
        stats=stats,
    )


def build_front(
    settings: Settings,
    fleet: Fleet,
    pools: list[PoolConfig],
    store: Store,
    outbox: Outbox | None = None,
) -> Front:
    settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    require_approvers(settings, pools)
    stats = SlackStats()
    client = web_client(settings, stats)
    clock = next(iter(fleet.engines.values())).clock
    access = Access(
        approvers=settings.bot_approvers,
        requesters=settings.bot_requesters,
        allowed_channels=settings.bot_allowed_channels,
        allow_self_approval=settings.bot_allow_self_approval,
        members=lambda group: client.usergroups_users_list(usergroup=group)["users"],
        clock=clock,
        pools={p.name: PoolRules(p.approvers, p.requesters, p.channels) for p in pools},
    )
    outbox = (outbox or Outbox()).start()
    notifier = Notifier(
        client,
        store,
        outbox,
        clock,
        lambda pool: access.in_pool(pool).mention(),
        settings.bot_require_approval,
        show_pool=fleet.several,
    )
    fleet.subscribe(notifier)
    home = Home(client, store, access, notifier.card, outbox, clock, settings.bot_require_approval)
    fleet.subscribe(home)
    desk = Desk(
        fleet,
        store,
        notifier,
        access,
        clock,
        settings.timezone,
        settings.bot_require_approval,
        home,
    )
    secret = settings.slack_signing_secret
    app = App(
        client=client,
        # No auth.test at start-up: the probes must answer while Slack is unreachable;
        # `migrate-bot check-config` is where tokens are verified.
        token_verification_enabled=False,
        signing_secret=secret.get_secret_value() if secret else "",
        logger=logging.getLogger("slack_bolt"),
    )
    return Front(app, client, desk, notifier, outbox, stats)
