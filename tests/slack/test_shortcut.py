"""The "Migrate a VM" global shortcut through bolt's real HTTP path: it opens the modal
from anywhere, the form asks where to post (the last channel used first) and keeps to the
channels requests are taken in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.slack.blocks import SHORTCUT_ID
from bot.slack.desk import CHOOSE_CHANNEL, NOT_THERE
from bot.slackdouble import SlackDouble, payload_body, view_submission
from tests.slack.test_modal import block_ids, choose, uuid
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, GROUPS, USERS, Bot, filed, running_bot

OTHER = "C2"  # a channel requests are not taken in


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    channels = {CHANNEL: "ops", OTHER: "random"}
    with SlackDouble(users=USERS, usergroups=GROUPS, channels=channels) as slack:
        yield from running_bot(pool, tmp_path, slack, bot_allowed_channels=[CHANNEL])


def shortcut(bot: Bot, user: str = "U1") -> dict[str, Any]:
    """Choose "Migrate a VM" in Slack's shortcuts menu; the modal it opened."""
    before = set(bot.slack.views)
    bot.driver.shortcut(SHORTCUT_ID, user)
    return bot.until(lambda: [v for k, v in bot.slack.views.items() if k not in before])[0]


def picker(view: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b["block_id"] == "channel")["element"]


def one_vm(bot: Bot, channel: str | None) -> dict[str, Any]:
    """The form's values for vm01 to host3 on nfs1, posted in `channel` (None: none chosen)."""

    def picked(kind: str, action_id: str, value: str) -> dict[str, Any]:
        return {action_id: {"type": kind, "selected_option": {"value": value}}}

    return {
        "channel": {"channel": {"type": "conversations_select", "selected_conversation": channel}},
        "vm": picked("external_select", "vm", uuid(bot, "VM", "vm01")),
        "host": picked("external_select", "host", uuid(bot, "host", "host3")),
        "sr": picked("external_select", "sr", uuid(bot, "SR", "nfs1")),
        "mode": picked("radio_buttons", "mode", "offline"),
    }


def submit(bot: Bot, view: dict[str, Any], values: dict[str, Any]) -> tuple[int, bytes]:
    return bot.send(payload_body(view_submission(user_id="U1", view=view, values=values)))


def test_the_shortcut_opens_the_modal_asking_where_with_the_last_channel_first(bot: Bot) -> None:
    """Someone who filed in #ops finds #ops chosen; someone who never filed chooses."""
    view = shortcut(bot, "U3")
    assert view["title"]["text"] == "Migrate VM" and block_ids(view)[:2] == ["channel", "what"]
    assert picker(view)["type"] == "conversations_select"
    assert "initial_conversation" not in picker(view)
    filed(bot, "vm02 to host3", user="U1")
    assert picker(shortcut(bot, "U1"))["initial_conversation"] == CHANNEL


def test_the_shortcuts_form_files_the_request_in_the_channel_chosen(bot: Bot) -> None:
    """Submitted with #ops chosen, the request is posted there, as /migrate would."""
    view = shortcut(bot)
    status, answer = submit(bot, view, one_vm(bot, CHANNEL))
    assert (status, answer) == (200, b"")
    req = bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts and bot.request(1))
    assert req.channel == CHANNEL and req.requester == "U1" and req.mode == "offline"
    assert "host1 → host3" in bot.text_of(1)


def test_a_channel_requests_are_not_taken_in_is_refused_in_plain_words(bot: Bot) -> None:
    """#random (not in BOT_ALLOWED_CHANNELS) or no channel: a sentence under the channel
    field, and nothing is filed or posted."""
    view = shortcut(bot)
    for channel, words in ((OTHER, NOT_THERE), (None, CHOOSE_CHANNEL)):
        status, answer = submit(bot, view, one_vm(bot, channel))
        assert status == 200
        assert json.loads(answer) == {"response_action": "errors", "errors": {"channel": words}}
    assert bot.core.store.open_requests() == []
    assert bot.slack.messages(OTHER) == [] and bot.slack.messages(CHANNEL) == []


def test_switching_the_form_keeps_the_channel_question_and_the_choice(bot: Bot) -> None:
    """Choosing "Evacuate a host" rebuilds the form with the channel field first, still
    holding what the person chose there."""
    filed(bot, "vm02 to host3")
    view = shortcut(bot)
    chosen = {"channel": {"channel": {"selected_conversation": CHANNEL}}}
    choose(bot, {**view, "state": {"values": chosen}}, "what", "evacuate", "Evacuate a host")
    rebuilt = bot.until(
        lambda: (v := bot.slack.views[view["id"]]) and "evacuate" in block_ids(v) and v
    )
    assert block_ids(rebuilt)[:3] == ["channel", "what", "evacuate"]
    assert picker(rebuilt)["initial_conversation"] == CHANNEL
    assert json.loads(rebuilt["private_metadata"]) == {"ask_channel": True}


def test_a_form_slack_would_not_open_is_logged(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    """A shortcut has no channel and no response_url to answer in: when Slack refuses the
    modal (after slack_sdk's retries), a warning says so and the shortcut is still acked."""
    bot.slack.fail_next("views.open", status=500, times=4)
    bot.driver.shortcut(SHORTCUT_ID, "U1")
    bot.until(lambda: "the shortcut's form did not open: internal_error" in caplog.text)
    assert bot.slack.views == {}
