"""Batches through the engine on the demo pool: one approval creates a held child per VM,
the batch's run disables an evacuated host and queues the children, each child runs as a
single request, and the batch ends with one outcome once none waits or runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine import events as ev
from bot.engine.batches import KEEP_DISABLED_SECONDS
from bot.errors import UserError
from bot.planning.command import BatchCommand, parse
from bot.states import State
from bot.store.records import Request, VMBusy
from tests.support.engine_rig import Rig, rig_for
from tests.support.pool import Pool


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(pool, tmp_path)


def file_batch(rig: Rig, text: str) -> Request:
    command = parse(text)
    assert isinstance(command, BatchCommand), command
    return rig.engine.submit_batch(command, rig.engine.preview_batch(command), "U1", "C1")


def without_ci_runner(pool: Pool) -> None:
    """host2 keeps ci-runner-1's disk on its local SR: take it away, so host2 can be emptied."""
    vm = pool.ref("VM", "ci-runner-1")
    pool.run(pool.x.Async.VM.hard_shutdown(vm))
    pool.x.VM.destroy(vm)


def run_batch(rig: Rig, batch_id: int) -> Request:
    """The batch's run, then each child in turn, as the scheduler would."""
    rig.engine.run(batch_id)
    for child in rig.store.children(batch_id):
        rig.run(child.id)
    found = rig.store.get(batch_id)
    assert found is not None
    return found


def test_one_approval_moves_every_vm_of_a_list(rig: Rig) -> None:
    batch = file_batch(rig, "vm02,dns01,mail01 to host1")
    assert batch.is_batch and batch.state == State.PENDING
    assert rig.store.children(batch.id) == []  # nothing is held before the approval
    approved = rig.engine.approve(batch.id, "ULEAD")
    assert approved.state == State.QUEUED and rig.dispatched == [batch.id]
    children = rig.store.children(batch.id)
    assert [(c.vm_name, c.state, c.approved_by) for c in children] == [
        ("mail01", State.APPROVED, "ULEAD"),
        ("vm02", State.APPROVED, "ULEAD"),
        ("dns01", State.APPROVED, "ULEAD"),
    ]
    assert rig.engine.recoverable() == [rig.store.get(batch.id)]  # the held ones are its
    rig.engine.run(batch.id)
    assert rig.dispatched == [batch.id, *(c.id for c in children)]
    for child in children:
        assert rig.run(child.id).state == State.SUCCEEDED
    done = rig.store.get(batch.id)
    assert done is not None and done.state == State.SUCCEEDED
    assert done.outcome == "All 3 moved."
    x = rig.pool.x
    host1 = rig.pool.ref("host", "host1")
    assert {x.VM.get_resident_on(rig.pool.ref("VM", n)) for n in ("vm02", "dns01", "mail01")} == {
        host1
    }


def test_an_evacuation_disables_the_host_and_a_failed_move_does_not_stop_the_others(
    rig: Rig,
) -> None:
    """host2's build01 is too busy to move live: it fails, the others move, host2 stays
    disabled, and the outcome names the failure."""
    without_ci_runner(rig.pool)
    x, host2 = rig.pool.x, rig.pool.ref("host", "host2")
    batch = file_batch(rig, "evacuate host2")
    assert batch.vm_uuid == f"evacuate:{x.host.get_uuid(host2)}"
    rig.engine.approve(batch.id, "ULEAD")
    assert x.host.get_enabled(host2)  # not before the run
    done = run_batch(rig, batch.id)
    assert not x.host.get_enabled(host2)
    assert done.state == State.FAILED
    assert done.outcome is not None and done.outcome.startswith("3 of 4 moved; build01 failed: ")
    assert done.outcome.endswith("host2 stays disabled: Re-enable it when its maintenance is done.")
    failed = [e for e in rig.of(ev.Failed) if e.retry_offline]
    assert len(failed) == 1  # build01's Retry offline
    assert [v for v in x.host.get_resident_VMs(host2) if not x.VM.get_is_control_domain(v)] == [
        rig.pool.ref("VM", "build01")
    ]
    notes = [e.text for e in rig.of(ev.Note, batch.id)]
    assert "host2 is disabled: nothing new starts or lands on it until it is re-enabled" in notes
    # Retry offline is per VM: a new single request for build01, in the batch's thread.
    child = next(c for c in rig.store.children(batch.id) if c.state == State.FAILED)
    retry = rig.engine.retry_offline(child.id, "U1")
    assert retry.mode == "offline" and retry.parent_id == child.id
    with pytest.raises(UserError, match="is a batch"):
        rig.engine.retry_offline(batch.id, "U1")


