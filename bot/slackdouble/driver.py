"""The people in the workspace: they type `/migrate`, press buttons, open the app's Home
tab and choose its shortcut, as Slack relays them.

Everything goes to the app's events URL as Slack sends it: form-encoded (JSON for Events
API callbacks), signed with the signing secret, with a `response_url` on the double, so
answers land where tests and the demo can read them. A press is made on a message or a
view as it was shown (its blocks), so a press on an outdated copy is exactly what a
person with a stale screen would send.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.slackdouble.payloads import (
    JSON_TYPE,
    app_home_opened,
    block_actions,
    form_body,
    global_shortcut,
    json_body,
    payload_body,
    post,
    signed_headers,
    slash_command,
    view_actions,
)
from bot.slackdouble.state import Message
from bot.slackdouble.webapi import SlackDouble

T = TypeVar("T")


@dataclass(frozen=True)
class Typed:
    ack: dict[str, Any]  # what Slack shows at once (empty: nothing)
    key: str  # the response_url's key: later answers arrive there


@dataclass
class Driver:
    slack: SlackDouble
    events_url: str  # the app's POST /slack/events
    secret: str  # the app's signing secret
    channel: str
    _keys: itertools.count = field(default_factory=lambda: itertools.count(1))

    def command(self, text: str, user: str, channel: str | None = None) -> Typed:
        """Type `/migrate text`: the ack's body (the immediate answer) and the response key."""
        key = f"cmd-{next(self._keys)}"
        fields = slash_command(
            text,
            user_id=user,
            channel_id=channel or self.channel,
            response_url=self.slack.response_url(key),
            trigger_id=self.slack.trigger_id(),
        )
        body = self._deliver(form_body(fields))
        return Typed(json.loads(body) if body else {}, key)

    def press(
        self, message: Message | dict[str, Any], action: str, user: str, value: str | None = None
    ) -> str:
        """Press a button of `message` as shown; the key of its response_url."""
        shown = as_shown(message)
        key = f"press-{next(self._keys)}"
        payload = block_actions(
            user_id=user,
            channel_id=self.channel,
            message_ts=shown["ts"],
            action_id=action,
            response_url=self.slack.response_url(key),
            message=shown,
            value=value,
        )
        self._deliver(payload_body(payload))
        return key

    def open_home(self, user: str) -> None:
        """Open the app's Home tab: Slack tells the app (`app_home_opened`)."""
        body = json_body(app_home_opened(user_id=user))
        self._deliver(body, signed_headers(self.secret, body, None, JSON_TYPE))

    def press_view(
        self, view: dict[str, Any], action: str, user: str, block_id: str | None = None
    ) -> None:
        """Press a button of a view as shown (the Home tab: in the block `block_id`)."""
        payload = view_actions(
            user_id=user,
            view=view,
            action_id=action,
            block_id=block_id,
            trigger_id=self.slack.trigger_id(view_id=view.get("id")),
        )
        self._deliver(payload_body(payload))

    def shortcut(self, callback_id: str, user: str) -> None:
        """Choose a global shortcut from Slack's shortcuts menu."""
        payload = global_shortcut(
            user_id=user, callback_id=callback_id, trigger_id=self.slack.trigger_id()
        )
        self._deliver(payload_body(payload))

    def send(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, _, answer = post(
            self.events_url, body, headers or signed_headers(self.secret, body)
        )
        return status, answer

    def _deliver(self, body: bytes, headers: dict[str, str] | None = None) -> bytes:
        """Send as Slack does; the app's answer, which must be HTTP 200."""
        status, answer = self.send(body, headers)
        if status != 200:
            raise RuntimeError(f"the app answered HTTP {status}: {answer[:200]!r}")
        return answer

    def answers(self, key: str) -> list[str]:
        """Texts sent to one response_url: the ephemeral answers to one command or press."""
        return [r.body.get("text", "") for r in self.slack.responses if r.key == key]


def until(
    probe: Callable[[], T | None], what: str = "", timeout: float = 30.0, pause: float = 0.02
) -> T:
    """Wait (real time, polling every `pause` s) for another thread or process to make
    `probe` truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(pause)
    raise TimeoutError(f"waited {timeout:.0f} s for {what or probe}")


def as_shown(message: Message | dict[str, Any]) -> dict[str, Any]:
    if isinstance(message, Message):
        return {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks}
    return message


def buttons(message: Message | dict[str, Any]) -> list[str]:
    """The action ids of the buttons a message shows, in order."""
    return [
        element["action_id"]
        for block in as_shown(message).get("blocks", [])
        if block.get("type") == "actions"
        for element in block["elements"]
    ]
