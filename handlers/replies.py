"""How a handler answers the person who typed or pressed: ephemeral, through `respond`;
on the Home tab, which has no response_url, on that person's tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.slack.desk import Reply
from bot.slack.home import Home


def ephemeral(respond: Respond) -> Reply:
    """Answers through the request's `response_url`: seen only by that person."""

    def reply(message: dict[str, Any]) -> None:
        respond(response_type="ephemeral", replace_original=False, **message)

    return reply


def to_presser(body: dict[str, Any], respond: Respond, home: Home) -> Reply:
    """A press on a message answers through its response_url; one on the Home tab, on top
    of that person's Home tab, published again."""
    view = body.get("view")
    if isinstance(view, dict) and view.get("type") == "home":
        return home.replier(body["user"]["id"])
    return ephemeral(respond)
