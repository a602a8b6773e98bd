"""The "Migrate VM" modal: searchable selects, the VM's disks, and its submission.

Submitting files the same request as the command; its answers go to the person as an
ephemeral message in the channel where `/migrate` was typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.planning.command import BadCommand
from bot.slack import blocks
from bot.slack.desk import Desk, Reply
from bot.slack.modal_form import channel_of, command_from


def register(app: App, desk: Desk) -> None:
    for kind in ("vm", "host", "sr"):
        app.options(kind)(searcher(desk, kind))

    @app.action("vm")
    def vm_chosen(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        view = body["view"]
        chosen = (action.get("selected_option") or {}).get("value", "")
        reply = in_channel(client, channel_of(view), body["user"]["id"])
        desk.in_background(desk.vm_chosen, view, chosen, reply=reply)

    @app.view(blocks.MODAL_ID)
    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        state = view.get("state")
        command = command_from(state.get("values") if isinstance(state, dict) else None)
        user, channel = body["user"]["id"], channel_of(view)
        if isinstance(command, BadCommand):
            ack(response_action="errors", errors={"vm": command.reason})
            return
        if refused := desk.channel_refusal(channel):  # the channel the form was opened from
            ack(response_action="errors", errors={"vm": refused})
            return
        ack()
        desk.in_background(
            desk.file, command, user, channel, reply=in_channel(client, channel, user)
        )


def searcher(desk: Desk, kind: str) -> Callable[..., None]:
    """The options listener of one select (bolt passes arguments by name: no extras)."""

    def suggest(ack: Ack, payload: dict[str, Any]) -> None:
        ack(**blocks.options(desk.suggest(kind, str(payload.get("value", "")))))

    return suggest


def in_channel(client: WebClient, channel: str, user: str) -> Reply:
    """No response_url in a modal: answer with an ephemeral message in its channel."""

    def reply(message: dict[str, Any]) -> None:
        client.chat_postEphemeral(channel=channel, user=user, **message)

    return reply
