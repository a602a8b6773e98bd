"""Found by the campaign: a choice in the modal (a VM, what to move) whose view was closed
since, or rebuilt by a later choice, made `views.update` fail (`not_found`,
`hash_conflict`), and the bot logged an exception and told the person "Something went
wrong". The person has moved on: the newer form (or none) stands, nothing is said."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.slackdouble import payload_body
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, Bot, running_bot


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def _choice(action_id: str, value: str, view_id: str, view_hash: str | None) -> bytes:
    view: dict[str, Any] = {
        "id": view_id,
        "type": "modal",
        "callback_id": "migrate_modal",
        "private_metadata": json.dumps({"channel": CHANNEL}),
        "blocks": [],
    }
    if view_hash is not None:
        view["hash"] = view_hash
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "double"},
        "user": {"id": "U1", "username": "u1", "name": "u1", "team_id": "T1"},
        "api_app_id": "A0DOUBLE",
        "container": {"type": "view", "view_id": view_id},
        "trigger_id": "1.2.3",
        "view": view,
        "actions": [
            {"action_id": action_id, "block_id": action_id, "selected_option": {"value": value}}
        ],
    }
    return payload_body(payload)


@pytest.mark.parametrize(
    ("action_id", "value", "closed"),
    [
        ("vm", "vm01", False),  # a later choice rebuilt the form: stale hash
        ("vm", "vm01", True),  # the form was closed
        ("what", "several", True),
    ],
)
def test_a_choice_on_a_form_closed_or_changed_since_says_nothing(
    bot: Bot, action_id: str, value: str, closed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    bot.command("")  # opens the form
    view_id = next(iter(bot.until(lambda: bot.slack.views, 10)))  # opened after the ack
    if action_id == "vm":
        value = bot.pool.x.VM.get_uuid(bot.pool.ref("VM", value))
    with caplog.at_level(logging.ERROR):
        status, _ = bot.send(
            _choice(action_id, value, "VGONE" if closed else view_id, None if closed else "old")
        )
        assert status == 200
        bot.service.front.desk.stop()  # waits for the update and what it would answer
    assert bot.slack.calls_to("views.update"), "the update was not even tried"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [e for e in bot.slack.ephemerals() if "Something went wrong" in e.text]
