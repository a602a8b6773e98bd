"""Runs on a pool as hard as xapi: new VDIs after the copy, failures after the shutdown,
snapshots whose drives hold ISOs, the backup tag, a VM that changed since its approval."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.engine import events as ev
from bot.models import Fix
from bot.planning.planner import UserError
from bot.states import State
from bot.store.records import Request
from tests.support.engine_rig import Rig, build, rig_for
from tests.support.pool import Pool

TAG = "xo:no-bak=migrate-bot #1"


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(pool, tmp_path)


def on_step(rig: Rig, kind: type[ev.StepStarted | ev.StepDone], step: str, action: Any) -> None:
    """Call `action()` once, when `step` has just started (StepStarted) or ended (StepDone)."""
    fired: list[bool] = []

    def listener(event: ev.Event) -> None:
        if isinstance(event, kind) and event.step == step and not fired:
            fired.append(True)
            action()

    rig.engine.subscribe(listener)


@contextmanager
def restarted(
    pool: Pool, tmp_path: Path, command: str, kind: type[ev.StepStarted | ev.StepDone], step: str
) -> Iterator[tuple[Rig, Request]]:
    """A first bot runs `command` and stops when `step` starts or ends; a second bot on the
    same database and the request are yielded, to resume it."""
    first = build(pool, tmp_path / "bot.db")
    req = first.approved(command)
    on_step(first, kind, step, first.engine.stop)
    assert first.run(req.id).state == State.RUNNING
    first.close()
    second = build(pool, tmp_path / "bot.db")
    try:
        yield second, req
    finally:
        second.close()


def where(pool: Pool, name: str) -> tuple[str, str, set[str]]:
    """(power state, host name, SR names of its disks) as xapi says now."""
    vm = pool.ref("VM", name)
    host = pool.x.VM.get_resident_on(vm)
    host_name = pool.x.host.get_name_label(host) if host != "OpaqueRef:NULL" else ""
    srs = {pool.x.SR.get_name_label(pool.x.VDI.get_SR(d)) for d in pool.disks(vm)}
    return pool.x.VM.get_power_state(vm), host_name, srs


# 1. Disks are known by their place in the VM -------------------------------------------


def test_a_bot_restarted_after_the_move_starts_the_vm_on_the_destination(
    pool: Pool, tmp_path: Path
) -> None:
    """Offline vm01 to host3 on nfs1: the bot stops right after the copy (its disks are new
    VDIs now); the next bot finds them by their place in the VM and starts it there."""
    command = "vm01 to host3 sr=nfs1 mode=offline"
    with restarted(pool, tmp_path, command, ev.StepDone, "migrate") as (second, req):
        final = second.run(req.id)
        assert final.state == State.SUCCEEDED, final.outcome
        assert where(pool, "vm01") == ("Running", "host3", {"nfs1"})
        assert [s.name for s in second.store.steps(req.id)] == ["shutdown", "migrate", "start"]
        assert pool.sim.calls.counts["Async.VM.migrate_send"] == 1


def test_a_copy_whose_task_vanished_is_judged_by_where_the_disks_are(rig: Rig) -> None:
    """Someone destroys the copy's task while it runs (it vanishes when it ends): the bot
    judges the step from the VM's disks, which are new VDIs on nfs2, and succeeds."""
    on_step(rig, ev.StepStarted, "migrate", lambda: rig.pool.x.task.destroy(_running_task(rig)))
    req = rig.approved("vm01 to host2 sr=nfs2 mode=offline")
    final = rig.run(req.id)
    assert final.state == State.SUCCEEDED, final.outcome
    assert where(rig.pool, "vm01") == ("Running", "host2", {"nfs2"})


def _running_task(rig: Rig) -> str:
    tasks = rig.pool.x.task.get_all_records()
    (ref,) = [r for r, t in tasks.items() if t["status"] == "pending"]
    return ref


# 2. Offline recovery covers every failure after the shutdown ---------------------------


def test_a_start_that_fails_after_the_move_starts_it_where_its_disks_are(rig: Rig) -> None:
    """vm02 to host3's local LVM SR: the start fails once; host2 cannot reach host3-local,
    so the bot starts it on host3, where its disks are now, and says so."""
    rig.pool.sim.faults.fail_starts(rig.pool.ref("VM", "vm02"))
    req = rig.approved("vm02 to host3 sr=host3-local mode=offline")
    final = rig.run(req.id)
    assert final.state == State.FAILED
    assert where(rig.pool, "vm02") == ("Running", "host3", {"host3-local"})
    (failed,) = rig.of(ev.Failed, req.id)
    assert "vm02 was started again on host3, not where it ran: host2:" in failed.text
    assert "host3-local" in failed.text  # why host2 could not
    assert not failed.vm_down


