"""The whole bot in HTTP mode: the simulated pool, the Slack double, signed requests.

Slash commands and presses go through bolt's real request path (signed HTTP to waitress);
the bot's WebClient talks to the Slack double; the engine talks XAPI to the simulator.
Tests read what Slack saw (messages, edits, ephemerals) and where the VMs are.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.settings import Settings
from bot.slack.outbox import Outbox
from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import Driver, until
from bot.slackdouble.driver import buttons as shown_buttons
from bot.states import State
from bot.store.records import Request
from bot.wiring import Core, Service, start
from tests.support.pool import Pool, Ticker

T = TypeVar("T")
SECRET = "signing-secret"
CHANNEL = "C1"
USERS = {"U1": "alice", "ULEAD": "bob", "ULEAD2": "dana", "U3": "carol"}
GROUPS = {"S1": ["ULEAD2"]}


@dataclass
class Bot:
    pool: Pool
    slack: SlackDouble
    service: Service
    driver: Driver

    @property
    def core(self) -> Core:
        return self.service.core

    # -- what a person does in Slack ---------------------------------------------------------
    def command(self, text: str, user: str = "U1", channel: str = CHANNEL) -> dict[str, Any]:
        """Type `/migrate text`; the ack's body (the first, ephemeral answer)."""
        return self.driver.command(text, user, channel).ack

    def press(self, action: str, request_id: int, user: str, value: str | None = None) -> str:
        """Press the button shown on the request message or in its thread; the response key."""
        return self.press_on(self.message_with(action, request_id), action, user, value)

    def press_on(
        self, message: dict[str, Any], action: str, user: str, value: str | None = None
    ) -> str:
        """Press a button on a message as it was shown (maybe an outdated copy)."""
        return self.driver.press(message, action, user, value)

    def send(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        return self.driver.send(body, headers)

    # -- what Slack saw ----------------------------------------------------------------------
    def request(self, request_id: int) -> Request:
        req = self.core.store.get(request_id)
        assert req is not None
        return req

    def request_message(self, request_id: int) -> dict[str, Any]:
        req = self.request(request_id)
        assert req.message_ts, "the request message was not posted"
        found = self.slack.message(CHANNEL, req.message_ts)
        return {"type": "message", "ts": found.ts, "text": found.text, "blocks": found.blocks}

    def thread(self, request_id: int) -> list[Any]:
        req = self.request(request_id)
        assert req.thread_ts
        return self.slack.replies(CHANNEL, req.thread_ts)

    def message_with(self, action: str, request_id: int) -> dict[str, Any]:
        """The newest message of the request (its own or a thread reply) with that button,
        once Slack shows one (the outbox posts after the state changed)."""

        def found() -> dict[str, Any] | None:
            candidates = [self.request_message(request_id)] + [
                {"type": "message", "ts": m.ts, "text": m.text, "blocks": m.blocks}
                for m in reversed(self.thread(request_id))
            ]
            return next((m for m in candidates if action in buttons(m["blocks"])), None)

        try:
            return until(found, "", 10.0)
        except TimeoutError:
            raise AssertionError(f"no {action!r} button on #{request_id}'s messages") from None

    def answers(self, key: str) -> list[str]:
        return self.driver.answers(key)

    def latest_request(self) -> Request:
        return max(self.core.store.open_requests() + self.core.store.recent_finished(), key=_id)

    def until(self, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
        return until(probe, "", timeout)

    def state(self, request_id: int, *states: State) -> Request:
        return self.until(lambda: (r := self.request(request_id)).state in states and r)

    def text_of(self, request_id: int) -> str:
        return json.dumps(self.request_message(request_id)["blocks"], ensure_ascii=False)


def filed(bot: Bot, text: str, user: str = "U1") -> int:
    """File a request and wait for its message; its id."""
    before = {r.id for r in bot.core.store.open_requests()}
    bot.command(text, user=user)
    req = bot.until(
        lambda: [r for r in bot.core.store.open_requests() if r.id not in before and r.message_ts]
    )
    return req[0].id


def _id(req: Request) -> int:
    return req.id


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return shown_buttons({"blocks": blocks})


def settings_for(xen_url: str, slack: SlackDouble, db: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "xen_url": xen_url,
        "xen_username": "root",
        "xen_password": "secret",
        "slack_bot_token": slack.token,
        "slack_signing_secret": SECRET,
        "slack_api_url": slack.api_url,
        "bot_mode": "http",
        "bot_http_port": 0,
        "bot_database_url": f"sqlite:///{db}",
        "bot_approvers": ["ULEAD", "S1"],
        **overrides,
    }
    return Settings(**values)


def slack_double() -> SlackDouble:
    return SlackDouble(users=USERS, usergroups=GROUPS, channels={CHANNEL: "ops"})


def running_bot(
    pool: Pool, tmp_path: Path, slack: SlackDouble | None = None, **overrides: Any
) -> Iterator[Bot]:
    """The bot serving HTTP on 127.0.0.1:0, the pool's clock ticking as real time would.

    Pass `slack` to keep one workspace across bot restarts (the caller starts and stops it).
    """
    with contextlib.ExitStack() as stack:
        slack = slack or stack.enter_context(slack_double())
        settings = settings_for(pool.server.url, slack, tmp_path / "bot.db", **overrides)
        stack.enter_context(Ticker(pool.clock, step=0.5))
        outbox = Outbox(0.2, retry_seconds=0.1)
        # The pool's clock runs ~50x real time: pause between event batches accordingly.
        service = start(settings, "127.0.0.1", pool.clock, outbox, watch_pause=0.01)
        stack.callback(service.stop)
        events = f"{service.web.url}/slack/events"
        yield Bot(pool, slack, service, Driver(slack, events, SECRET, CHANNEL))


serving = contextlib.contextmanager(running_bot)  # `with serving(pool, tmp_path) as bot:`
