"""The engine against the simulator: live, offline, failures, cancel, stuck, restart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.engine import events as ev
from bot.engine.runner import UNREACHABLE_SECONDS, _Silence
from bot.planning.planner import UserError
from bot.states import State
from tests.support.engine_rig import Rig, build, rig_for
from tests.support.pool import Pool, Ticker


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(pool, tmp_path)


def test_live_migration_without_storage(rig: Rig) -> None:
    """vm02 to host3: one pool_migrate task, progress events, success verified."""
    rig.pool.sim.timing.memory_bytes_per_s = 2e8  # about 20 s, so progress is seen
    req = rig.approved("vm02 to host3")
    assert rig.dispatched == [req.id]
    final = rig.run(req.id)
    assert final.state == State.SUCCEEDED, final.outcome
    x = rig.pool.x
    assert x.VM.get_resident_on(rig.pool.ref("VM", "vm02")) == rig.pool.ref("host", "host3")
    assert rig.pool.sim.calls.counts["Async.VM.pool_migrate"] == 1
    assert [s.name for s in rig.store.steps(req.id)] == ["migrate"]
    assert rig.of(ev.StepProgress, req.id)
    (done,) = rig.of(ev.Succeeded, req.id)
    assert done.text.startswith("vm02 is running on host3, disks on nfs1")
    assert [a.action for a in rig.store.audit_events(request_id=req.id)][:4] == [
        "created",
        "approved",
        "queued",
        "started",
    ]


def test_live_storage_migration(rig: Rig) -> None:
    """vm01 to host3 sr=nfs1: migrate_send moves both disks and the VM."""
    req = rig.approved("vm01 to host3 sr=nfs1")
    assert rig.run(req.id).state == State.SUCCEEDED
    vm = rig.pool.ref("VM", "vm01")
    assert rig.pool.x.VM.get_resident_on(vm) == rig.pool.ref("host", "host3")
    srs = {rig.pool.x.VDI.get_SR(d) for d in rig.pool.disks(vm)}
    assert srs == {rig.pool.ref("SR", "nfs1")}


def test_offline_migration_steps_and_downtime(rig: Rig) -> None:
    """Offline: shutdown, migrate, start on the destination; downtime is reported."""
    req = rig.approved("vm01 to host2 sr=nfs2 mode=offline")
    final = rig.run(req.id)
    assert final.state == State.SUCCEEDED, final.outcome
    assert [s.name for s in rig.store.steps(req.id)] == ["shutdown", "migrate", "start"]
    vm = rig.pool.ref("VM", "vm01")
    assert rig.pool.x.VM.get_power_state(vm) == "Running"
    assert rig.pool.x.VM.get_resident_on(vm) == rig.pool.ref("host", "host2")
    (done,) = rig.of(ev.Succeeded, req.id)
    assert done.downtime_seconds > 0 and "downtime" in done.text


def test_offline_without_moving_storage(rig: Rig) -> None:
    """vm02 (shared SR) offline to host3: shutdown and start, no migrate step."""
    req = rig.approved("vm02 to host3 mode=offline")
    assert rig.run(req.id).state == State.SUCCEEDED
    assert [s.name for s in rig.store.steps(req.id)] == ["shutdown", "start"]
    assert "Async.VM.migrate_send" not in rig.pool.sim.calls.counts


def test_halted_vm_gets_affinity_and_stays_halted(rig: Rig) -> None:
    """archive01 (halted, shared SR) to host2: affinity set, still halted, said so."""
    req = rig.approved("archive01 to host2")
    assert rig.run(req.id).state == State.SUCCEEDED
    vm = rig.pool.ref("VM", "archive01")
    assert rig.pool.x.VM.get_affinity(vm) == rig.pool.ref("host", "host2")
    assert rig.pool.x.VM.get_power_state(vm) == "Halted"
    (done,) = rig.of(ev.Succeeded, req.id)
    assert "stays halted" in done.text


def test_failed_live_migration_suggests_offline(rig: Rig) -> None:
    """A heavily loaded VM's live failure ends FAILED with 'retry offline' advice."""
    req = rig.approved("build01 to host3")
    final = rig.run(req.id)
    assert final.state == State.FAILED
    (failed,) = rig.of(ev.Failed, req.id)
    assert failed.retry_offline and failed.code == "INTERNAL_ERROR"
    assert rig.pool.x.VM.get_resident_on(rig.pool.ref("VM", "build01")) == rig.pool.ref(
        "host", "host2"
    )