def test_a_refused_migration_after_the_shutdown_restarts_the_vm(rig: Rig) -> None:
    """After the shutdown host3 is disabled, so xapi refuses the move: the VM is started
    again on host2 and the outcome says why the move stopped."""
    host3 = rig.pool.ref("host", "host3")
    on_step(rig, ev.StepDone, "shutdown", lambda: rig.pool.x.host.disable(host3))
    req = rig.approved("vm02 to host3 sr=nfs2 mode=offline")
    final = rig.run(req.id)
    assert final.state == State.FAILED
    assert where(rig.pool, "vm02") == ("Running", "host2", {"nfs1"})
    (failed,) = rig.of(ev.Failed, req.id)
    assert failed.code == "HOST_DISABLED"
    assert "vm02 was started again on host2, its original host" in failed.text


def test_a_master_lost_after_the_shutdown_is_waited_for_to_restart_the_vm(rig: Rig) -> None:
    """The master stops answering right after the shutdown, for longer than a run waits:
    the run fails (not a step of it: the bot could not even look), and once the master is
    back the VM is started again where it was."""
    faults = rig.pool.sim.faults

    def silence() -> None:
        faults.drop_mode, faults.drop_until = "reset", rig.pool.sim.now() + 700

    on_step(rig, ev.StepDone, "shutdown", silence)
    req = rig.approved("vm02 to host3 sr=nfs2 mode=offline")
    assert rig.run(req.id).state == State.FAILED
    assert where(rig.pool, "vm02") == ("Running", "host2", {"nfs1"})
    (failed,) = rig.of(ev.Failed, req.id)
    assert failed.code == "POOL_UNREACHABLE" and "started again on host2" in failed.text


def test_a_disabled_source_is_not_where_the_vm_is_started_again(rig: Rig) -> None:
    """The start on host3 fails once and host2 (the source) was disabled for maintenance
    meanwhile: the VM starts on host3 instead."""
    host2 = rig.pool.ref("host", "host2")
    rig.pool.sim.faults.fail_starts(rig.pool.ref("VM", "vm02"))
    on_step(rig, ev.StepDone, "shutdown", lambda: rig.pool.x.host.disable(host2))
    req = rig.approved("vm02 to host3 mode=offline")
    assert rig.run(req.id).state == State.FAILED
    assert where(rig.pool, "vm02")[:2] == ("Running", "host3")


def test_no_host_can_start_it_says_loudly_that_the_vm_is_down(rig: Rig) -> None:
    """Every start fails: the outcome says vm02 is DOWN, names why per host, and the Failed
    event asks for the approvers (vm_down)."""
    rig.pool.sim.faults.fail_starts(rig.pool.ref("VM", "vm02"), times=10)
    req = rig.approved("vm02 to host3 mode=offline")
    assert rig.run(req.id).state == State.FAILED
    assert rig.pool.x.VM.get_power_state(rig.pool.ref("VM", "vm02")) == "Halted"
    (failed,) = rig.of(ev.Failed, req.id)
    assert failed.vm_down and "vm02 is DOWN" in failed.text
    assert "host2:" in failed.text and "host3:" in failed.text


def test_a_bot_killed_while_recovering_resumes_the_recovery_not_the_move(
    pool: Pool, tmp_path: Path
) -> None:
    """The copy fails; the bot stops while starting the VM again; the next bot finishes the
    restart (no second copy) and ends the request failed, the VM running where it was."""
    pool.sim.faults.fail_next_migration(at=0.3, error=["VDI_IO_ERROR", "disk gone"])
    command = "vm02 to host3 sr=nfs2 mode=offline"
    with restarted(pool, tmp_path, command, ev.StepStarted, "restart") as (second, req):
        assert second.run(req.id).state == State.FAILED
        assert pool.sim.calls.counts["Async.VM.migrate_send"] == 1
        assert where(pool, "vm02")[:2] == ("Running", "host2")
        (failed,) = second.of(ev.Failed, req.id)
        assert failed.code == "VDI_IO_ERROR" and "started again on host2" in failed.text


# 3. Delete N snapshots never destroys an ISO --------------------------------------------


