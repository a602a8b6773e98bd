"""The naive design: the bot's bolt App pattern with the work done before the ack."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.planning.command import (
    USAGE,
    BadCommand,
    Cancel,
    Help,
    ListRequests,
    MigrateCommand,
    Status,
    parse,
)
from bot.planning.planner import UserError
from bot.slack import blocks
from bot.slack.actions import Action
from bot.slack.desk import Desk
from bot.store.records import VMBusy
from bot.wiring import Core
from tests.support.slack_rig import SECRET


def naive_app(core: Core, desk: Desk, front_client: Any, executor: ThreadPoolExecutor) -> App:
    """bolt's App as in `bot.slack.app`, but every listener works first and acks after."""
    app = App(
        client=front_client,
        token_verification_enabled=False,
        signing_secret=SECRET,
        listener_executor=executor,
    )

    def answer(fn: Callable[..., None], *args: Any) -> dict[str, Any]:
        """Run a desk method here and now; what it would have replied."""
        said: dict[str, Any] = {}
        try:
            fn(*args, said.update)
        except UserError as error:
            said.update(blocks.notice(str(error), "⚠️"))
        except VMBusy as busy:
            said.update(blocks.notice(f"That VM already has a request: #{busy.request_id}."))
        except Exception:  # as the desk does: logged, answered, never a 500
            said.update(blocks.notice("Something went wrong on our side; it is logged.", "❌"))
        return said or blocks.notice("done")

    def preview(migration: MigrateCommand, user: str) -> dict[str, Any]:
        try:
            found = core.pool().engine.preview(migration)  # XAPI in the request path
        except UserError as error:
            return blocks.notice(str(error), "⚠️")
        card = blocks.Card(0, 0, "pending", user, found.summary(), found.plan.shutdown)
        return blocks.dry_run_message(card)

    @app.command("/migrate")
    def migrate(ack: Ack, command: dict[str, Any]) -> None:
        user = command["user_id"]
        match parse(command.get("text") or ""):
            case BadCommand(message=message):
                said = blocks.usage_message(message)
            case Help():
                said = blocks.usage_message(USAGE)
            case ListRequests():
                said = answer(desk.list)
            case Status(target=target):
                said = answer(desk.status, target)
            case Cancel(request_id=request_id):
                said = answer(desk.cancel, request_id, user)
            case MigrateCommand() as migration:
                said = preview(migration, user)
            case _:
                said = blocks.notice("the form is not part of this benchmark")
        ack(response_type="ephemeral", **said)

    def press(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        value, user = str(action.get("value", "")), body["user"]["id"]
        said = answer(desk.press, Action(action["action_id"]), value, user)
        ack()
        respond(response_type="ephemeral", replace_original=False, **said)

    for action_id in Action:
        app.action(action_id)(press)
    return app