def test_enable_is_refused_while_the_evacuation_runs_and_works_after(rig: Rig) -> None:
    without_ci_runner(rig.pool)
    x, host2 = rig.pool.x, rig.pool.ref("host", "host2")
    batch = file_batch(rig, "evacuate host2 mode=offline")
    rig.engine.approve(batch.id, "ULEAD")
    rig.engine.run(batch.id)
    with pytest.raises(UserError, match=f"#{batch.id} is still moving VMs off host2"):
        rig.engine.enable_host("host2", "ULEAD")
    for child in rig.store.children(batch.id):
        rig.run(child.id)
    assert rig.store.get(batch.id).state == State.SUCCEEDED  # type: ignore[union-attr]
    text = rig.engine.reenable_host(batch.id, "ULEAD")
    assert text == "host2 re-enabled by ULEAD: VMs may start and land on it again"
    assert x.host.get_enabled(host2)
    assert rig.engine.enable_host("host2", "ULEAD") == "host2 is enabled already."
    audit = [e.action for e in rig.store.audit_events(request_id=batch.id)]
    assert audit.count("host_disabled") == 1 and audit[-1] == "host_enabled"


def test_cancel_stops_what_has_not_started_and_lets_running_moves_finish(rig: Rig) -> None:
    batch = file_batch(rig, "vm02,dns01,mail01 to host1")
    rig.engine.approve(batch.id, "ULEAD")
    rig.engine.run(batch.id)
    first, *rest = rig.store.children(batch.id)
    rig.store.transition(first.id, State.RUNNING, actor="bot", action="started")
    text = rig.engine.cancel(batch.id, "U1")
    assert text == (
        f"#{batch.id}: 2 move(s) that had not started will not run; 1 running "
        f"(#{first.id}) will finish (Cancel again to cancel them too, or /migrate cancel #id "
        "for one)."
    )
    assert [rig.store.get(c.id).state for c in rest] == [State.CANCELLED] * 2  # type: ignore[union-attr]
    assert rig.store.get(batch.id).state == State.RUNNING  # type: ignore[union-attr]
    rig.run(first.id)
    done = rig.store.get(batch.id)
    assert done is not None and done.state == State.CANCELLED and done.ended_by == "U1"
    assert done.outcome == "1 of 3 moved; 2 did not run."


def test_a_pending_batch_ends_with_nothing_held_and_one_evacuation_per_host(rig: Rig) -> None:
    without_ci_runner(rig.pool)
    first = file_batch(rig, "evacuate host2")
    second = file_batch(rig, "evacuate host2 to host3")
    rig.engine.approve(first.id, "ULEAD")
    with pytest.raises(VMBusy, match=f"already has active request #{first.id}"):
        rig.engine.approve(second.id, "ULEAD")
    assert rig.store.children(second.id) == []
    assert rig.engine.cancel(first.id, "U1") == f"#{first.id} cancelled."
    assert {c.state for c in rig.store.children(first.id)} == {State.CANCELLED}
    rig.engine.approve(second.id, "ULEAD")  # the VMs are free again
    assert len(rig.store.children(second.id)) == 4


def test_an_approval_rechecks_and_a_new_blocker_refuses_it(rig: Rig) -> None:
    batch = file_batch(rig, "vm02,dns01 to host1")
    vm02 = rig.pool.ref("VM", "vm02")
    rig.pool.run(rig.pool.x.Async.VM.hard_shutdown(vm02))  # approved live, halted now
    with pytest.raises(UserError, match="cannot start: the checklist now has a blocker"):
        rig.engine.approve(batch.id, "ULEAD")
    assert rig.store.get(batch.id).state == State.PENDING  # type: ignore[union-attr]
    assert rig.store.children(batch.id) == []