def test_deleting_snapshots_keeps_the_iso_their_drives_point_at(rig: Rig) -> None:
    """archive01 is halted, its drive empty, its snapshot's drive on virtio-win.iso: xapi
    would delete that ISO if asked; the bot deletes the snapshot and its disks only."""
    x = rig.pool.x
    vm = rig.pool.ref("VM", "archive01")
    (snapshot,) = x.VM.get_snapshots(vm)
    snap_disks = rig.pool.disks(snapshot)
    req = rig.request("archive01 to host2 sr=nfs1")
    rig.engine.revise(req.id, req.revision, Fix.DELETE_SNAPSHOTS, "ULEAD")
    assert x.VM.get_snapshots(vm) == []
    for disk in snap_disks:
        assert disk not in x.VDI.get_all()
    assert len(x.VDI.get_by_name_label("virtio-win.iso")) == 1
    assert len(x.VDI.get_by_name_label("debian-12.iso")) == 1


def test_a_snapshot_taken_after_the_message_makes_the_press_out_of_date(rig: Rig) -> None:
    """The message named vm01's one snapshot; another is taken before the press: nothing is
    deleted and the request is redrawn with both."""
    req = rig.request("vm01 to host3 sr=nfs1")
    vm = rig.pool.ref("VM", "vm01")
    rig.pool.x.VM.snapshot(vm, "after-the-message")
    with pytest.raises(UserError, match="out of date"):
        rig.engine.revise(req.id, req.revision, Fix.DELETE_SNAPSHOTS, "ULEAD")
    assert len(rig.pool.x.VM.get_snapshots(vm)) == 2
    assert rig.store.get(req.id).plan["summary"]["snapshots"] == 2


def test_a_deletion_that_fails_half_way_says_what_was_deleted(rig: Rig) -> None:
    """Two snapshots, the second busy: the first is deleted, the thread says the second is
    not, and why."""
    x = rig.pool.x
    vm = rig.pool.ref("VM", "vm02")
    first = x.VM.snapshot(vm, "one")
    second = x.VM.snapshot(vm, "two")
    rig.pool.sim.db.update("VM", second, current_operations={"OpaqueRef:other": "export"})
    req = rig.request("vm02 to host3")
    new = rig.engine.revise(req.id, req.revision, Fix.DELETE_SNAPSHOTS, "ULEAD")
    assert x.VM.get_snapshots(vm) == [second] and first not in x.VM.get_all()
    (revised,) = [e for e in rig.of(ev.Revised, req.id) if "deleted" in e.text]
    assert "deleted one; stopped at two:" in revised.text
    assert new.plan["summary"]["snapshots"] == 1


# 4. The backup-exclusion tag is the bot's to clean up ------------------------------------


@pytest.mark.parametrize("end", ["reject", "cancel", "expire"])
def test_the_tag_goes_when_the_request_ends_without_a_move(rig: Rig, end: str) -> None:
    """Exclude from backup, then the request is rejected, cancelled or expires: the VM is
    back in its backups."""
    req = rig.request("vm01 to host3 sr=nfs1")
    rig.engine.revise(req.id, req.revision, Fix.EXCLUDE_FROM_BACKUP, "U1")
    vm = rig.pool.ref("VM", "vm01")
    assert TAG in rig.pool.x.VM.get_tags(vm)
    if end == "reject":
        rig.engine.reject(req.id, "ULEAD")
    elif end == "cancel":
        rig.engine.cancel(req.id, "U1")
    else:
        rig.pool.clock.advance(3600)
        rig.engine.expire(req.id)
    assert TAG not in rig.pool.x.VM.get_tags(vm)
    assert "untagged" in [e.action for e in rig.store.audit_events(request_id=req.id)]


def test_retry_offline_inherits_the_tag_and_its_success_removes_it(rig: Rig) -> None:
    """build01 (loaded) fails live: the failure gives the VM back to its backups; Retry
    offline puts the tag back, and its success removes it for good."""
    x, vm = rig.pool.x, rig.pool.ref("VM", "build01")
    req = rig.request("build01 to host3")
    rig.engine.revise(req.id, req.revision, Fix.EXCLUDE_FROM_BACKUP, "U1")
    tag = next(t for t in x.VM.get_tags(vm) if "migrate-bot" in t)
    rig.engine.approve(req.id, "ULEAD")
    assert rig.run(req.id).state == State.FAILED
    assert tag not in x.VM.get_tags(vm)
    retry = rig.engine.retry_offline(req.id, "U1")
    assert retry.tags_added == (tag,) and tag in x.VM.get_tags(vm)
    rig.engine.approve(retry.id, "ULEAD")
    assert rig.run(retry.id).state == State.SUCCEEDED
    assert tag not in x.VM.get_tags(vm)


