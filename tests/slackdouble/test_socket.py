"""Socket Mode through bolt's SocketModeHandler (slack_sdk's built-in client) and raw clients."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from slack_bolt import Ack, App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from bot.slackdouble import SlackDouble, block_actions, slash_command, view_submission
from bot.slackdouble.driver import until
from tests.slackdouble.kit import actions, button, modal


def command(double: SlackDouble, text: str) -> dict[str, str]:
    return slash_command(
        text, user_id="U1", channel_id="C1", response_url=double.response_url("cmd")
    )


@pytest.fixture
def received() -> list[dict[str, object]]:
    """Every frame the app's Socket Mode client received, decoded."""
    return []


@pytest.fixture
def bolt(
    client: WebClient, double: SlackDouble, received: list[dict[str, object]]
) -> Iterator[App]:
    """A tiny bolt app on its default Socket Mode client (slack_sdk's built-in one)."""
    app = App(client=client)

    @app.command("/migrate")
    def migrate(ack: Ack, command: dict[str, str]) -> None:
        ack(f"Queued: {command['text']}")

    @app.action("approve")
    def approve(ack: Ack, body: dict[str, dict[str, str]], client: WebClient) -> None:
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved")

    @app.view("migrate")
    def submitted(ack: Ack) -> None:
        ack(response_action="errors", errors={"host": "No such host"})

    handler = SocketModeHandler(app, app_token="xapp-test")
    assert isinstance(handler.client, SocketModeClient)
    handler.client.on_message_listeners.append(lambda raw: received.append(json.loads(raw)))
    handler.connect()
    double.socket.wait_connected(5)
    yield app
    handler.close()


def test_command_round_trip(
    bolt: App, double: SlackDouble, received: list[dict[str, object]]
) -> None:
    """The client is greeted with hello, gets a slash_commands envelope and bolt's ack returns."""
    ack = double.socket.send("slash_commands", command(double, "vm01 to host2"))
    assert ack == {"text": "Queued: vm01 to host2"}  # bolt wraps ack(text) for Socket Mode
    hello, envelope = received[0], received[1]
    assert hello["type"] == "hello"
    assert hello["connection_info"] == {"app_id": "A0DOUBLE"}
    assert (envelope["type"], envelope["accepts_response_payload"]) == ("slash_commands", True)
    assert double.socket.envelopes[0].ack == ack
    assert [c.status for c in double.calls_to("apps.connections.open")] == [200]


def test_bolt_button_press_updates_the_message(
    bolt: App, client: WebClient, double: SlackDouble
) -> None:
    """A block_actions envelope built from the posted message drives a chat.update."""
    blocks = [actions(button("approve"))]
    ts = client.chat_postMessage(channel="C1", text="Request", blocks=blocks)["ts"]
    payload = block_actions(
        user_id="U2",
        channel_id="C1",
        message_ts=ts,
        action_id="approve",
        response_url=double.response_url("press"),
        trigger_id=double.trigger_id(),
        message=double.message("C1", ts).as_slack(),
    )
    assert double.socket.send("interactive", payload) == {}
    assert double.socket.envelopes[-1].payload["actions"][0]["value"] == "req-1"
    until(lambda: double.message("C1", ts).edits == 1, "the edit", 3, 0.01)
    assert double.message("C1", ts).text == "Approved"


def test_bolt_view_submission_answers_with_errors(
    bolt: App, client: WebClient, double: SlackDouble
) -> None:
    """A view_submission's ack carries the response_action the listener chose."""
    view = client.views_open(trigger_id=double.trigger_id(), view=modal())["view"]
    payload = view_submission(user_id="U1", view=view, values={})
    ack = double.socket.send("interactive", payload)
    assert ack == {"response_action": "errors", "errors": {"host": "No such host"}}


def test_disconnect_notice_makes_the_client_reconnect(
    bolt: App, double: SlackDouble, received: list[dict[str, object]]
) -> None:
    """After Slack's refresh notice the client fetches a new URL and envelopes reach it."""
    double.socket.disconnect()
    reconnected = ["hello", "disconnect", "hello"]
    until(lambda: [m["type"] for m in received] == reconnected, "a reconnection", 3, 0.01)
    assert len(double.calls_to("apps.connections.open")) == 2
    ack = double.socket.send("slash_commands", command(double, "again"))
    assert ack == {"text": "Queued: again"}


def test_tickets_are_required_and_single_use(client: WebClient, double: SlackDouble) -> None:
    """A connection needs a ticket from apps.connections.open, and each ticket opens one."""
    with pytest.raises(InvalidStatus) as forged:
        connect(f"ws://127.0.0.1:{double.socket.port}/link/?ticket=forged")
    assert forged.value.response.status_code == 401
    url = client.apps_connections_open(app_token="xapp-test")["url"]
    with connect(url) as socket:
        assert json.loads(socket.recv(timeout=5))["type"] == "hello"
    with pytest.raises(InvalidStatus):
        connect(url)


def test_send_without_ack_times_out(client: WebClient, double: SlackDouble) -> None:
    """send() raises TimeoutError when the client never acks, ConnectionError with no client."""
    with pytest.raises(ConnectionError):
        double.socket.send("slash_commands", command(double, "nobody"))
    with connect(client.apps_connections_open(app_token="xapp-test")["url"]) as socket:
        socket.recv(timeout=5)  # hello
        with pytest.raises(TimeoutError):
            double.socket.send("slash_commands", command(double, "ignored"), timeout=0.2)
