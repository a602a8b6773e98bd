"""A run's re-check takes a pass from a read of the pool a few seconds old, so the moves of
a batch starting together read it once; anything else is judged on a fresh read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.models import Intent, Severity
from bot.planning.command import MigrateCommand, parse
from bot.planning.planner import RECENT_POOL_SECONDS, Planner, PlannerConfig, RecentRead
from bot.xen.connection import Xapi, XenConfig
from tests.support.pool import Pool

POOL_READS = ("pool.get_all_records", "host.get_all_records", "PBD.get_all_records")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_read_is_kept_for_its_seconds_counted_from_its_start() -> None:
    clock, reads = Clock(), []

    def read(_: object) -> int:
        reads.append(clock.now)
        clock.now += 1.0  # the read itself takes a second
        return len(reads)

    recent = RecentRead(read, 5.0, clock)
    assert recent(None) == 1
    clock.now = 4.9
    assert recent(None) == 1
    clock.now = 5.0  # five seconds after the read began, though four after it ended
    assert recent(None) == 2
    assert recent.fresh(None) == 3  # asked for: read whatever is kept
    assert recent(None) == 3


@pytest.fixture
def planner(pool: Pool) -> Iterator[tuple[Planner, Clock]]:
    xapi = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=10))
    clock = Clock()
    yield Planner(xapi, PlannerConfig(), now=clock), clock
    xapi.close()


def intent(planner: Planner, text: str) -> Intent:
    command = parse(text)
    assert isinstance(command, MigrateCommand)
    return planner.preview(command).intent()


def pool_reads(pool: Pool) -> list[int]:
    return [pool.sim.calls.counts[method] for method in POOL_READS]


def test_run_rechecks_within_the_seconds_share_a_read_of_the_pool(
    pool: Pool, planner: tuple[Planner, Clock]
) -> None:
    """The VM, the destination's free memory and xapi's pre-check are asked every time."""
    single, clock = planner
    move = intent(single, "vm02 to host3")
    pool.sim.calls.reset()
    for _ in range(3):
        assert not single.rebuild(move, recent=True).blocked
    assert pool_reads(pool) == [1, 1, 1]
    for method in ("VM.get_record", "host.compute_free_memory", "VM.assert_can_boot_here"):
        assert pool.sim.calls.counts[method] == 3, method
    clock.now = RECENT_POOL_SECONDS
    single.rebuild(move, recent=True)
    assert pool_reads(pool) == [2, 2, 2]


def test_other_rechecks_and_moves_that_copy_disks_read_the_pool_every_time(
    pool: Pool, planner: tuple[Planner, Clock]
) -> None:
    """An approval's re-check reads it now; so does a run whose disks change SR (free space
    changes as the bot's own copies run)."""
    single, _ = planner
    live, copy = intent(single, "vm02 to host3"), intent(single, "vm02 to host3 sr=nfs2")
    pool.sim.calls.reset()
    single.rebuild(live)
    single.rebuild(live)
    single.rebuild(copy, recent=True)
    single.rebuild(copy, recent=True)
    assert pool_reads(pool) == [4, 4, 4]


def test_a_blocker_on_kept_facts_is_judged_again_on_a_fresh_read(
    pool: Pool, planner: tuple[Planner, Clock]
) -> None:
    """host3 disabled after the read was kept: xapi's own pre-check refuses, and the
    checklist says why from the pool as it is now, as a re-check without the kept read."""
    single, _ = planner
    move = intent(single, "vm02 to host3")
    single.rebuild(move, recent=True)
    pool.x.host.disable(pool.ref("host", "host3"))
    pool.sim.calls.reset()
    preview = single.rebuild(move, recent=True)
    assert pool_reads(pool) == [1, 1, 1]
    host = next(c for c in preview.checks if c.key == "host")
    assert host.severity == Severity.BLOCKER and "disabled" in host.reason
    assert [(c.key, c.severity, c.reason) for c in preview.checks] == [
        (c.key, c.severity, c.reason) for c in single.rebuild(move).checks
    ]
