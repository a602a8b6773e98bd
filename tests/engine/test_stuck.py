"""Stuck VMs after any end of a run, and the toolstack restart that clears them and
harms nothing else (xapi's rules: bot/engine/stuck.py, bot/simulator/services.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine import events as ev
from bot.planning.planner import UserError
from bot.states import State
from tests.support.engine_rig import Rig, rig_for
from tests.support.pool import Pool, Ticker

GRACE = 121  # just past the rig's stuck grace


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(pool, tmp_path)


def agent_started(rig: Rig, host: str) -> float:
    ref = rig.pool.ref("host", host)
    return float(rig.pool.x.host.get_other_config(ref)["agent_start_time"])


def restart(rig: Rig, request_id: int) -> str:
    with Ticker(rig.pool.clock, step=0.5):
        return rig.engine.restart_toolstack(request_id, "ULEAD")


def test_a_leftover_after_success_is_cleared_by_a_members_restart(rig: Rig) -> None:
    """vm02 moves but keeps its operation: after the grace it is STUCK, the notice offers
    a member (its task is gone), the restart clears it and the master is never touched."""
    vm = rig.pool.ref("VM", "vm02")
    rig.pool.sim.faults.stick_next_migration(vm)
    req = rig.approved("vm02 to host3")
    assert rig.run(req.id).state == State.SUCCEEDED
    (task,) = [e.details for e in rig.store.audit_events(request_id=req.id) if e.action == "task"]
    assert task["step"] == "migrate" and task["host"] == "host2"  # xapi ran it on vm02's host
    assert ("stuck", req.id) not in rig.engine.due()
    rig.pool.clock.advance(GRACE)
    assert ("stuck", req.id) in rig.engine.due()
    assert rig.engine.check_stuck(req.id).state == State.STUCK
    (stuck,) = rig.of(ev.Stuck, req.id)
    assert stuck.host_name == "host2" and "member" in stuck.text
    master = agent_started(rig, "host1")
    assert "is clear" in restart(rig, req.id)
    assert rig.store.get(req.id).state == State.SUCCEEDED
    assert rig.pool.x.VM.get_current_operations(vm) == {}
    assert agent_started(rig, "host1") == master
    assert rig.of(ev.Cleared, req.id)


def test_a_failed_live_run_that_wedged_the_vm_is_stuck_then_failed_again(rig: Rig) -> None:
    """build01's live move fails and leaves it "running (vm_migrate)" (the guide's case):
    after the grace it is STUCK with a restart offered; cleared, the request is failed
    again and Retry offline works."""
    vm = rig.pool.ref("VM", "build01")
    rig.pool.sim.faults.stick_next_migration(vm, at=0.6, error=["VM_MIGRATE_FAILED", "x"])
    req = rig.approved("build01 to host3")
    assert rig.run(req.id).state == State.FAILED
    rig.pool.clock.advance(GRACE)
    assert rig.engine.check_stuck(req.id).state == State.STUCK
    restart(rig, req.id)
    assert rig.store.get(req.id).state == State.FAILED
    retry = rig.engine.retry_offline(req.id, "U1")
    rig.engine.approve(retry.id, "ULEAD")
    assert rig.run(retry.id).state == State.SUCCEEDED


def test_retry_offline_on_a_wedged_vm_says_to_clear_it_first(rig: Rig) -> None:
    """Retry offline right after the wedged failure (before the grace): refused with the
    button to press, and the stuck notice is posted at once instead of a busy blocker."""
    vm = rig.pool.ref("VM", "build01")
    rig.pool.sim.faults.stick_next_migration(vm, at=0.6, error=["VM_MIGRATE_FAILED", "x"])
    req = rig.approved("build01 to host3")
    rig.run(req.id)
    with pytest.raises(UserError, match="clear it first with Restart toolstack on host"):
        rig.engine.retry_offline(req.id, "U1")
    assert rig.store.get(req.id).state == State.STUCK
    assert rig.of(ev.Stuck, req.id)
    assert len(rig.store.open_requests()) == 1  # nothing new was filed


def test_an_offline_run_blocked_by_a_leftover_carries_on_once_cleared(rig: Rig) -> None:
    """vm02's offline copy leaves its operation: the bot never piles a start on it; after
    the grace the run is STUCK, the restart clears it and the run starts the VM."""
    vm = rig.pool.ref("VM", "vm02")
    rig.pool.sim.faults.stick_next_migration(vm)
    req = rig.approved("vm02 to host3 sr=nfs2 mode=offline")
    assert rig.run(req.id).state == State.STUCK
    assert "Async.VM.start_on" not in rig.pool.sim.calls.counts
    restart(rig, req.id)
    assert rig.store.get(req.id).state == State.RUNNING and rig.dispatched[-1] == req.id
    assert rig.run(req.id).state == State.SUCCEEDED
    assert rig.pool.x.VM.get_resident_on(vm) == rig.pool.ref("host", "host3")


def test_the_restart_avoids_hosts_where_the_bot_runs_and_refuses_them(rig: Rig) -> None:
    """With another migration under way from host2, the notice offers host3; a restart
    of host2 would be refused while it runs."""
    vm = rig.pool.ref("VM", "dns02")
    rig.pool.sim.faults.stick_next_migration(vm)
    stuck = rig.approved("dns02 to host1")
    assert rig.run(stuck.id).state == State.SUCCEEDED
    running = rig.approved("vm02 to host1")
    rig.store.transition(running.id, State.RUNNING, actor="bot", action="started")
    rig.pool.clock.advance(GRACE)
    rig.engine.check_stuck(stuck.id)
    (notice,) = rig.of(ev.Stuck, stuck.id)
    assert notice.host_name == "host3"
    plan = rig.store.get(stuck.id).plan
    host2 = rig.pool.x.host.get_uuid(rig.pool.ref("host", "host2"))
    rig.store.update(stuck.id, plan={**plan, "stuck_host": host2, "stuck_host_name": "host2"})
    with pytest.raises(UserError, match="is running on host2"):
        rig.engine.restart_toolstack(stuck.id, "ULEAD")


def test_toolstack_restart_refused_with_ha(rig: Rig) -> None:
    """With HA on, the bot refuses to restart the toolstack (the host would be fenced)."""
    rig.pool.sim.faults.stick_next_migration(rig.pool.ref("VM", "vm02"))
    req = rig.approved("vm02 to host3")
    rig.run(req.id)
    rig.pool.clock.advance(GRACE)
    rig.engine.check_stuck(req.id)
    rig.pool.sim.db.update("pool", rig.pool.sim.pool_ref, ha_enabled=True)
    with pytest.raises(UserError, match="HA is enabled"):
        rig.engine.restart_toolstack(req.id, "ULEAD")


def test_a_task_record_the_bot_cannot_destroy_needs_the_masters_restart(rig: Rig) -> None:
    """The bot's role may not destroy tasks (RBAC): the finished task's record stays, so
    only the master's restart clears the leftover, and the notice says it is the master
    and that it cancels every task in the pool; its restart clears it."""
    vm = rig.pool.ref("VM", "vm02")
    rig.pool.sim.faults.stick_next_migration(vm)
    rig.pool.sim.faults.deny_task_destroy = True
    req = rig.approved("vm02 to host3")
    assert rig.run(req.id).state == State.SUCCEEDED  # the refused destroy fails nothing
    rig.pool.clock.advance(GRACE)
    assert rig.engine.check_stuck(req.id).state == State.STUCK
    (stuck,) = rig.of(ev.Stuck, req.id)
    assert stuck.host_name == "host1" and "cancels every task in the pool" in stuck.text
    master = agent_started(rig, "host1")
    assert "is clear" in restart(rig, req.id)
    assert agent_started(rig, "host1") > master
    assert rig.store.get(req.id).state == State.SUCCEEDED
