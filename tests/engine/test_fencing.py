"""Fencing: a replica that no longer holds the pool's lock issues no further XAPI step;
the request stays as it was (running, its step stored), and the next holder re-attaches
and ends it, each operation issued once."""

from __future__ import annotations

from pathlib import Path

from bot.engine import events as ev
from bot.states import State
from tests.support.engine_rig import build
from tests.support.pool import Pool


def test_a_replica_that_lost_the_lock_stops_before_its_next_step(
    pool: Pool, tmp_path: Path
) -> None:
    holds = [True]
    first = build(pool, tmp_path / "bot.db", fence=lambda: holds[0])
    req = first.approved("vm01 to host2 sr=nfs2 mode=offline")

    def lose_the_lock_after_the_shutdown(event: ev.Event) -> None:
        if isinstance(event, ev.StepDone) and event.step == "shutdown":
            holds[0] = False  # its session to the database is gone

    first.engine.subscribe(lose_the_lock_after_the_shutdown)
    assert first.run(req.id).state == State.RUNNING  # left for the next holder
    counts = pool.sim.calls.counts
    assert counts["Async.VM.clean_shutdown"] == 1
    assert "Async.VM.migrate_send" not in counts and "Async.VM.start_on" not in counts
    assert [s.name for s in first.store.steps(req.id)] == ["shutdown"]
    first.close()

    second = build(pool, tmp_path / "bot.db")  # the new holder
    try:
        final = second.run(req.id)
        assert final.state == State.SUCCEEDED, final.outcome
        assert counts["Async.VM.clean_shutdown"] == 1
        assert counts["Async.VM.migrate_send"] == 1 and counts["Async.VM.start_on"] == 1
        assert pool.x.VM.get_resident_on(pool.ref("VM", "vm01")) == pool.ref("host", "host2")
    finally:
        second.close()
