"""Payload builders and request signing, checked by slack_sdk's verifier and bolt's dispatch."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_bolt import Ack, App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.slackdouble import (
    SlackDouble,
    app_home_opened,
    block_actions,
    block_suggestion,
    form_body,
    global_shortcut,
    json_body,
    payload_body,
    signed_headers,
    slash_command,
    view_actions,
    view_submission,
)
from bot.slackdouble.payloads import JSON_TYPE
from tests.slackdouble.kit import actions, button, modal, text

SECRET = "signing-secret"
BUTTONS = [actions(button("approve"), button("reject"))]
HOST_PICKER = modal(
    {
        "type": "input",
        "block_id": "target",
        "label": text("plain_text", "Host"),
        "element": {"type": "external_select", "action_id": "host"},
    }
)
MESSAGE = {"type": "message", "ts": "1.000100", "text": "", "blocks": BUTTONS}


def press(action_id: str, response_url: str = "u") -> dict[str, Any]:
    """Someone pressing a button on MESSAGE in #C1."""
    return block_actions(
        user_id="U2",
        channel_id="C1",
        message_ts="1.000100",
        action_id=action_id,
        response_url=response_url,
        message=MESSAGE,
    )


def signed(body: bytes) -> BoltRequest:
    """The request bolt's HTTP adapters build from what Slack sent."""
    return BoltRequest(body=body.decode(), headers=signed_headers(SECRET, body))


@pytest.fixture
def app(client: WebClient) -> App:
    return App(client=client, signing_secret=SECRET)


def test_signed_headers_pass_slack_sdk_verification() -> None:
    """The signature verifies; a changed body, another secret or a stale stamp do not."""
    body = form_body(slash_command("vm01", user_id="U1", channel_id="C1", response_url="u"))
    headers = signed_headers(SECRET, body)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier(SECRET).is_valid_request(body + b"&x=1", headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    stale = signed_headers(SECRET, body, timestamp=int(time.time()) - 301)
    assert not SignatureVerifier(SECRET).is_valid_request(body, stale)


def test_bodies_are_encoded_as_slack_sends_them() -> None:
    """A command is plain form fields; an interaction is one `payload` field of JSON."""
    fields = slash_command("vm01 to host2", user_id="U1", channel_id="C1", response_url="u")
    assert dict(parse_qsl(form_body(fields).decode(), keep_blank_values=True)) == fields
    payload = view_submission(user_id="U1", view=HOST_PICKER, values={})
    assert [name for name, _ in parse_qsl(payload_body(payload).decode())] == ["payload"]
    assert json.loads(dict(parse_qsl(payload_body(payload).decode()))["payload"]) == payload


def test_block_actions_takes_the_button_from_the_message() -> None:
    """With the message given, block_id, text and value come from the pressed button."""
    payload = press("reject")
    action = payload["actions"][0]
    assert (action["block_id"], action["value"], action["text"]["text"]) == (
        "decide",
        "req-1",
        "Reject",
    )
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1.000100",
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    with pytest.raises(ValueError, match="cancel"):
        press("cancel")


def test_bolt_accepts_a_signed_slash_command(app: App) -> None:
    """bolt verifies the signature of a form-encoded command and its listener's ack answers."""
    app.command("/migrate")(lambda ack, command: ack(f"Queued: {command['text']}"))
    fields = slash_command("vm01 to host2", user_id="U1", channel_id="C1", response_url="u")
    response = app.dispatch(signed(form_body(fields)))
    assert (response.status, response.body) == (200, "Queued: vm01 to host2")  # plain text
    forged = BoltRequest(body=form_body(fields).decode(), headers=signed_headers("x", b"other"))
    assert app.dispatch(forged).status == 401


def test_bolt_routes_a_signed_button_press(app: App, double: SlackDouble) -> None:
    """A block_actions payload reaches the action listener with the value and message."""
    pressed: list[dict[str, Any]] = []

    @app.action("approve")
    def approve(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        pressed.append({"value": action["value"], "ts": body["message"]["ts"]})

    payload = press("approve", response_url=double.response_url("p"))
    assert app.dispatch(signed(payload_body(payload))).status == 200
    assert pressed == [{"value": "req-1", "ts": "1.000100"}]


def test_bolt_answers_a_block_suggestion(app: App, client: WebClient, double: SlackDouble) -> None:
    """An options request for an open modal's external select gets the listener's options."""
    options = [{"text": {"type": "plain_text", "text": "host2"}, "value": "host2"}]
    app.options("host")(lambda ack, payload: ack(options=options))
    view = client.views_open(trigger_id=double.trigger_id(), view=HOST_PICKER)["view"]
    payload = block_suggestion(user_id="U1", action_id="host", value="ho", view=view)
    assert payload["block_id"] == "target"
    assert payload["container"] == {"type": "view", "view_id": view["id"]}
    response = app.dispatch(signed(payload_body(payload)))
    assert json.loads(response.body) == {"options": options}


def test_bolt_takes_a_signed_app_home_opened_event(app: App) -> None:
    """An Events API callback is JSON, signed like the rest; bolt acks it and hands the
    event to its listener."""
    opened: list[str] = []
    app.event("app_home_opened")(lambda event: opened.append(f"{event['user']} {event['tab']}"))
    body = json_body(app_home_opened(user_id="U1"))
    request = BoltRequest(body=body.decode(), headers=signed_headers(SECRET, body, None, JSON_TYPE))
    assert app.dispatch(request).status == 200
    assert opened == ["U1 home"]
    forged = BoltRequest(body=body.decode(), headers=signed_headers("x", body, None, JSON_TYPE))
    assert app.dispatch(forged).status == 401


def test_bolt_routes_a_global_shortcut_and_a_press_on_a_home_view(app: App) -> None:
    """A shortcut carries its callback_id and a trigger; a press on a view names the block
    it was in (two Approve buttons: the second block's), and has no response_url."""
    seen: list[Any] = []

    @app.shortcut("migrate_shortcut")
    def shortcut(ack: Ack, shortcut: dict[str, Any]) -> None:
        ack()
        seen.append(shortcut["trigger_id"])

    @app.action("approve")
    def approve(ack: Ack, action: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        where = body["view"]["type"]
        seen.append((action["block_id"], action["value"], where, "response_url" in body))

    payload = global_shortcut(user_id="U1", callback_id="migrate_shortcut", trigger_id="t-1")
    assert app.dispatch(signed(payload_body(payload))).status == 200
    view = {
        "id": "V1",
        "type": "home",
        "blocks": [
            actions(button("approve", "1:2"), block_id="home:1"),
            actions(button("approve", "2:5"), block_id="home:2"),
        ],
    }
    press = view_actions(user_id="U2", view=view, action_id="approve", block_id="home:2")
    assert press["container"] == {"type": "view", "view_id": "V1"}
    assert app.dispatch(signed(payload_body(press))).status == 200
    assert seen == ["t-1", ("home:2", "2:5", "home", False)]
    with pytest.raises(ValueError, match="reject"):
        view_actions(user_id="U2", view=view, action_id="reject")
