"""Button presses on request messages, their threads and the Home tab: ack, then the desk
decides.

The button's value carries only the request id and the message's revision; who pressed
is read from Slack's signed payload, never from the value.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.slack.actions import Action
from bot.slack.desk import Desk
from handlers.replies import to_presser


def register(app: App, desk: Desk) -> None:
    def press(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        desk.in_background(
            desk.press,
            Action(action["action_id"]),  # registered for Action values only
            str(action.get("value", "")),
            body["user"]["id"],
            reply=to_presser(body, respond, desk.home),
        )

    for action_id in Action:
        app.action(action_id)(press)
