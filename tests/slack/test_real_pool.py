"""What people see in Slack when the pool is as hard as xapi: signed requests, the Slack
double, the simulated pool (ISOs in snapshots, a VM left down, a plan that changed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.states import State
from tests.support.pool import Pool
from tests.support.slack_rig import Bot, filed, running_bot


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def test_delete_snapshots_through_slack_keeps_the_library_iso(bot: Bot) -> None:
    """vm01's snapshot's drive holds debian-12.iso: bob presses Delete 1 snapshot; the
    snapshot and its two disks go, the ISO stays in the library and in vm01's drive."""
    x = bot.pool.x
    vm = bot.pool.ref("VM", "vm01")
    iso = bot.pool.ref("VDI", "debian-12.iso")
    (snapshot,) = x.VM.get_snapshots(vm)
    disks = bot.pool.disks(snapshot)
    rid = filed(bot, "vm01 to host3 sr=nfs1")
    bot.press("fix_delete_snapshots", rid, "ULEAD")
    bot.until(lambda: "deleted 1 snapshot(s) of vm01" in str([m.text for m in bot.thread(rid)]))
    assert x.VM.get_snapshots(vm) == []
    assert not set(disks) & set(x.VDI.get_all())
    assert iso in x.VDI.get_all() and iso in [x.VBD.get_VDI(v) for v in x.VM.get_VBDs(vm)]


def test_a_vm_left_down_is_said_loudly_and_pings_the_approvers(bot: Bot) -> None:
    """Every start of vm02 fails after its offline move: the outcome, broadcast to the
    channel, says vm02 is DOWN and why, and mentions the approvers."""
    bot.pool.sim.faults.fail_starts(bot.pool.ref("VM", "vm02"), times=10)
    rid = filed(bot, "vm02 to host3 mode=offline")
    bot.press("approve", rid, "ULEAD")
    bot.state(rid, State.FAILED)
    outcome = bot.until(lambda: [m for m in bot.thread(rid) if "is DOWN" in m.text])[0]
    shown = str(outcome.blocks)
    assert "vm02 is DOWN" in shown and "<@ULEAD>" in shown and "<!subteam^S1>" in shown
    assert "host2:" in shown and "host3:" in shown


def test_a_plan_that_changed_is_refused_and_re_check_files_it_again(bot: Bot) -> None:
    """archive01 is started after its approval for an at= window: at the window the run is
    refused; Re-check in the thread files a live move that needs approval again."""
    rid = filed(bot, "archive01 to host2 at=23:59")
    bot.press("approve", rid, "ULEAD")
    bot.state(rid, State.SCHEDULED)
    x = bot.pool.x
    vm = bot.pool.ref("VM", "archive01")
    bot.pool.run(x.Async.VM.start_on(vm, bot.pool.ref("host", "host1"), False, False))
    bot.core.store.update(rid, run_at=bot.pool.clock.now())
    bot.core.pool().jobs.tick()
    final = bot.state(rid, State.FAILED)
    assert final.error["code"] == "PLAN_CHANGED"
    assert x.VM.get_resident_on(vm) == bot.pool.ref("host", "host1")
    bot.press("refile", rid, "U1")
    again = bot.until(lambda: [r for r in bot.core.store.open_requests() if r.parent_id == rid])
    assert again[0].mode == "live" and again[0].state == State.PENDING
