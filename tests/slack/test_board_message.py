"""A busy channel's board message: its rows, heading, trimming and limits."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from bot.slack.blocks.board import Row as BoardRow
from bot.slack.blocks.board import board_line, board_message
from tests.slack.blockkit import EVIL, LONG, TOKEN, assert_limits, mrkdwn_texts


def board_rows(count: int, vm: str = "vm01", what: str = "migrating") -> list[BoardRow]:
    return [BoardRow(i, vm, "host3", "running", what, 0.42) for i in range(1, count + 1)]


def test_board_line_reads_icon_id_route_news_and_percent():
    """One row: where the request goes and its latest news, with the percent while running."""
    running = BoardRow(12, "vm01", "host3", "running", "migrating", 0.456)
    assert board_line(running) == "⏳ #12 *vm01* → host3 · migrating 46%"
    done = BoardRow(13, "vm02", "host2", "succeeded", "vm02 is running on host2")
    assert board_line(done) == "✅ #13 *vm02* → host2 · vm02 is running on host2"
    gone = BoardRow(14, "vm03", "host2", "cancelled", "cancelled")
    assert board_line(gone).startswith("⛔ #14")


def test_board_says_busy_while_running_and_all_ended_at_the_end():
    """The heading explains why the board is there, then says when everyone has ended."""
    rows = board_rows(3)
    busy = board_message(rows, 0)
    assert "Busy channel: 3 of 3 migrations under way" in mrkdwn_texts(busy)[1]
    one_done = [replace(rows[0], state="succeeded"), *rows[1:]]
    assert (
        "Busy channel: 2 of 3 migrations under way" in mrkdwn_texts(board_message(one_done, 0))[1]
    )
    assert "3 running" in busy["text"]
    ended = [replace(r, state="succeeded") for r in rows[:2]]
    ended.append(replace(rows[2], state="failed", what="NOT_ENOUGH_MEMORY"))
    final = board_message(ended, 0)
    assert "All 3 migrations on this board have ended" in mrkdwn_texts(final)[1]
    assert "1 failed · 2 succeeded" in final["text"]


def test_board_leaves_the_oldest_ended_rows_to_their_threads():
    """Beyond 100 rows the oldest finished ones are counted, the running ones all shown."""
    rows = [replace(r, state="succeeded") for r in board_rows(60)]
    rows += [BoardRow(i, "vm", "host3", "running", "migrating") for i in range(61, 121)]
    message = board_message(rows, 0)
    text = "\n".join(mrkdwn_texts(message)[1:])
    assert "… and 20 that ended earlier (see their threads)" in text
    assert "#20 " not in text and "#21 " in text and "#120 " in text
    assert_limits(message)


def test_worst_case_board_fits_slack_limits_and_pings_nobody():
    """200 rows with 300-character hostile names and news keep every limit."""
    message = board_message(board_rows(200, vm=LONG + EVIL, what=EVIL * 20), 0)
    assert_limits(message)
    assert len(json.dumps(message, ensure_ascii=False)) < 15_000
    assert re.search(r"… and \d+ more", mrkdwn_texts(message)[-2])
    for text in mrkdwn_texts(message):
        assert "<!channel>" not in text and "<@U999>" not in text
        assert TOKEN.sub("", text).count("<") == 0, text
