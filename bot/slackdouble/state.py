"""What the double's workspace holds: messages with their edits, ephemerals, views, Home
tabs, triggers.

Plain records and one store, no HTTP and no rules: `methods` decides what a call may do
and changes the store; `SlackDouble` reads it under its lock and hands tests copies.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One request as Slack saw it; `status` 0 means the connection was dropped unanswered."""

    method: str
    args: JSON
    at: float
    status: int


@dataclass(frozen=True)
class Identity:
    """Who the bot is in this workspace (what `auth.test` answers)."""

    team_id: str = "T1"
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    app_id: str = "A0DOUBLE"


@dataclass(frozen=True)
class Revision:
    """A message as it was until a `chat.update` replaced it at `replaced_at`."""

    text: str
    blocks: list[JSON]
    replaced_at: float


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[JSON]
    user: str
    bot_id: str
    thread_ts: str | None = None
    reply_broadcast: bool = False
    history: list[Revision] = field(default_factory=list)

    @property
    def edits(self) -> int:
        return len(self.history)

    def as_slack(self) -> JSON:
        """The message object Slack returns from the Web API and puts in interaction payloads."""
        shaped: JSON = {
            "type": "message",
            "user": self.user,
            "bot_id": self.bot_id,
            "text": self.text,
            "blocks": self.blocks,
            "ts": self.ts,
        }
        if self.thread_ts:
            shaped["thread_ts"] = self.thread_ts
        if self.history:
            shaped["edited"] = {"user": self.user, "ts": self.ts}
        return shaped


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON]
    thread_ts: str | None


@dataclass(frozen=True)
class Response:
    """One accepted POST to a response_url; `use` counts from 1."""

    key: str
    use: int
    body: JSON
    at: float


@dataclass
class Trigger:
    issued_at: float
    view_id: str | None
    used: bool = False


class Workspace:
    """The store. Timestamps come from the injected clock and only ever increase."""

    def __init__(
        self,
        *,
        identity: Identity,
        users: Mapping[str, str],
        usergroups: Mapping[str, list[str]],
        channels: Mapping[str, str],
        clock: Callable[[], float],
    ) -> None:
        self.identity = identity
        self.users = dict(users)
        self.usergroups = {group: list(members) for group, members in usergroups.items()}
        self.channels = dict(channels)
        self.clock = clock
        self.posted: dict[str, dict[str, Message]] = {channel: {} for channel in channels}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, JSON] = {}
        self.homes: dict[str, JSON] = {}  # user id -> the Home tab views.publish last set
        self.triggers: dict[str, Trigger] = {}
        self._last_us = 0
        self._ids = itertools.count(1)

    def next_ts(self) -> str:
        """A Slack-shaped ts ("1764100000.000100"): the clock's time, 100 µs past the last."""
        micros = max(int(self.clock() * 1_000_000), self._last_us + 100)
        self._last_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def new_hash(self) -> str:
        return f"{int(self.clock())}.{uuid.uuid4().hex[:8]}"

    def issue_trigger(self, view_id: str | None = None) -> str:
        trigger_id = f"{int(self.clock())}.{next(self._ids)}.{uuid.uuid4().hex}"
        self.triggers[trigger_id] = Trigger(issued_at=self.clock(), view_id=view_id)
        return trigger_id

    def add(self, message: Message) -> None:
        self.posted[message.channel][message.ts] = message

    def find(self, channel: str, ts: str) -> Message | None:
        return self.posted.get(channel, {}).get(ts)

    def in_channel(self, channel: str) -> list[Message]:
        """Every message in the channel, replies included, oldest first."""
        return list(self.posted.get(channel, {}).values())

    def view_by_external_id(self, external_id: str) -> JSON | None:
        return next((v for v in self.views.values() if v.get("external_id") == external_id), None)
