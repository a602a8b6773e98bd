"""What Slack sends to an app, built for tests and the demo, and how it sends it over HTTP.

The same dicts go two ways: as a Socket Mode envelope's payload
(`double.socket.send("slash_commands", slash_command(...))`), or signed over HTTP
(`form_body` for a slash command, `payload_body` for interactions, `json_body` for Events
API callbacks, `signed_headers`, `post`). A person can only press what is on the screen:
given the `message` (or `view`), the builders find the element by `action_id` and refuse
one that is not there. Pass `double.trigger_id()` where the listener opens a modal: the
default trigger is refused.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.slackdouble.state import JSON, Identity

DEFAULT_TRIGGER = "13345224609.738474920.8088930838d88f008e0"
VERIFICATION_TOKEN = "verification-token-double"  # deprecated, still sent by Slack
FORM, JSON_TYPE = "application/x-www-form-urlencoded", "application/json"  # content types
_APP = Identity()


def slash_command(
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    trigger_id: str = DEFAULT_TRIGGER,
    command: str = "/migrate",
    team_id: str = _APP.team_id,
) -> dict[str, str]:
    """The form fields of a slash command, as Slack posts them (all strings)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": "double",
        "channel_id": channel_id,
        "channel_name": channel_id.lower(),
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": _APP.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions(
    *,
    user_id: str,
    channel_id: str,
    message_ts: str,
    action_id: str,
    response_url: str,
    value: str | None = None,
    trigger_id: str = DEFAULT_TRIGGER,
    block_id: str | None = None,
    message: JSON | None = None,
    is_ephemeral: bool = False,
    team_id: str = _APP.team_id,
) -> JSON:
    """A button press on a message; with `message`, the button must be in its blocks."""
    shown = message or {"type": "message", "ts": message_ts, "text": "", "blocks": []}
    found_block, element = _element(
        shown.get("blocks", []), action_id, block_id, strict=bool(message)
    )
    action = _action(found_block, element, action_id, value)
    return {
        **_common("block_actions", user_id, team_id, trigger_id),
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": shown,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def view_actions(
    *,
    user_id: str,
    view: JSON,
    action_id: str,
    value: str | None = None,
    block_id: str | None = None,
    trigger_id: str = DEFAULT_TRIGGER,
    team_id: str = _APP.team_id,
) -> JSON:
    """A button pressed in a view (the Home tab, a modal): the button must be in its
    blocks (in `block_id`'s block, when given). No response_url and no channel come with it."""
    found_block, element = _element(view.get("blocks", []), action_id, block_id, strict=True)
    return {
        **_common("block_actions", user_id, team_id, trigger_id),
        "container": {"type": "view", "view_id": view.get("id", "")},
        "view": view,
        "state": {"values": {}},
        "actions": [_action(found_block, element, action_id, value)],
    }


def global_shortcut(
    *,
    user_id: str,
    callback_id: str,
    trigger_id: str = DEFAULT_TRIGGER,
    team_id: str = _APP.team_id,
) -> JSON:
    """A global shortcut chosen from the shortcuts menu: no channel, no response_url."""
    return {
        **_common("shortcut", user_id, team_id, trigger_id),
        "callback_id": callback_id,
        "action_ts": f"{time.time():.6f}",
    }


def app_home_opened(*, user_id: str, tab: str = "home", team_id: str = _APP.team_id) -> JSON:
    """The Events API callback Slack sends when someone opens the app's Home (or Messages)
    tab."""
    event = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": f"D{user_id.lstrip('UW')}",
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }
    return event_callback(event, team_id)


def event_callback(event: JSON, team_id: str = _APP.team_id) -> JSON:
    """An Events API envelope around `event`, as Slack POSTs it (JSON)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": _APP.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": _APP.bot_user_id, "is_bot": True}],
        "is_ext_shared_channel": False,
    }


def view_submission(
    *,
    user_id: str,
    view: JSON,
    values: JSON,
    trigger_id: str = DEFAULT_TRIGGER,
    team_id: str = _APP.team_id,
) -> JSON:
    """A modal submitted; `values` is `{block_id: {action_id: {type, value…}}}` as Slack sends."""
    return {
        **_common("view_submission", user_id, team_id, trigger_id),
        "view": {**view, "state": {"values": values}},
        "response_urls": [],
    }


def block_suggestion(
    *,
    user_id: str,
    action_id: str,
    value: str,
    view: JSON,
    block_id: str | None = None,
    team_id: str = _APP.team_id,
) -> JSON:
    """Typing `value` into an external select of an open modal (an options request)."""
    found_block, _ = _element(view.get("blocks", []), action_id, block_id, strict=True)
    payload = _common("block_suggestion", user_id, team_id, None)
    return {
        **payload,
        "container": {"type": "view", "view_id": view.get("id", "")},
        "action_id": action_id,
        "block_id": found_block,
        "value": value,
        "view": view,
    }


def form_body(fields: Mapping[str, str]) -> bytes:
    """A slash command's HTTP body: the fields form-encoded."""
    return urlencode(fields).encode()


def payload_body(payload: JSON) -> bytes:
    """An interaction's HTTP body: `payload=<json>`, form-encoded."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def json_body(payload: JSON) -> bytes:
    """An Events API callback's HTTP body: the JSON itself (send it as `JSON`)."""
    return json.dumps(payload).encode()


def signed_headers(
    secret: str, body: bytes, timestamp: int | None = None, content_type: str = FORM
) -> dict[str, str]:
    """The headers Slack signs a request with (`v0=` HMAC-SHA256 of `v0:ts:body`)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature or "",
    }


def post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """POST as Slack does; any HTTP status comes back as (status, headers, body)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers.items()), error.read()


def _common(kind: str, user_id: str, team_id: str, trigger_id: str | None) -> JSON:
    name = user_id.lower()
    common: JSON = {
        "type": kind,
        "team": {"id": team_id, "domain": "double"},
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": _APP.app_id,
        "token": VERIFICATION_TOKEN,
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if trigger_id is not None:
        common["trigger_id"] = trigger_id
    return common


def _action(block_id: str, element: dict[str, Any], action_id: str, value: str | None) -> JSON:
    return {
        "action_id": action_id,
        "block_id": block_id,
        "type": element.get("type", "button"),
        "text": element.get("text", {"type": "plain_text", "text": action_id}),
        "value": element.get("value", "") if value is None else value,
        "action_ts": f"{time.time():.6f}",
    }


def _element(
    blocks: list[JSON], action_id: str, block_id: str | None, *, strict: bool
) -> tuple[str, dict[str, Any]]:
    """The block id and element with `action_id` (in the block `block_id`, when given and
    shown); ValueError when `strict` and it is absent."""
    for block in blocks:
        if strict and block_id is not None and block.get("block_id") != block_id:
            continue
        for element in _interactive(block):
            if element.get("action_id") == action_id:
                return block_id or block.get("block_id", ""), element
    if strict:
        raise ValueError(f"no element with action_id {action_id!r} is shown")
    return block_id or "b", {}


def _interactive(block: JSON) -> list[JSON]:
    children = [*block.get("elements", []), block.get("accessory"), block.get("element")]
    return [child for child in children if isinstance(child, dict)]
