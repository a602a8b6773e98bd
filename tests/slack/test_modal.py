"""The "Migrate VM" modal: bare /migrate opens it, selects search the pool, it files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.slackdouble import block_actions, block_suggestion, payload_body, view_submission
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, Bot, running_bot


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def open_modal(bot: Bot) -> dict[str, Any]:
    assert bot.command("") == {}
    (view,) = bot.until(lambda: list(bot.slack.views.values()))
    return view


def uuid(bot: Bot, cls: str, name: str) -> str:
    return getattr(bot.pool.x, cls).get_uuid(bot.pool.ref(cls, name))


def test_bare_command_opens_the_modal_whose_selects_search(bot: Bot) -> None:
    """/migrate alone opens the modal; typing in the VM select lists matching VMs."""
    view = open_modal(bot)
    assert view["title"]["text"] == "Migrate VM"
    assert json.loads(view["private_metadata"]) == {"channel": CHANNEL}
    body = payload_body(block_suggestion(user_id="U1", action_id="vm", value="vm0", view=view))
    status, answer = bot.send(body)
    assert status == 200
    texts = [o["text"]["text"] for o in json.loads(answer)["options"]]
    assert any(t.startswith("vm01 (running on host1)") for t in texts)
    assert all("vm0" in t for t in texts)


def test_choosing_a_vm_adds_its_disks_and_submitting_files_the_request(bot: Bot) -> None:
    """Choosing vm01 adds an SR select per disk; submitting posts the request in the channel."""
    view = open_modal(bot)
    vm01 = uuid(bot, "VM", "vm01")
    press = block_actions(
        user_id="U1",
        channel_id=CHANNEL,
        message_ts="",
        action_id="vm",
        response_url="",
        message={"blocks": view["blocks"]},
    )
    press |= {
        "container": {"type": "view", "view_id": view["id"]},
        "view": view,
        "actions": [
            {
                "action_id": "vm",
                "block_id": "vm",
                "type": "external_select",
                "selected_option": {"text": {"type": "plain_text", "text": "vm01"}, "value": vm01},
            }
        ],
    }
    assert bot.send(payload_body(press))[0] == 200
    updated = bot.until(
        lambda: [
            v
            for v in bot.slack.views.values()
            if any(b.get("block_id", "").startswith("disk_") for b in v["blocks"])
        ]
    )[0]
    assert [b["block_id"] for b in updated["blocks"] if b["block_id"].startswith("disk_")] == [
        "disk_0",
        "disk_1",
    ]
    values = {
        "vm": {"vm": {"type": "external_select", "selected_option": {"value": vm01}}},
        "host": {
            "host": {
                "type": "external_select",
                "selected_option": {"value": uuid(bot, "host", "host3")},
            }
        },
        "sr": {
            "sr": {"type": "external_select", "selected_option": {"value": uuid(bot, "SR", "nfs1")}}
        },
        "mode": {"mode": {"type": "radio_buttons", "selected_option": {"value": "offline"}}},
        "shutdown": {"shutdown": {"type": "radio_buttons", "selected_option": {"value": "clean"}}},
        "at": {"at": {"type": "plain_text_input", "value": None}},
    }
    status, _ = bot.send(payload_body(view_submission(user_id="U1", view=updated, values=values)))
    assert status == 200
    req = bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts and bot.request(1))
    assert req.channel == CHANNEL and req.mode == "offline" and req.requester == "U1"
    assert "host1 → host3" in bot.text_of(1)


def test_submitting_without_a_host_shows_a_field_error(bot: Bot) -> None:
    """A modal without a destination is answered with a field error, and nothing is filed."""
    view = open_modal(bot)
    values = {"vm": {"vm": {"type": "external_select", "selected_option": None}}}
    status, answer = bot.send(payload_body(view_submission(user_id="U1", view=view, values=values)))
    assert status == 200
    assert json.loads(answer)["response_action"] == "errors"
    assert bot.core.store.open_requests() == []
