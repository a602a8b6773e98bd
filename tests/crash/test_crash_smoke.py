"""The short version of the kill -9 trials (`make crash` runs twenty)."""

from __future__ import annotations

from tests.crash.trials import one_trial


def test_killed_mid_live_and_mid_offline_migration_ends_right() -> None:
    """Killed during a live copy and during an offline run, a restarted bot ends each
    correctly: VM placed, every operation issued once, audit without gap, thread told."""
    for number, mode, after in ((1, "live", 0.8), (2, "offline", 1.5)):
        trial = one_trial(number, mode, after)
        assert trial.problems == (), trial
        assert trial.state == "succeeded"
