"""Planning: disk placement, call choice, estimates and their formatting."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.planning.plan import (
    BOOT_SECONDS,
    CLEAN_SHUTDOWN_SECONDS,
    HARD_SHUTDOWN_SECONDS,
    LIVE_DOWNTIME_SECONDS,
    PlanError,
    copy_bytes,
    make_plan,
    with_mode,
)
from bot.planning.units import format_duration, format_size
from tests.support.factories import (
    NULL,
    GiB,
    MiB,
    TiB,
    halted,
    make_pool,
    make_vm,
    plan_for,
    ref,
    with_sr,
)

RATE = 100e6  # 100 MB/s in bytes per second
ALL_DISKS = (40 + 100 + 40 + 100) * GiB  # both disks and their snapshot disks, virtual sizes


def dest_srs(plan):
    """{userdevice: destination SR ref} for compact assertions."""
    return {m.disk.userdevice: m.dest_sr_ref for m in plan.disks}


# Mode


@pytest.mark.parametrize(("vm", "mode"), [(make_vm(), "live"), (halted(make_vm()), "offline")])
def test_mode_defaults_from_power_state(vm, mode):
    """Without mode= a running VM goes live and a halted one offline."""
    assert plan_for(vm, sr="nfs1").mode == mode


def test_explicit_mode_is_kept():
    """mode=offline on a running VM is honoured."""
    assert plan_for(sr="nfs1", mode="offline").mode == "offline"


# Disk placement


def test_disk_override_beats_primary_sr():
    """disk:<n>= puts that disk on its own SR while sr= places the others."""
    plan = plan_for(sr="nfs1", disks={"1": "nfs2"})
    assert dest_srs(plan) == {"0": ref("nfs1"), "1": ref("nfs2")}


def test_primary_sr_beats_staying():
    """sr= moves a disk even when the destination could reach its current SR."""
    plan = plan_for(make_vm("nfs1"), sr="nfs2")
    assert dest_srs(plan) == {"0": ref("nfs2"), "1": ref("nfs2")}


def test_disks_stay_on_an_sr_the_destination_reaches():
    """Without sr= a disk on shared storage stays where it is."""
    plan = plan_for(make_vm("nfs1"))
    assert dest_srs(plan) == {"0": ref("nfs1"), "1": ref("nfs1")}
    assert not plan.moves_storage


def test_same_host_disk_stays_on_local_storage():
    """A storage-only move on host1 leaves the other disk on host1's local SR."""
    plan = plan_for(to="host1", disks={"1": "nfs1"})
    assert dest_srs(plan) == {"0": ref("local-host1"), "1": ref("nfs1")}


def test_unreachable_disk_lists_srs_with_room():
    """A disk host3 cannot reach is an error naming the SRs host3 reaches with room."""
    with pytest.raises(PlanError) as caught:
        plan_for(disks={"1": "nfs1"})
    message = str(caught.value)
    assert "host3 cannot reach local-host1, where disk 0 (xvda, 'vm01 root') is" in message
    assert "sr=<sr> or disk:0=<sr>" in message
    assert "nfs1 (3 TiB free), local-host3 (400 GiB free), nfs2 (124 GiB free)" in message
    assert "local-host1" not in message.split("from the SRs")[1]
    vdi = make_vm().disks[0].vdi_ref
    assert caught.value.choices == {vdi: (ref("nfs1"), ref("local-host3"), ref("nfs2"))}


def test_unreachable_disk_choices_skip_srs_without_room():
    """An SR host3 reaches but that lacks room for the disk and its snapshots is not offered."""
    pool = with_sr(make_pool(), "nfs2", physical_utilisation=1 * TiB - 13 * GiB)
    with pytest.raises(PlanError) as caught:
        plan_for(pool=pool, disks={"1": "nfs1"})  # disk 0 needs 12 + 2 GiB
    assert "nfs2" not in str(caught.value)


