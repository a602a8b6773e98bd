"""A busy channel's board: when it opens, what it shows, when it closes.

The rules are pure (`bot.slack.busy`); the end-to-end test runs five migrations at once in one
channel through bolt's real request path, against a Slack double that enforces Slack's
published limits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine import events as ev
from bot.simulator.scenario import GIB, generate
from bot.slack.blocks.board import Row
from bot.slack.busy import Boards, is_news, row_change
from bot.slackdouble import SlackDouble
from bot.states import State
from tests.support.pool import Pool, scenario_pool
from tests.support.slack_rig import CHANNEL, GROUPS, USERS, serving

MOVES = 5


def row(rid: int, state: str = "running") -> Row:
    return Row(rid, f"vm{rid}", "host3", state, state)


@pytest.mark.parametrize(
    ("event", "change"),
    [
        (ev.StateChanged(1, "approved", "U2", "approved by U2"), {"state": "approved"}),
        (ev.StateChanged(1, "cancelled", "U1", "cancelled by U1"), {"what": "cancelled by U1"}),
        (ev.StepStarted(1, "migrate", "migrating"), {"state": "running", "what": "migrating"}),
        (ev.StepProgress(1, "migrate", 0.5, 30.0), {"fraction": 0.5}),
        (ev.StepDone(1, "migrate", 31.0, "migrate done in 31 s"), {"what": "migrate done"}),
        (ev.Succeeded(1, "vm1 is running on host3", 31.0, 0.0), {"state": "succeeded"}),
        (ev.Failed(1, "no memory", "pick another host", "X", False), {"state": "failed"}),
        (ev.Stuck(1, "OpaqueRef:h", "host1", "vm1 still migrating"), {"state": "stuck"}),
    ],
)
def test_events_change_their_row(event: ev.Event, change: dict[str, object]) -> None:
    """Each event the board shows sets the row's state or news; progress only its percent."""
    found = row_change(event)
    assert found is not None and change.items() <= found.items()
    assert is_news(event) == (not isinstance(event, ev.StepProgress))


def test_what_the_board_does_not_show() -> None:
    """A revision before approval and a stall notice are thread matters only."""
    assert row_change(ev.Revised(1, "U1", "snapshots deleted")) is None
    assert row_change(ev.StepStalled(1, "migrate", 600.0)) is None


def test_an_ended_board_takes_only_its_own_requests_news() -> None:
    """Rows join while it is open; once all have ended it still takes its own requests'
    news (a late "stuck"), and another request's late news gets a new board."""
    boards = Boards()
    board = boards.open("C1", [row(1), row(2)])
    assert boards.open("C1", [row(1, "queued")]) is board  # one board per channel
    assert board.rows[1].state == "running"  # an open board keeps what it knows
    assert boards.get("C1", 3) is board and boards.get("C2", 3) is None
    boards.note(board, row(3), {"state": "running", "what": "migrating"})
    boards.note(board, row(1), {"state": "succeeded", "what": "done"})
    boards.note(board, row(2), {"state": "failed", "what": "no memory"})
    assert not board.ended and not board.rows[3].finished
    boards.note(board, row(3), {"state": "cancelled", "what": "cancelled"})
    assert board.ended and all(r.finished for r in board.rows.values())
    assert "have ended" in boards.message(board, 0)["blocks"][0]["text"]["text"]
    assert boards.get("C1", 1) is board and boards.get("C1", 4) is None
    boards.note(board, row(1), {"state": "stuck", "what": "vm1 still migrating"})
    assert not board.ended and boards.get("C1", 4) is board  # open again: 4 may join
    boards.note(board, row(1), {"state": "succeeded", "what": "cleared"})
    assert boards.open("C1", [row(4)]) is not board


# -- end to end --------------------------------------------------------------------------------
@pytest.fixture
def busy_pool() -> Iterator[Pool]:
    """Live moves of 30 to 120 s of the pool's time (about 1 to 2 s of real time in the
    rig): all five are still running when the last is approved."""
    data = generate(vms=12, hosts=3, srs=4, seed=3)
    data["timing"] = {"memory_bytes_per_s": GIB / 30}
    yield from scenario_pool(data)


def _moves(pool: Pool) -> list[tuple[str, str]]:
    """MOVES running VMs, each to the next host (live, disks stay on their shared SR)."""
    x = pool.x
    hosts = sorted(x.host.get_name_label(h) for h in x.host.get_all())
    running = sorted(
        (x.VM.get_name_label(vm), x.host.get_name_label(x.VM.get_resident_on(vm)))
        for vm, r in x.VM.get_all_records().items()
        if r["power_state"] == "Running" and not r["is_control_domain"]
    )
    return [(vm, hosts[(hosts.index(h) + 1) % len(hosts)]) for vm, h in running[:MOVES]]


def _board_rows(text: str) -> dict[int, str]:
    return {int(m[2]): m[1] for m in re.finditer(r"^(\S+) #(\d+) ", text, re.M)}


def test_many_migrations_in_one_channel_get_a_board(busy_pool: Pool, tmp_path: Path) -> None:
    """Five approved at once: the thread posts queue, so a board opens, carries each
    request's news, and ends saying all have ended; every thread still gets every line."""
    workspace = SlackDouble(
        users=USERS, usergroups=GROUPS, channels={CHANNEL: "ops"}, enforce_limits=True
    )
    with (
        workspace as slack,
        serving(busy_pool, tmp_path, slack=slack, bot_max_concurrent_migrations=MOVES) as bot,
    ):
        for vm, dest in _moves(busy_pool):
            bot.command(f"{vm} to {dest}")
        ids = list(range(1, MOVES + 1))
        bot.until(lambda: all(bot.core.store.get(i) and bot.request(i).message_ts for i in ids))
        assert len(slack.messages(CHANNEL)) == MOVES  # no board while Slack keeps up
        approving = time.time()
        for i in ids:
            bot.press("approve", i, "ULEAD")
        for i in ids:
            assert bot.state(i, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
        assert bot.service.front.outbox.flush(60)

        boards = [m for m in slack.messages(CHANNEL) if m.text.startswith("migrations in")]
        assert len(boards) == 1, [m.text for m in slack.messages(CHANNEL)]
        text = "\n".join(b["text"]["text"] for b in boards[0].blocks if b["type"] == "section")
        assert "All 5 migrations on this board have ended" in text
        assert _board_rows(text) == dict.fromkeys(ids, "✅"), text
        assert boards[0].edits >= 1  # posted while they ran, edited as they ended
        edits = [c.at for c in slack.calls_to("chat.update") if c.args["ts"] == boards[0].ts]
        shown = max([float(boards[0].ts), *edits])  # its last version reached Slack
        outcomes = [float(m.ts) for i in ids for m in bot.thread(i) if m.reply_broadcast]
        assert shown < max(outcomes)  # the board told everyone before the threads did
        for i in ids:
            thread = [m.text for m in bot.thread(i)]
            assert any("approved by" in t for t in thread), thread
            assert any(t.startswith("✅ migrating done") for t in thread), thread
            assert [m for m in bot.thread(i) if m.reply_broadcast], thread
        late = [c for c in slack.calls if c.at >= approving and c.status == 429]
        assert late == [], late