def test_offline_failure_restarts_the_vm_where_it_was(rig: Rig) -> None:
    """A failed copy after the shutdown starts the VM again on its source host."""
    rig.pool.sim.faults.fail_next_migration(at=0.3, error=["VDI_IO_ERROR", "disk gone"])
    req = rig.approved("vm01 to host2 sr=nfs2 mode=offline")
    assert rig.run(req.id).state == State.FAILED
    vm = rig.pool.ref("VM", "vm01")
    assert rig.pool.x.VM.get_power_state(vm) == "Running"
    assert rig.pool.x.VM.get_resident_on(vm) == rig.pool.ref("host", "host1")
    assert [s.name for s in rig.store.steps(req.id)] == ["shutdown", "migrate", "restart"]
    (failed,) = rig.of(ev.Failed, req.id)
    assert not failed.vm_down


def test_blocker_at_run_time_issues_nothing(rig: Rig) -> None:
    """If a blocker appears between approval and run, the run fails without XAPI calls."""
    req = rig.approved("vm02 to host3")
    rig.pool.sim.db.update("host", rig.pool.ref("host", "host3"), enabled=False)
    final = rig.run(req.id)
    assert final.state == State.FAILED and "blocker" in final.outcome
    assert "Async.VM.pool_migrate" not in rig.pool.sim.calls.counts


def test_approval_refused_when_a_blocker_appears(rig: Rig) -> None:
    """Approve re-runs the checks: a new blocker refuses it and the request stays pending."""
    req = rig.request("vm02 to host3")
    rig.pool.sim.db.update("host", rig.pool.ref("host", "host3"), enabled=False)
    with pytest.raises(UserError, match="blocker"):
        rig.engine.approve(req.id, "ULEAD")
    assert rig.store.get(req.id).state == State.PENDING
    assert rig.dispatched == []


