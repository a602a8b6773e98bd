"""The "Migrate VM" modal: searchable selects, the form for what is to move, the VM's
disks, and its submission; the "Migrate a VM" shortcut opens it from anywhere.

Submitting files the same request as the command; its answers go to the person as an
ephemeral message in the channel where `/migrate` was typed, or the one the shortcut's
form chose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.planning.command import BadCommand
from bot.slack import blocks
from bot.slack.blocks.modal import SEARCHES
from bot.slack.desk import Desk, Reply
from bot.slack.modal_form import asks_channel, channel_of, command_from, error_block

log = logging.getLogger(__name__)


def register(app: App, desk: Desk) -> None:
    @app.shortcut(blocks.SHORTCUT_ID)
    def shortcut(ack: Ack, shortcut: dict[str, Any], client: WebClient) -> None:
        """No channel comes with a global shortcut: the form asks, the last one chosen."""
        ack()
        user = shortcut["user"]["id"]
        form = blocks.migrate_modal(desk.last_channel(user) or "", ask_channel=True)
        try:
            client.views_open(trigger_id=shortcut["trigger_id"], view=form)
        except SlackApiError as error:  # no response_url, no channel: nowhere to answer
            log.warning("the shortcut's form did not open: %s", error.response.get("error"))

    for action_id, kind in SEARCHES.items():
        app.options(action_id)(searcher(desk, kind))

    @app.action("what")
    def what_chosen(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        view, chosen, reply = choice(body, action, client)
        desk.in_background(switch_form, client, view, chosen, reply=reply)

    @app.action("vm")
    def vm_chosen(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ) -> None:
        ack()
        view, chosen, reply = choice(body, action, client)
        desk.in_background(desk.vm_chosen, view, chosen, reply=reply)

    @app.view(blocks.MODAL_ID)
    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        state = view.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        command = command_from(values)
        user, channel = body["user"]["id"], channel_of(view)
        if isinstance(command, BadCommand):
            ack(response_action="errors", errors={error_block(values): command.reason})
            return
        if asks_channel(view):  # the channel chosen in the form
            if refused := desk.picked_channel_refusal(channel):
                ack(response_action="errors", errors={"channel": refused})
                return
        elif refused := desk.channel_refusal(channel):  # the channel the form was opened from
            ack(response_action="errors", errors={error_block(values): refused})
            return
        ack()
        desk.in_background(
            desk.file, command, user, channel, reply=in_channel(client, channel, user)
        )


def choice(
    body: dict[str, Any], action: dict[str, Any], client: WebClient
) -> tuple[dict[str, Any], str, Reply]:
    """A choice in the modal that rebuilds it: the view, the value chosen, and how to
    answer the person who chose."""
    view = body["view"]
    chosen = (action.get("selected_option") or {}).get("value", "")
    return view, chosen, in_channel(client, channel_of(view), body["user"]["id"])


def switch_form(client: WebClient, view: dict[str, Any], what: str, reply: Reply) -> None:
    """Rebuild the modal for what is to move; `reply` hears only what goes wrong (the
    desk's rule). Against the view's hash: a form changed since the choice is left alone,
    the newer change wins."""
    form = blocks.migrate_modal(channel_of(view), what=what, ask_channel=asks_channel(view))
    try:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)
    except SlackApiError as error:
        if error.response.get("error") not in ("hash_conflict", "not_found"):  # or closed since
            raise


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
