"""`/migrate …`: ack within Slack's deadline with a first answer, then delegate to the desk."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.planning.command import (
    USAGE,
    BadCommand,
    BatchCommand,
    Cancel,
    Enable,
    Help,
    ListRequests,
    MigrateCommand,
    OpenModal,
    Status,
    parse,
)
from bot.slack import blocks
from bot.slack.desk import Desk
from handlers.replies import ephemeral

MODAL_FAILED = "Slack would not open the form ({}); type /migrate <vm> to <host> instead."


def register(app: App, desk: Desk) -> None:
    @app.command("/migrate")
    def migrate(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        user, channel = command["user_id"], command["channel_id"]
        reply = ephemeral(respond)

        def say(message: dict[str, Any]) -> None:
            ack(response_type="ephemeral", **message)

        match parse(command.get("text") or ""):
            case BadCommand(message=message):
                say(blocks.usage_message(message))
            case Help():
                say(blocks.usage_message(USAGE))
            case OpenModal() if refused := desk.channel_refusal(channel):
                say(blocks.notice(refused, "⛔"))
            case OpenModal():
                ack()
                try:
                    client.views_open(
                        trigger_id=command["trigger_id"], view=blocks.migrate_modal(channel)
                    )
                except SlackApiError as error:  # an expired trigger: Slack allows 3 s
                    reply(blocks.notice(MODAL_FAILED.format(error.response.get("error")), "⚠️"))
            case ListRequests():
                ack()
                desk.in_background(desk.list, reply=reply)
            case Status(target=target):
                ack()
                desk.in_background(desk.status, target, reply=reply)
            case Cancel(request_id=request_id):
                ack()
                desk.in_background(desk.cancel, request_id, user, reply=reply)
            case Enable(host=host):
                ack()
                desk.in_background(desk.enable, host, user, reply=reply)
            case MigrateCommand() | BatchCommand() as migration:
                if refused := desk.channel_refusal(channel):
                    say(blocks.notice(refused, "⛔"))
                else:
                    say(blocks.notice(f"Checking {_subject(migration)} …", "⏳"))
                    desk.in_background(desk.file, migration, user, channel, reply=reply)


def _subject(command: MigrateCommand | BatchCommand) -> str:
    """What the first answer says is being checked: `vm01`, `evacuate host1`, `3 VMs`."""
    if isinstance(command, MigrateCommand):
        return command.vm
    if command.evacuate:
        return f"evacuate {command.evacuate}"
    return f"tag {command.tag}" if command.tag else f"{len(command.vms)} VMs"