def test_concurrent_approvals_start_one_run(rig: Rig) -> None:
    """Ten simultaneous approvals: exactly one succeeds and one run is dispatched."""
    req = rig.request("vm02 to host3")
    results: list[str] = []
    barrier = threading.Barrier(10)

    def press() -> None:
        barrier.wait()
        try:
            rig.engine.approve(req.id, "ULEAD")
            results.append("ok")
        except UserError:
            results.append("refused")

    threads = [threading.Thread(target=press) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 1 and rig.dispatched == [req.id]


def test_cancel_before_and_during_the_run(rig: Rig) -> None:
    """Cancel ends a pending request; during a copy it cancels the task (VM unchanged)."""
    pending = rig.request("vm02 to host3")
    assert "cancelled" in rig.engine.cancel(pending.id, "U1")
    assert rig.store.get(pending.id).state == State.CANCELLED

    req = rig.approved("vm02 to host3 sr=nfs2")
    answers: list[str] = []

    def cancel_when_running(event: ev.Event) -> None:
        if isinstance(event, ev.StepProgress) and not answers:
            answers.append("asked")
            threading.Thread(target=lambda: answers.append(rig.engine.cancel(req.id, "U1"))).start()

    rig.engine.subscribe(cancel_when_running)
    final = rig.run(req.id)
    assert final.state == State.CANCELLED, final.outcome
    assert rig.pool.x.VM.get_resident_on(rig.pool.ref("VM", "vm02")) == rig.pool.ref(
        "host", "host2"
    )


def test_too_many_storage_migrations_waits_and_retries(rig: Rig) -> None:
    """TOO_MANY_STORAGE_MIGRATES is retried later, never a failed request."""
    rig.pool.sim.timing.max_storage_migrations = 0
    req = rig.approved("vm02 to host3 sr=nfs2")
    thread = threading.Thread(target=rig.run, args=(req.id,))
    thread.start()
    with Ticker(rig.pool.clock, step=0.5):
        while not [
            a for a in rig.store.audit_events(request_id=req.id) if a.action == "retry_later"
        ]:
            threading.Event().wait(0.02)
        rig.pool.sim.timing.max_storage_migrations = 3
        thread.join()
    assert rig.store.get(req.id).state == State.SUCCEEDED
    assert [s.attempt for s in rig.store.steps(req.id)] == [1, 2]


def test_bot_restart_mid_offline_migration(pool: Pool, tmp_path: Path) -> None:
    """A new process on the same database re-attaches to the running copy: no step twice."""
    first = build(pool, tmp_path / "bot.db")
    req = first.approved("vm01 to host2 sr=nfs2 mode=offline")
    stopped = threading.Event()

    def stop_during_copy(event: ev.Event) -> None:
        if isinstance(event, ev.StepProgress) and event.step == "migrate" and not stopped.is_set():
            stopped.set()
            first.engine.stop()

    first.engine.subscribe(stop_during_copy)
    assert first.run(req.id).state == State.RUNNING
    first.close()

    second = build(pool, tmp_path / "bot.db")
    try:
        assert [r.id for r in second.engine.recoverable()] == [req.id]
        final = second.run(req.id)
        assert final.state == State.SUCCEEDED, final.outcome
        counts = pool.sim.calls.counts
        assert counts["Async.VM.clean_shutdown"] == 1
        assert counts["Async.VM.migrate_send"] == 1
        assert counts["Async.VM.start_on"] == 1
        vm = pool.ref("VM", "vm01")
        assert pool.x.VM.get_resident_on(vm) == pool.ref("host", "host2")
    finally:
        second.close()


def test_bot_restart_after_task_vanished_judges_placement(pool: Pool, tmp_path: Path) -> None:
    """If the task is gone when the bot comes back, the VM's placement decides the step."""
    pool.sim.timing.memory_bytes_per_s = 1e7  # the move outlasts the stop: the task is ours
    first = build(pool, tmp_path / "bot.db")
    req = first.approved("vm02 to host3")
    finished = threading.Event()

    def stop_at_progress(event: ev.Event) -> None:
        if isinstance(event, ev.StepProgress) and not finished.is_set():
            finished.set()
            first.engine.stop()

    first.engine.subscribe(stop_at_progress)
    first.run(req.id)
    first.close()
    pool.run(first.store.steps(req.id)[0].task_ref, step=30)  # it ends while the bot is down
    pool.x.task.destroy(first.store.steps(req.id)[0].task_ref)
    second = build(pool, tmp_path / "bot.db")
    try:
        assert second.run(req.id).state == State.SUCCEEDED
        assert pool.sim.calls.counts["Async.VM.pool_migrate"] == 1
    finally:
        second.close()


def test_estimates_learn_the_measured_copy_rate(rig: Rig) -> None:
    """After a storage migration the next estimate uses the rate that copy achieved."""
    rig.pool.sim.timing.storage_bytes_per_s = 50e6  # slower than the 200 MB/s assumed
    before = rig.engine.preview(rig.command("mail01 to host1 sr=nfs2 mode=offline")).plan
    req = rig.approved("dns01 to host1 sr=nfs2 mode=offline")
    assert rig.run(req.id).state == State.SUCCEEDED
    rate = rig.store.measured_throughput()
    assert rate is not None and 40 < rate < 60, rate
    after = rig.engine.preview(rig.command("mail01 to host1 sr=nfs2 mode=offline")).plan
    assert after.throughput_mbps == rate
    assert after.estimate_seconds > 3 * before.estimate_seconds


def test_restart_between_the_call_and_its_task_adopts_the_running_task(rig: Rig) -> None:
    """A bot killed after its XAPI call but before storing the task re-attaches, never re-issues."""
    req = rig.approved("vm02 to host3")
    rig.store.begin_step(req.id, "migrate")  # written before the call, as the engine does
    vm, host = rig.pool.ref("VM", "vm02"), rig.pool.ref("host", "host3")
    rig.pool.x.Async.VM.pool_migrate(vm, host, {})  # the call went out; then the crash
    assert rig.run(req.id).state == State.SUCCEEDED
    assert rig.pool.sim.calls.counts["Async.VM.pool_migrate"] == 1
    (step,) = rig.store.steps(req.id)
    assert step.state == "done" and step.task_ref


def test_the_wait_for_a_silent_master_counts_from_its_silence() -> None:
    """Ten minutes of silence end the wait, counted from the first unanswered call (a long
    step before it costs nothing), and any answer in between starts the count again."""
    clock, answered = ManualClock(), [0]
    silence = _Silence(clock, lambda: answered[0])
    clock.advance(3600)  # an hour of copying, answered all along
    answered[0] = 500
    assert not silence.outlasted()  # the first unanswered call: the count starts here
    clock.advance(UNREACHABLE_SECONDS - 1)
    assert not silence.outlasted()
    answered[0] += 1  # the master answered something meanwhile: a new silence
    clock.advance(2)
    assert not silence.outlasted()
    clock.advance(UNREACHABLE_SECONDS)
    assert silence.outlasted()


def test_a_second_decision_hears_who_made_the_first(rig: Rig) -> None:
    """Approve or reject after someone approved: 'Already approved by …', nothing changes."""
    req = rig.approved("vm02 to host3")
    for decide in (rig.engine.approve, rig.engine.reject):
        with pytest.raises(UserError, match=r"^Already approved by ULEAD\.$"):
            decide(req.id, "ULEAD2")
    assert rig.dispatched == [req.id]