def test_a_tag_that_cannot_be_removed_is_a_warning_not_a_failure(rig: Rig) -> None:
    """The master is silent when the request is rejected: the rejection stands and the
    thread gets a note to remove the tag by hand."""
    req = rig.request("vm01 to host3 sr=nfs1")
    rig.engine.revise(req.id, req.revision, Fix.EXCLUDE_FROM_BACKUP, "U1")
    faults = rig.pool.sim.faults
    faults.drop_mode, faults.drop_until = "reset", rig.pool.sim.now() + 3600
    assert rig.engine.reject(req.id, "ULEAD").state == State.REJECTED
    (note,) = rig.of(ev.Note, req.id)
    assert TAG in note.text and "by hand" in note.text


# 5. The plan is re-read at the run -------------------------------------------------------


def test_a_halted_vm_started_before_its_window_is_not_moved_as_if_halted(rig: Rig) -> None:
    """archive01 was halted when approved; it is started before the run: the run refuses
    (PLAN_CHANGED), nothing moves, and Re-check files a live move for a new approval."""
    x, vm = rig.pool.x, rig.pool.ref("VM", "archive01")
    req = rig.approved("archive01 to host2")
    rig.pool.run(x.Async.VM.start_on(vm, rig.pool.ref("host", "host1"), False, False))
    final = rig.run(req.id)
    assert final.state == State.FAILED and final.error["code"] == "PLAN_CHANGED"
    assert "archive01 was halted when approved and is running now" in final.outcome
    assert x.VM.get_resident_on(vm) == rig.pool.ref("host", "host1")
    assert rig.store.steps(req.id) == []
    again = rig.engine.refile(req.id, "U1")
    assert again.state == State.PENDING and again.mode == "live" and again.parent_id == req.id


def test_a_vm_moved_by_hand_since_its_approval_is_not_moved_again(rig: Rig) -> None:
    """vm02 is live-migrated to host1 by someone else after approval: refused, not re-run."""
    x, vm = rig.pool.x, rig.pool.ref("VM", "vm02")
    req = rig.approved("vm02 to host3")
    rig.pool.run(x.Async.VM.pool_migrate(vm, rig.pool.ref("host", "host1"), {}))
    final = rig.run(req.id)
    assert final.error["code"] == "PLAN_CHANGED" and "runs on host1 now" in final.outcome
    assert x.VM.get_resident_on(vm) == rig.pool.ref("host", "host1")


# 7. SRs that cannot hold disks; thick SRs -------------------------------------------------


@pytest.mark.parametrize("sr", ["iso-library", '"Removable storage"'])
def test_an_sr_that_takes_no_disks_is_refused(rig: Rig, sr: str) -> None:
    """sr= naming an ISO library or removable media is refused before anything is filed."""
    with pytest.raises(UserError, match="cannot hold VM disks"):
        rig.request(f"vm02 to host3 sr={sr}")
    assert rig.store.open_requests() == []


def test_a_thick_sr_without_the_full_size_is_a_blocker(rig: Rig) -> None:
    """mail01's 80 GiB disk uses 40 GiB; host3's LVM SR has 50 GiB free: on a thick SR the
    disk takes all 80, so it is a blocker (on a thin SR it would only be a warning)."""
    preview = rig.engine.preview(rig.command("mail01 to host3 sr=host3-local"))
    (space,) = [c for c in preview.checks if c.key == "space"]
    assert space.severity == "blocker" and "thick" in space.reason


def test_a_bot_killed_before_its_call_never_adopts_another_tools_task(rig: Rig) -> None:
    """The store says the migrate step was being issued when the bot died (no task yet),
    and vm02 is busy with another tool's export: that task is not taken for the bot's; the
    bot waits for the VM to be free and issues its migration once."""
    vm = rig.pool.ref("VM", "vm02")
    req = rig.approved("vm02 to host3")
    rig.store.transition(req.id, State.RUNNING, actor="bot", action="started")
    rig.store.begin_step(req.id, "migrate")  # the bot died right after this
    rig.pool.sim.db.update("VM", vm, current_operations={"OpaqueRef:export": "export"})
    done = threading.Timer(1.0, lambda: rig.pool.sim.db.update("VM", vm, current_operations={}))
    done.start()
    try:
        assert rig.run(req.id).state == State.SUCCEEDED
    finally:
        done.cancel()
    steps = [(s.name, s.state, s.task_ref) for s in rig.store.steps(req.id)]
    assert steps[0] == ("migrate", "failed", None) and steps[1][:2] == ("migrate", "done")
    assert rig.pool.sim.calls.counts["Async.VM.pool_migrate"] == 1
    assert "vm_busy" in [e.action for e in rig.store.audit_events(request_id=req.id)]