def test_a_host_enabled_by_its_agent_restart_mid_evacuation_is_disabled_again(rig: Rig) -> None:
    """xapi forgets host.disable when that host's own agent restarts: the next move's end
    (at most every KEEP_DISABLED_SECONDS) sees the host enabled and disables it again, and
    the thread says so."""
    without_ci_runner(rig.pool)
    x, host2 = rig.pool.x, rig.pool.ref("host", "host2")
    batch = file_batch(rig, "evacuate host2 mode=offline")
    rig.engine.approve(batch.id, "ULEAD")
    rig.engine.run(batch.id)
    assert not x.host.get_enabled(host2)
    x.host.restart_agent(host2)
    rig.pool.clock.advance(max(rig.pool.sim.timing.agent_down_s + 1, KEEP_DISABLED_SECONDS))
    assert rig.pool.login().xenapi.host.get_enabled(host2)  # forgotten
    first, *rest = rig.store.children(batch.id)
    rig.run(first.id)
    assert not rig.pool.login().xenapi.host.get_enabled(host2)
    notes = [e.text for e in rig.of(ev.Note, batch.id)]
    assert any("again" in n and "host2" in n for n in notes), notes
    for child in rest:
        rig.run(child.id)
    assert rig.store.get(batch.id).state == State.SUCCEEDED  # type: ignore[union-attr]


def test_cancel_pressed_again_cancels_the_running_moves_too(rig: Rig) -> None:
    """The first Cancel drops the moves not started; the second asks xapi to cancel the
    running one, as Cancel of one request does: the VM stays where it was."""
    batch = file_batch(rig, "vm02,dns01 to host3 sr=nfs2")
    rig.engine.approve(batch.id, "ULEAD")
    rig.engine.run(batch.id)
    first, second = rig.store.children(batch.id)
    answers: list[str] = []

    def cancel_twice_when_running(event: ev.Event) -> None:
        if isinstance(event, ev.StepProgress) and event.request_id == first.id and not answers:
            answers.append("asked")

            def press_twice() -> None:
                answers.append(rig.engine.cancel(batch.id, "U1"))
                answers.append(rig.engine.cancel(batch.id, "U1"))

            threading.Thread(target=press_twice).start()

    rig.engine.subscribe(cancel_twice_when_running)
    assert rig.run(first.id).state == State.CANCELLED
    assert rig.store.get(second.id).state == State.CANCELLED  # type: ignore[union-attr]
    assert answers[2].endswith(
        f"Asked xapi to cancel #{first.id}'s current step; the thread will say if it did."
    ), answers
    vm = rig.pool.ref("VM", first.vm_name)
    assert rig.pool.x.VM.get_resident_on(vm) != rig.pool.ref("host", "host3")
    done = rig.store.get(batch.id)
    assert done is not None and done.state == State.CANCELLED
    assert done.outcome == f"0 of 2 moved; {first.vm_name} cancelled while moving; 1 did not run."


def test_an_empty_host_is_still_disabled_for_its_maintenance(rig: Rig) -> None:
    """Nothing runs on host2 any more: the evacuation has no move, and still disables it."""
    x, host2 = rig.pool.x, rig.pool.ref("host", "host2")
    for vm in x.host.get_resident_VMs(host2):
        if not x.VM.get_is_control_domain(vm):
            rig.pool.run(x.Async.VM.hard_shutdown(vm))
            x.VM.destroy(vm)
    batch = file_batch(rig, "evacuate host2")
    assert batch.plan["summary"]["moves"] == []
    rig.engine.approve(batch.id, "ULEAD")
    done = run_batch(rig, batch.id)
    assert done.state == State.SUCCEEDED and not x.host.get_enabled(host2)
    assert done.outcome == (
        "Nothing to move. host2 is empty and stays disabled: Re-enable it when its "
        "maintenance is done."
    )
