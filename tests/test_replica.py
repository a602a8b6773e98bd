"""Two `migrate-bot run` processes on one PostgreSQL: one runs the pool, both answer
Slack; a request filed and approved through the follower runs on the leader; the leader
killed (SIGKILL) while a step runs, the follower takes the pool within 15 s and carries
the run to its end: each XAPI operation once, the audit without a gap, the outcome in
the thread (one of `make failover`'s trials)."""

from __future__ import annotations

from tests.crash.failover import one_failover
from tests.crash.two_pools import two_pool_trial

TAKEOVER_S = 15.0  # the bound


def test_the_follower_takes_the_pool_when_the_leader_dies_mid_run(postgres_url: str) -> None:
    trial = one_failover(1, "offline", postgres_url, kill_after=None)
    assert trial.problems == (), trial
    assert trial.state == "succeeded" and trial.killed_during.startswith("during ")
    assert trial.takeover_s < TAKEOVER_S


def test_a_leader_cut_off_from_the_database_stops_and_the_follower_carries_on(
    postgres_url: str,
) -> None:
    """Its lock session ends (the network to PostgreSQL, not the process): its next check
    fails, it issues no step more and exits 3; the follower ends the run, each operation
    issued once."""
    trial = one_failover(2, "offline", postgres_url, kill_after=None, cut=True)
    assert trial.problems == (), trial
    assert trial.state == "succeeded" and trial.takeover_s < TAKEOVER_S


def test_two_pools_are_led_by_different_replicas_and_presses_cross_between_them(
    postgres_url: str,
) -> None:
    """Two replicas started together share two pools out; moves filed through one and
    approved through the other run on their pool's leader; the leader of one killed mid
    run, the other takes that pool too and ends the move (`tests/crash/two_pools.py`)."""
    trial = two_pool_trial(postgres_url)
    assert trial.problems == (), trial
    assert trial.leaders["site-a"] != trial.leaders["site-b"]
    assert trial.killed_during.startswith("during ") and trial.takeover_s < TAKEOVER_S
