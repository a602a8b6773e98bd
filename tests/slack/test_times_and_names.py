"""Slack where people already click: times each reader sees in their own zone, and names
they half-remember, through signed requests to the real Slack front."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.slackdouble import block_suggestion, payload_body
from bot.states import State
from tests.support.pool import Pool
from tests.support.slack_rig import Bot, filed, running_bot

DATE = re.compile(r"<!date\^(\d+)\^\{date_short_pretty\} \{time\}\|([^>]+)>")


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def in_an_hour(bot: Bot) -> str:
    return datetime.fromtimestamp(bot.pool.clock.now() + 3600, UTC).strftime("%Y-%m-%dT%H:%MZ")


def context_text(message: Any) -> str:
    return " ".join(
        e["text"] for b in message.blocks if b["type"] == "context" for e in b["elements"]
    )


def readable_utc(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_thread_lines_show_times_as_slack_dates(bot: Bot) -> None:
    """The approval's line carries its time, and the scheduled line its window, as Slack
    dates (each reader's zone) whose fallback is readable UTC, not an ISO string."""
    rid = filed(bot, f"vm02 to host3 at={in_an_hour(bot)}")
    bot.press("approve", rid, "ULEAD")
    req = bot.state(rid, State.SCHEDULED)
    assert req.run_at is not None and req.approved_at is not None

    def line(start: str) -> str | None:
        return next((context_text(m) for m in bot.thread(rid) if m.text.startswith(start)), None)

    approved = bot.until(lambda: line("approved by"))
    ((epoch, fallback),) = DATE.findall(approved)
    assert 0 <= int(epoch) - int(req.approved_at) <= 60  # when the line was written
    assert fallback == readable_utc(int(epoch))
    scheduled = bot.until(lambda: line("scheduled for its window"))
    window = f"scheduled for its window: <!date^{int(req.run_at)}^{{date_short_pretty}} {{time}}|"
    assert scheduled.startswith(window + readable_utc(req.run_at) + ">")


def test_half_a_name_is_enough(bot: Bot) -> None:
    """`/migrate mail to host1` offers mail01.example.com; the modal's search lists it
    before a name that only contains `mail`, whatever the case typed."""
    bot.pool.x.VM.set_name_label(bot.pool.ref("VM", "mail01"), "mail01.example.com")
    bot.pool.x.VM.set_name_label(bot.pool.ref("VM", "dns02"), "gmail-relay")
    bot.command("mail to host1")
    said = bot.until(lambda: [r for r in bot.slack.responses if "did you mean" in r.body["text"]])
    assert "no VM 'mail'; did you mean mail01.example.com or gmail-relay?" in said[0].body["text"]
    assert bot.core.store.open_requests() == []

    assert bot.command("") == {}
    (view,) = bot.until(lambda: list(bot.slack.views.values()))
    typed = block_suggestion(user_id="U1", action_id="vm", value="MAIL", view=view)
    status, answer = bot.send(payload_body(typed))
    assert status == 200
    shown = [o["text"]["text"] for o in json.loads(answer)["options"]]
    assert [t.split(" (")[0] for t in shown] == ["mail01.example.com", "gmail-relay"]
