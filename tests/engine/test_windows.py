"""Maintenance windows, approval expiry, missed windows and the audit export, end to end."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.states import State
from tests.support.pool import Pool
from tests.support.slack_rig import Bot, buttons, filed, serving, slack_double


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    with serving(pool, tmp_path) as running:
        yield running


def in_an_hour(bot: Bot) -> str:
    when = datetime.fromtimestamp(bot.pool.clock.now() + 3600, UTC)
    return when.strftime("%Y-%m-%dT%H:%MZ")


def scheduled(bot: Bot) -> int:
    """vm02 to host3 with a window an hour from now, approved: waiting for its window."""
    rid = filed(bot, f"vm02 to host3 at={in_an_hour(bot)}")
    bot.press("approve", rid, "ULEAD")
    assert bot.state(rid, State.SCHEDULED)
    return rid


def tick_after(bot: Bot, seconds: float) -> None:
    """Time passes; the scheduler's ticker looks at what is due (as it does every 5 s)."""
    bot.pool.clock.advance(seconds)
    bot.core.pool().jobs.tick()


def test_approved_before_the_window_runs_at_the_window(bot: Bot) -> None:
    """Approved now, scheduled; shown in the list; at the window it re-checks and runs."""
    rid = filed(bot, f"vm02 to host3 at={in_an_hour(bot)}")
    assert "window" in bot.text_of(rid)
    bot.press("approve", rid, "ULEAD")
    assert bot.state(rid, State.SCHEDULED)
    bot.command("list")
    bot.until(lambda: [r for r in bot.slack.responses if "scheduled" in str(r.body).lower()])
    tick_after(bot, 1800)
    assert bot.request(rid).state == State.SCHEDULED  # not yet
    tick_after(bot, 1900)
    assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED


def test_a_blocker_at_the_window_stops_the_run(bot: Bot) -> None:
    """The destination was disabled before the window: nothing moves, the thread says why."""
    rid = scheduled(bot)
    sim = bot.pool.sim
    sim.db.update("host", bot.pool.ref("host", "host3"), enabled=False)
    tick_after(bot, 3700)
    assert bot.state(rid, State.FAILED, State.SUCCEEDED).state == State.FAILED
    told = bot.until(lambda: [m for m in bot.thread(rid) if m.reply_broadcast])
    assert "blocker" in told[0].text
    assert "Async.VM.pool_migrate" not in sim.calls.counts


def test_a_scheduled_request_survives_a_restart(pool: Pool, tmp_path: Path) -> None:
    """Approved and scheduled, the bot restarts before the window: the new one runs it."""
    with slack_double() as slack:
        with serving(pool, tmp_path, slack) as first:
            rid = scheduled(first)
        with serving(pool, tmp_path, slack) as second:
            tick_after(second, 3700)
            assert second.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED


def test_a_window_missed_while_the_bot_was_down(pool: Pool, tmp_path: Path) -> None:
    """Down past the window and its grace: the request is marked missed, not run late."""
    with slack_double() as slack:
        with serving(pool, tmp_path, slack) as first:
            rid = scheduled(first)
        pool.clock.advance(3600 + 901)  # the bot is down through the window and the grace
        with serving(pool, tmp_path, slack) as second:
            second.core.pool().jobs.tick()
            assert second.state(rid, State.MISSED)
            assert "Async.VM.pool_migrate" not in pool.sim.calls.counts
            told = second.until(lambda: [m for m in second.thread(rid) if "missed" in m.text])
            assert told


def test_unapproved_requests_expire_and_lose_their_buttons(bot: Bot) -> None:
    """After BOT_APPROVAL_TTL_SECONDS the request expires; one with a window waits for it."""
    plain = filed(bot, "vm02 to host3")
    windowed = filed(bot, f"mail01 to host1 at={in_an_hour(bot)}")
    tick_after(bot, 1801)
    assert bot.state(plain, State.EXPIRED)
    assert bot.request(windowed).state == State.PENDING  # may wait until its window
    bot.until(lambda: buttons(bot.request_message(plain)["blocks"]) == [])
    assert bot.until(lambda: [m for m in bot.thread(plain) if "expired" in m.text])
    tick_after(bot, 1900)
    assert bot.state(windowed, State.EXPIRED)


def test_cancel_removes_a_scheduled_request(bot: Bot) -> None:
    """`/migrate cancel N` before the window: it never runs."""
    rid = scheduled(bot)
    bot.command(f"cancel {rid}", user="U1")
    assert bot.state(rid, State.CANCELLED)
    tick_after(bot, 3700)
    assert bot.request(rid).state == State.CANCELLED


def test_audit_export_as_json_lines_and_csv(bot: Bot, tmp_path: Path) -> None:
    """`migrate-bot audit` writes one event per line: time, request, actor, action, details."""
    rid = filed(bot, "vm02 to host3")
    bot.press("approve", rid, "ULEAD")
    bot.state(rid, State.SUCCEEDED)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XEN_", "BOT_", "SLACK_"))}
    env["BOT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'bot.db'}"

    def export(*args: str) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "bot", "audit", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return run.stdout

    lines = [json.loads(line) for line in export("--since", "2020-01-01").splitlines()]
    mine = [line for line in lines if line["request_id"] == rid]
    actions = [line["action"] for line in mine]
    assert actions[0] == "created" and "approved" in actions and actions[-1] == "succeeded"
    assert {line["actor"] for line in mine} >= {"U1", "ULEAD", "bot"}
    rows = list(csv.DictReader(io.StringIO(export("--format", "csv", "--request", str(rid)))))
    assert [r["action"] for r in rows] == actions
    assert json.loads(rows[0]["details"])["vm"] == "vm02"
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--since", "last tuesday"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "--since" in bad.stderr


def test_a_scheduled_evacuation_survives_a_restart_and_runs_at_its_window(
    pool: Pool, tmp_path: Path
) -> None:
    """`evacuate host2 at=…` approved now holds its VMs; the bot restarts; at the window
    the new one disables host2 and moves them."""
    vm = pool.ref("VM", "ci-runner-1")  # its local disk would keep host2 from emptying
    pool.run(pool.x.Async.VM.hard_shutdown(vm))
    pool.x.VM.destroy(vm)
    with slack_double() as slack:
        with serving(pool, tmp_path, slack) as first:
            rid = filed(first, f"evacuate host2 mode=offline at={in_an_hour(first)}")
            first.press("approve", rid, "ULEAD")
            assert first.state(rid, State.SCHEDULED)
            assert {c.state for c in first.core.store.children(rid)} == {State.APPROVED}
        host2 = pool.ref("host", "host2")
        assert pool.x.host.get_enabled(host2)  # not before the window
        with serving(pool, tmp_path, slack) as second:
            tick_after(second, 3700)
            done = second.state(rid, State.SUCCEEDED, State.FAILED)
            assert done.state == State.SUCCEEDED, done.outcome
            assert not pool.x.host.get_enabled(host2)
            assert done.outcome == (
                "All 4 moved. host2 is empty and stays disabled: Re-enable it when its "
                "maintenance is done."
            )
