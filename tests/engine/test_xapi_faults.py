"""XAPI misbehaving mid-run: every run still ends in the right state, in plain words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.engine import events as ev
from bot.planning.explain import explain
from bot.simulator.services import move_master
from bot.states import State
from tests.support.engine_rig import Rig, rig_for
from tests.support.pool import Pool


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_for(pool, tmp_path)


def when_copying(rig: Rig, fault: Callable[[], None]) -> None:
    """Provoke `fault` once, as soon as the migration reports progress."""
    fired: list[bool] = []

    def listener(event: ev.Event) -> None:
        if isinstance(event, ev.StepProgress) and event.fraction > 0.05 and not fired:
            fired.append(True)
            fault()

    rig.engine.subscribe(listener)


CODES = [
    ["MIRROR_FAILED", "OpaqueRef:NULL"],
    ["VM_MIGRATE_FAILED", "OpaqueRef:NULL", "host1", "host3", "xenopsd error"],
    ["VDI_IO_ERROR", "Device I/O errors"],
    ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""],
    ["HOST_NOT_ENOUGH_FREE_MEMORY", "8700000000", "1000"],
    ["INTERNAL_ERROR", "Storage_error ([S(Does_not_exist)])"],
    ["VM_LACKS_FEATURE", "OpaqueRef:NULL"],
]


@pytest.mark.parametrize("error", CODES, ids=[c[0] for c in CODES])
def test_each_migration_error_fails_in_plain_words(rig: Rig, error: list[str]) -> None:
    """A task failing with xapi's error ends FAILED with its explanation; the VM stays put."""
    vm = rig.pool.ref("VM", "vm02")
    rig.pool.sim.faults.fail_next_migration(0.3, error, vm)
    req = rig.approved("vm02 to host3")
    assert rig.run(req.id).state == State.FAILED
    (failed,) = rig.of(ev.Failed, req.id)
    assert failed.text.startswith(explain(error, live=True).sentence[:40])
    assert failed.next_step
    assert rig.pool.x.VM.get_resident_on(vm) == rig.pool.ref("host", "host2")


def test_sessions_expiring_mid_run_change_nothing(rig: Rig) -> None:
    """Every session expires during the copy: the client logs in again and the run succeeds."""
    when_copying(rig, rig.pool.sim.expire_sessions)
    req = rig.approved("vm01 to host2 sr=nfs2 mode=offline")
    assert rig.run(req.id).state == State.SUCCEEDED


def silence(rig: Rig, mode: str, seconds: float) -> Callable[[], None]:
    """The master resets every connection ("reset") or never answers ("hang") for a while."""

    def fault() -> None:
        faults = rig.pool.sim.faults
        faults.drop_mode, faults.drop_until = mode, rig.pool.sim.now() + seconds

    return fault


@pytest.mark.parametrize(
    ("mode", "seconds", "command", "call"),
    [
        ("reset", 30, "vm01 to host2 sr=nfs2 mode=offline", "Async.VM.migrate_send"),
        ("hang", 20, "vm02 to host3", "Async.VM.pool_migrate"),
    ],
)
def test_a_silent_master_mid_run_is_waited_out(
    rig: Rig, mode: str, seconds: float, command: str, call: str
) -> None:
    """Resets (calls and event.from) or hangs (timeouts) mid-run: it carries on, once."""
    when_copying(rig, silence(rig, mode, seconds))
    req = rig.approved(command)
    assert rig.run(req.id).state == State.SUCCEEDED
    assert rig.pool.sim.calls.counts[call] == 1


def test_a_toolstack_restart_mid_run_is_judged_from_the_vm(rig: Rig) -> None:
    """The master's agent restarts during the copy (tasks lost): FAILED, said in plain words."""
    master = rig.pool.ref("host", "host1")
    when_copying(rig, lambda: rig.pool.x.host.restart_agent(master))
    req = rig.approved("vm02 to host3")
    final = rig.run(req.id)
    assert final.state == State.FAILED
    (failed,) = rig.of(ev.Failed, req.id)
    assert "task disappeared" in failed.text


def test_the_master_moving_mid_run_is_followed(rig: Rig) -> None:
    """host2 becomes master during the copy: the bot follows HOST_IS_SLAVE and finishes."""
    when_copying(rig, lambda: move_master(rig.pool.sim, rig.pool.ref("host", "host2")))
    req = rig.approved("vm01 to host3 sr=nfs2 mode=offline")
    assert rig.run(req.id).state == State.SUCCEEDED
    assert rig.xapi.url.startswith("http://127.0.0.2:")
    assert rig.pool.sim.calls.counts["Async.VM.migrate_send"] == 1


def test_a_silent_master_when_the_run_starts_is_waited_for(rig: Rig) -> None:
    """The master resets every connection as the run begins: it waits, then runs once."""
    req = rig.approved("vm02 to host3")
    silence(rig, "reset", 40)()
    assert rig.run(req.id).state == State.SUCCEEDED
    assert rig.pool.sim.calls.counts["Async.VM.pool_migrate"] == 1
    actions = [e.action for e in rig.store.audit_events(request_id=req.id)]
    assert "pool_unreachable" in actions


def test_a_run_resumed_after_a_silence_reports_its_whole_time(rig: Rig) -> None:
    """The master goes silent between the shutdown and the move: the run resumes, and its
    outcome counts the run and the downtime from their real starts."""

    def after_shutdown(event: ev.Event) -> None:
        if isinstance(event, ev.StepDone) and event.step == "shutdown":
            silence(rig, "reset", 40)()

    rig.engine.subscribe(after_shutdown)
    req = rig.approved("vm01 to host2 sr=nfs2 mode=offline")
    final = rig.run(req.id)
    assert final.state == State.SUCCEEDED
    actions = [e.action for e in rig.store.audit_events(request_id=req.id)]
    assert "pool_unreachable" in actions and actions.count("throughput") == 1
    (done,) = rig.of(ev.Succeeded, req.id)
    assert final.started_at is not None and final.finished_at is not None
    assert done.seconds == pytest.approx(final.finished_at - final.started_at)
    shutdown = next(s for s in rig.store.steps(req.id) if s.name == "shutdown")
    assert done.downtime_seconds == pytest.approx(final.finished_at - shutdown.started_at)