def test_unreachable_disk_without_any_room_says_so():
    """When no reachable SR has room the error says how much is needed."""
    pool = make_pool()
    for name in ("nfs1", "nfs2", "local-host3"):
        pool = with_sr(pool, name, physical_utilisation=pool.srs[ref(name)].physical_size)
    with pytest.raises(PlanError, match="no SR that host3 reaches has the 14 GiB it needs"):
        plan_for(pool=pool, disks={"1": "nfs1"})


def test_every_stranded_disk_is_reported():
    """Both unreachable disks are named in one error, one line each."""
    with pytest.raises(PlanError) as caught:
        plan_for()
    assert len(str(caught.value).splitlines()) == 2
    assert len(caught.value.choices) == 2


def test_vdi_map_lists_every_disk():
    """vdi_map holds staying disks too, as migrate_send requires."""
    root, data = make_vm().disks
    plan = plan_for(make_vm("nfs1"), disks={"1": "nfs2"})
    assert plan.vdi_map == {root.vdi_ref: ref("nfs1"), data.vdi_ref: ref("nfs2")}


# Call selection


def test_live_on_shared_storage_is_pool_migrate():
    """A running VM whose disks stay is moved with VM.pool_migrate."""
    assert plan_for(make_vm("nfs1")).call == "pool_migrate"


def test_live_with_a_disk_moving_is_migrate_send():
    """Any disk changing SR makes a live move a migrate_send."""
    assert plan_for(sr="nfs1").call == "migrate_send"


def test_offline_with_a_disk_moving_is_migrate_send():
    """A halted VM whose disks move uses migrate_send (allowed for halted VMs)."""
    assert plan_for(halted(make_vm()), sr="nfs1").call == "migrate_send"


def test_offline_running_vm_on_shared_storage_calls_nothing():
    """Offline on shared storage is shutdown then start_on: no migration call."""
    plan = plan_for(make_vm("nfs1"), mode="offline")
    assert plan.call == "none"


def test_halted_vm_on_shared_storage_only_changes_affinity():
    """A halted VM whose disks stay has nothing to move: call none."""
    plan = plan_for(halted(make_vm("nfs1")))
    assert (plan.call, plan.mode, plan.source_host_ref) == ("none", "offline", ref("host1"))


def test_halted_vm_without_affinity_is_planned():
    """A halted VM with no affinity gets one: the plan is not 'nothing to do'."""
    vm = replace(halted(make_vm("nfs1")), affinity=NULL)
    assert plan_for(vm, to="host1").source_host_ref == NULL


@pytest.mark.parametrize("mode", ["live", "offline"])
def test_nothing_to_move_is_an_error(mode):
    """Asking to move vm01 to the host it is on, disks staying, is refused."""
    with pytest.raises(PlanError, match="already on host1"):
        plan_for(make_vm("nfs1"), to="host1", mode=mode)


# Validation of refs


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"to": "host9"}, "host OpaqueRef:host9"),
        ({"sr": "nfs9"}, "SR OpaqueRef:nfs9"),
        ({"disks": {"0": "nfs9"}}, "SR OpaqueRef:nfs9"),
        ({"sr": "nfs1", "throughput": 0}, "copy rate"),
    ],
)
def test_stale_refs_and_bad_rate_are_plan_errors(kwargs, text):
    """Refs that are not in the facts, and a non-positive rate, raise PlanError."""
    with pytest.raises(PlanError, match=text):
        plan_for(**kwargs)


def test_disk_map_for_a_foreign_disk_is_an_error():
    """A disk_srs key that is not one of the VM's disks raises PlanError."""
    with pytest.raises(PlanError, match="not a disk of vm01"):
        make_plan(
            make_vm(),
            make_pool(),
            ref("host3"),
            None,
            {"OpaqueRef:x": ref("nfs1")},
            None,
            "clean",
            100,
        )


# Estimates


def test_copy_bytes_include_snapshot_disks_of_moving_disks_only():
    """Only moving disks and their own snapshot disks count, at virtual size."""
    plan = plan_for(make_vm("nfs1"), disks={"1": "nfs2"})
    assert copy_bytes(plan) == (100 + 100) * GiB


