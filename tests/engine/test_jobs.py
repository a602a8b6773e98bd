"""The ticker keeps its time while more runs are approved than there are slots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.engine.jobs import Jobs
from bot.slackdouble.driver import until
from bot.states import State
from tests.support.engine_rig import Rig, build
from tests.support.pool import Pool, Ticker


@pytest.fixture
def rig(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    rig = build(
        pool,
        tmp_path / "bot.db",
        max_concurrent=1,
        stuck_grace_seconds=120,
        approval_ttl_seconds=600,
    )
    yield rig
    rig.close()


def test_waiting_runs_do_not_starve_expiry_or_stuck_checks(rig: Rig) -> None:
    """One slot, four approved storage moves (three wait for the slot), a stuck success and
    a request nobody approves: the next tick expires it and finds the stuck VM at once."""
    jobs = Jobs(rig.engine, workers=1)
    # Jobs subscribes to the engine: what is queued from now on runs on its pool
    x = rig.pool.x
    with Ticker(rig.pool.clock, step=0.5):
        rig.pool.sim.faults.stick_next_migration(rig.pool.ref("VM", "vm02"))
        stuck = rig.approved("vm02 to host3")
        assert rig.engine.run(stuck.id).state == State.SUCCEEDED
        lonely = rig.request("dns01 to host3")
        rig.pool.sim.timing.storage_bytes_per_s = 1e6  # the copies take hours now
        jobs.start()
        try:
            waiting = [
                rig.approved(f"{vm} to host3 sr=nfs2")
                for vm in ("vm01", "mail01", "ci-runner-2", "win-rdp01")
            ]
            until(lambda: rig.store.get(waiting[0].id).state == State.RUNNING, "the first run")
            rig.pool.clock.advance(3600)  # past the stuck grace and the approval expiry
            jobs.scheduler.modify_job("tick", next_run_time=datetime.now(UTC))
            until(lambda: rig.store.get(lonely.id).state == State.EXPIRED, "the expiry", 10)
            until(lambda: rig.store.get(stuck.id).state == State.STUCK, "the stuck check", 10)
            assert [rig.store.get(r.id).state for r in waiting[1:]] == [State.QUEUED] * 3
        finally:
            rig.engine.stop()
            jobs.stop()
    assert x.VM.get_resident_on(rig.pool.ref("VM", "vm02")) == rig.pool.ref("host", "host3")
