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


def choose(bot: Bot, view: dict[str, Any], action_id: str, value: str, text: str = "") -> None:
    """Choose `value` in a modal element that dispatches its choice, as Slack reports it."""
    block = next(b for b in view["blocks"] if b.get("element", {}).get("action_id") == action_id)
    press = block_actions(
        user_id="U1",
        channel_id=CHANNEL,
        message_ts="",
        action_id=action_id,
        response_url="",
        message={"blocks": view["blocks"]},
    )
    press |= {
        "container": {"type": "view", "view_id": view["id"]},
        "view": view,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block["block_id"],
                "type": block["element"]["type"],
                "selected_option": {"text": {"type": "plain_text", "text": text}, "value": value},
            }
        ],
    }
    assert bot.send(payload_body(press))[0] == 200


def form(bot: Bot, what: str) -> dict[str, Any]:
    """The modal once it shows the form for `what` (one VM, several, evacuate)."""
    return bot.until(
        lambda: [
            v
            for v in bot.slack.views.values()
            if v["blocks"][0]["element"]["initial_option"]["value"] == what
        ]
    )[0]


def block_ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"]]


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
    choose(bot, view, "vm", vm01, "vm01")
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


def test_choosing_what_to_move_switches_the_form(bot: Bot) -> None:
    """ "Evacuate a host", "Several VMs" and back to "One VM": the form follows each choice,
    and the new selects search the pool."""
    view = open_modal(bot)
    assert view["blocks"][0]["element"]["type"] == "radio_buttons"
    choose(bot, view, "what", "evacuate", "Evacuate a host")
    evacuate = form(bot, "evacuate")
    assert block_ids(evacuate) == ["what", "evacuate", "to", "mode", "shutdown", "at"]
    choose(bot, evacuate, "what", "several", "Several VMs")
    several = form(bot, "several")
    assert block_ids(several) == ["what", "vms", "tag", "to", "sr", "mode", "shutdown", "at"]
    for action_id, typed, found in (("vms", "vm0", "vm01 ("), ("hosts", "host", "host2")):
        suggestion = block_suggestion(user_id="U1", action_id=action_id, value=typed, view=several)
        status, answer = bot.send(payload_body(suggestion))
        assert status == 200
        assert any(o["text"]["text"].startswith(found) for o in json.loads(answer)["options"])
    choose(bot, several, "what", "one", "One VM")
    assert block_ids(form(bot, "one")) == block_ids(view)
    assert len(bot.slack.views) == 1, "one modal, updated in place"


def test_a_switch_on_a_form_changed_since_is_left_alone(bot: Bot) -> None:
    """A choice made on an outdated copy of the form (its hash) does not overwrite the newer
    one, and nobody is told something went wrong."""
    view = open_modal(bot)
    choose(bot, {**view, "hash": "outdated"}, "what", "evacuate")
    bot.until(lambda: bot.slack.calls_to("views.update"))
    bot.service.front.desk.stop()  # waits for the switch to have been tried
    assert block_ids(next(iter(bot.slack.views.values()))) == block_ids(view)
    assert not bot.slack.ephemerals()


def test_submitting_evacuate_a_host_posts_the_batch_request(bot: Bot) -> None:
    """ "Evacuate a host" with host2 files one batch request in the channel, as the command."""
    view = open_modal(bot)
    choose(bot, view, "what", "evacuate", "Evacuate a host")
    evacuate = form(bot, "evacuate")
    values = {
        "what": {"what": {"type": "radio_buttons", "selected_option": {"value": "evacuate"}}},
        "evacuate": {
            "host": {
                "type": "external_select",
                "selected_option": {"value": uuid(bot, "host", "host2")},
            }
        },
        "to": {"hosts": {"type": "multi_external_select", "selected_options": []}},
        "mode": {"mode": {"type": "radio_buttons", "selected_option": {"value": "auto"}}},
        "shutdown": {"shutdown": {"type": "radio_buttons", "selected_option": {"value": "clean"}}},
        "at": {"at": {"type": "plain_text_input", "value": None}},
    }
    status, answer = bot.send(
        payload_body(view_submission(user_id="U1", view=evacuate, values=values))
    )
    assert (status, answer) == (200, b"")
    req = bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts and bot.request(1))
    assert req.channel == CHANNEL and req.requester == "U1" and req.is_batch
    assert "#1 · evacuate host2" in bot.text_of(1)


def test_several_vms_and_a_tag_is_a_field_error(bot: Bot) -> None:
    """VMs and a tag both given: one sentence under the VMs, and nothing is filed."""
    view = open_modal(bot)
    choose(bot, view, "what", "several")
    several = form(bot, "several")
    vms = [{"value": uuid(bot, "VM", name)} for name in ("vm01", "vm02")]
    values = {
        "what": {"what": {"type": "radio_buttons", "selected_option": {"value": "several"}}},
        "vms": {"vms": {"type": "multi_external_select", "selected_options": vms}},
        "tag": {"tag": {"type": "plain_text_input", "value": "web"}},
    }
    status, answer = bot.send(
        payload_body(view_submission(user_id="U1", view=several, values=values))
    )
    assert status == 200
    assert json.loads(answer) == {
        "response_action": "errors",
        "errors": {"vms": "choose VMs or a tag, not both"},
    }
    assert bot.core.store.open_requests() == []
