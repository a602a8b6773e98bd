"""A local Slack double: Web API, response_urls and Socket Mode on 127.0.0.1, port 0.

Ships with the package for tests and `migrate-bot demo`; the bot's own code never imports
it. The bot's unmodified `WebClient` and Socket Mode client talk to it over the real
protocols; tests read what Slack saw. See `README.md` in this folder for what it
enforces and what it simplifies.
"""

from bot.slackdouble.payloads import (
    app_home_opened,
    block_actions,
    block_suggestion,
    event_callback,
    form_body,
    global_shortcut,
    json_body,
    payload_body,
    post,
    signed_headers,
    slash_command,
    view_actions,
    view_submission,
)
from bot.slackdouble.socket import Envelope, SocketModeServer
from bot.slackdouble.state import Call, Ephemeral, Identity, Message, Response, Revision
from bot.slackdouble.transcript import Names, render
from bot.slackdouble.webapi import SlackDouble

__all__ = [
    "Call",
    "Envelope",
    "Ephemeral",
    "Identity",
    "Message",
    "Names",
    "Response",
    "Revision",
    "SlackDouble",
    "SocketModeServer",
    "app_home_opened",
    "block_actions",
    "block_suggestion",
    "event_callback",
    "form_body",
    "global_shortcut",
    "json_body",
    "payload_body",
    "post",
    "render",
    "signed_headers",
    "slash_command",
    "view_actions",
    "view_submission",
]
