"""How a handler answers the person who typed or pressed: ephemeral, through `respond`."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.slack.desk import Reply


def ephemeral(respond: Respond) -> Reply:
    """Answers through the request's `response_url`: seen only by that person."""

    def reply(message: dict[str, Any]) -> None:
        respond(response_type="ephemeral", replace_original=False, **message)

    return reply
