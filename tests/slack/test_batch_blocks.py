"""A batch's messages hold Slack's limits at 200 VMs with hostile names, and say it all:
the request message summarises, the thread's table has every move, the board every row."""

from __future__ import annotations

import json

import pytest

from bot.slack.blocks import batch, request_list, request_message, request_status
from bot.slack.blocks.board import Row
from bot.states import State
from tests.slack.blockkit import (
    EVIL,
    LONG,
    assert_limits,
    batch_card,
    labels,
    mrkdwn_texts,
)

MESSAGE_CHARS = 12_000  # slack-notes: what one message may carry in its blocks


def size(message: dict) -> int:
    return sum(len(t) for t in mrkdwn_texts(message))


@pytest.mark.parametrize("name", ["vm", EVIL, LONG])
def test_two_hundred_moves_fit_one_message_and_the_thread_has_them_all(name: str) -> None:
    card = batch_card(name=name)
    message = request_message(card)
    assert_limits(message)
    assert size(message) <= MESSAGE_CHARS
    shown = json.dumps(message, ensure_ascii=False)
    assert "the full table is in the thread" in shown
    assert "<!channel>" not in shown and "<!here>" not in shown
    parts = batch.table_messages(card)
    for part in parts:
        assert_limits(part)
        assert size(part) <= MESSAGE_CHARS
    listed = "\n".join(t for part in parts for t in mrkdwn_texts(part))
    assert all(f"{i}. " in listed for i in range(1, 201)), "every move is in the thread"
    assert len(parts) == 4


def test_fix_buttons_act_on_every_vm_their_lines_name() -> None:
    # A blocker hides Approve; the fixes stay, counted for the whole batch.
    shown = labels(request_message(batch_card()))
    assert "approve" not in shown
    assert shown["fix_delete_snapshots"] == "Delete 400 snapshots"
    assert shown["fix_exclude_backup"] == "Exclude 7 from backup"


def test_the_board_holds_two_hundred_rows_with_failures_first() -> None:
    card = batch_card(State.RUNNING)
    rows = [Row(i, f"vm{i:03}", "host2", "succeeded", "moved") for i in range(1, 199)]
    rows.append(Row(199, "web03", "host3", "failed", "the live copy failed"))
    rows.append(Row(200, "db01", "host4", "running", "migrating", 0.4))
    message = batch.board_message(card, rows, 1_790_000_000)
    assert_limits(message)
    assert size(message) <= MESSAGE_CHARS
    lines = message["blocks"][0]["text"]["text"].splitlines()
    assert lines[0] == "*evacuate host1: 198 of 200 moved* · 1 running · 0 waiting"
    assert "web03" in lines[1] and "db01" in lines[2]
    assert "more" in json.dumps(message)  # finished rows beyond the budget are counted


def test_outcome_offers_reenable_and_lists_and_status_name_the_batch() -> None:
    ended = batch_card(State.FAILED)
    outcome = batch.outcome_message(ended, "199 of 200 moved; web03 failed: x", "host1")
    assert labels(outcome) == {"reenable_host": "Re-enable host1"}
    assert_limits(outcome)
    listed = json.dumps(request_list([ended], [], {}), ensure_ascii=False)
    assert "evacuate host1" in listed and "200 moves" in listed
    status = request_status(ended, None, [])
    assert_limits(status)
    assert "#7 · evacuate host1" in json.dumps(status, ensure_ascii=False)
