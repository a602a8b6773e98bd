"""The short version of the kill -9 trials (`make crash` runs twenty)."""

from __future__ import annotations

from tests.crash.trials import one_trial


def test_killed_mid_live_and_mid_offline_migration_ends_right() -> None:
    """Killed during a live copy, during an offline run and right after an offline copy
    (the disks are new VDIs, the start not issued), and while an evacuation of ten VMs
    runs, a restarted bot ends each correctly: VMs placed, every operation issued once,
    audits without gap, thread told."""
    for number, mode, after, aim in (
        (1, "live", 0.8, None),
        (2, "offline", 1.5, None),
        (3, "offline", 0.0, "after the move"),
        (4, "batch", 1.5, None),
    ):
        trial = one_trial(number, mode, after, aim)
        assert trial.problems == (), trial
        assert trial.state == "succeeded"