def test_live_estimate_is_disks_plus_memory_and_a_short_pause():
    """Live: copy + static max memory at the rate, plus the final pause as downtime."""
    plan = plan_for(sr="nfs1")
    expected = (ALL_DISKS + 8 * GiB) / RATE + LIVE_DOWNTIME_SECONDS
    assert math.isclose(plan.estimate_seconds, expected)
    assert plan.downtime_seconds == LIVE_DOWNTIME_SECONDS


def test_pool_migrate_estimate_is_memory_only():
    """A live move with no storage copies only memory."""
    plan = plan_for(make_vm("nfs1"))
    assert math.isclose(plan.estimate_seconds, 8 * GiB / RATE + LIVE_DOWNTIME_SECONDS)


@pytest.mark.parametrize(
    ("shutdown", "stop"), [("clean", CLEAN_SHUTDOWN_SECONDS), ("hard", HARD_SHUTDOWN_SECONDS)]
)
def test_offline_running_vm_is_down_for_shutdown_copy_and_boot(shutdown, stop):
    """Offline of a running VM: downtime = shutdown + copy (no memory) + boot."""
    plan = plan_for(sr="nfs1", mode="offline", shutdown=shutdown)
    expected = stop + ALL_DISKS / RATE + BOOT_SECONDS
    assert math.isclose(plan.estimate_seconds, expected)
    assert plan.downtime_seconds == plan.estimate_seconds


def test_halted_vm_has_no_downtime():
    """A halted VM stays halted: the estimate is the copy alone, downtime zero."""
    plan = plan_for(halted(make_vm()), sr="nfs1")
    assert math.isclose(plan.estimate_seconds, ALL_DISKS / RATE)
    assert plan.downtime_seconds == 0


def test_estimate_scales_with_throughput():
    """Twice the rate halves the copy time."""
    slow, fast = (plan_for(halted(make_vm()), sr="nfs1", throughput=t) for t in (100, 200))
    assert math.isclose(slow.estimate_seconds, 2 * fast.estimate_seconds)


def test_with_mode_replans_offline():
    """Switch to offline keeps the disks and redoes call and estimates."""
    live = plan_for(make_vm("nfs1"))
    offline = with_mode(live, "offline", "hard")
    assert (offline.mode, offline.call, offline.shutdown) == ("offline", "none", "hard")
    assert offline.disks == live.disks
    assert offline.downtime_seconds == HARD_SHUTDOWN_SECONDS + BOOT_SECONDS


def test_with_mode_needs_a_rate():
    """A hand-built plan without a copy rate cannot be re-estimated."""
    with pytest.raises(PlanError):
        with_mode(replace(plan_for(sr="nfs1"), throughput_mbps=0), "offline")


# Formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (372, "6 min 12 s"),
        (360, "6 min"),
        (3780, "1 h 3 min"),
        (3599.7, "1 h"),
        (7200, "2 h"),
        (-5, "0 s"),
    ],
)
def test_format_duration(seconds, text):
    """Durations read like '6 min 12 s' and '1 h 3 min'."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (512 * MiB, "512 MiB"),
        (40 * GiB, "40 GiB"),
        (1.5 * TiB, "1.5 TiB"),
        (1024 * MiB - 1, "1 GiB"),
        (3 * 1024 * TiB, "3 PiB"),
        (5000 * 1024 * TiB, "5000 PiB"),
    ],
)
def test_format_size(size, text):
    """Sizes use binary units with at most one decimal, like XO and XenCenter."""
    assert format_size(size) == text


@given(st.floats(min_value=0, max_value=1e12))
def test_format_duration_is_total(seconds):
    """Any non-negative duration formats without raising."""
    assert format_duration(seconds).endswith(("s", "min", "h"))


@given(st.integers(min_value=0, max_value=2**70))
def test_format_size_is_total(size):
    """Any byte count formats to a number and a unit."""
    number, unit = format_size(size).split(" ")
    assert float(number) < 1024 or unit == "PiB"
