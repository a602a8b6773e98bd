"""The pre-flight checklist: every item in each of its outcomes, per design.md's severity rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.models import Check, Fix, NetworkFacts, Severity
from bot.planning.preflight import (
    KEYS,
    blocking,
    checklist,
    is_excluded_from_backup,
    recommended_mode,
)
from tests.support.factories import (
    NULL,
    GiB,
    TiB,
    halted,
    make_pool,
    make_vm,
    plan_for,
    ref,
    with_disk,
    with_host,
    with_sr,
)

TAG = "xo:no-bak"
PASS, WARNING, BLOCKER = Severity.PASS, Severity.WARNING, Severity.BLOCKER


def run(vm=None, pool=None, *, assert_error=None, cpu_threshold=0.8, **plan_kwargs):
    """The checklist as {key: Check} for a plan built from the same facts."""
    pool = pool or make_pool()
    plan = plan_for(vm, pool, **plan_kwargs)
    found = checklist(
        plan, pool, backup_tag=TAG, cpu_threshold=cpu_threshold, assert_error=assert_error
    )
    return {check.key: check for check in found}


def check(key, vm=None, pool=None, **kwargs) -> Check:
    return run(vm, pool, **kwargs)[key]


def nfs2_free(free: int):
    """The default pool with nfs2 (1 TiB) holding exactly `free` bytes of room."""
    return with_sr(make_pool(), "nfs2", physical_utilisation=1 * TiB - free)


# The list as a whole


def test_live_storage_move_shows_every_item_in_order():
    """A live migrate_send covers every key, in KEYS order, passes included (devices only
    when the VM has some passed through)."""
    assert tuple(run(sr="nfs1")) == tuple(k for k in KEYS if k != "devices")


def test_halted_vm_omits_items_that_need_a_running_vm():
    """Load and guest tools do not apply to a halted VM, so they are left out."""
    found = run(halted(make_vm()), sr="nfs1")
    assert "load" not in found
    assert "guest_tools" not in found


def test_every_fixable_item_has_a_title_and_reason():
    """Each item carries its title and a one-line reason, so the message can render it."""
    for item in run(sr="nfs1").values():
        assert item.title
        assert item.reason
        assert "\n" not in item.reason


def test_blocking_is_true_only_with_a_blocker():
    """Warnings keep the Approve button; a blocker removes it."""
    assert not blocking(run(sr="nfs1").values())
    assert blocking(run(replace(make_vm(), current_operations={"t": "x"}), sr="nfs1").values())


# Power state


@pytest.mark.parametrize(
    ("vm", "mode", "text"),
    [
        (make_vm("nfs1"), "live", "moves while it runs"),
        (make_vm("nfs1"), "offline", "shut down, moved and started on host3"),
        (halted(make_vm("nfs1")), "offline", "stays halted; its next start lands on host3"),
    ],
)
def test_power_state_passes(vm, mode, text):
    """Running suits both modes; halted suits offline and stays halted."""
    item = check("power_state", vm, mode=mode)
    assert item.severity is PASS
    assert text in item.reason


def test_live_migration_of_a_halted_vm_blocks_with_switch_to_offline():
    """mode=live on a halted VM is a blocker whose fix is Switch to offline."""
    item = check("power_state", halted(make_vm("nfs1")), mode="live")
    assert (item.severity, item.action) == (BLOCKER, Fix.SWITCH_TO_OFFLINE)


@pytest.mark.parametrize("state", ["Suspended", "Paused"])
@pytest.mark.parametrize("mode", ["live", "offline"])
def test_suspended_and_paused_vms_block(state, mode):
    """Suspended and paused VMs are blockers in either mode."""
    vm = replace(make_vm("nfs1"), power_state=state)
    item = check("power_state", vm, mode=mode)
    assert item.severity is BLOCKER
    assert state.lower() in item.reason


# Busy


def test_idle_vm_passes_busy():
    """A VM with no current operation passes."""
    assert check("busy", sr="nfs1").severity is PASS


def test_busy_vm_blocks_and_names_the_operation():
    """A leftover migrate_send in current_operations blocks and is named."""
    vm = replace(make_vm(), current_operations={"OpaqueRef:t": "migrate_send"})
    item = check("busy", vm, sr="nfs1")
    assert item.severity is BLOCKER
    assert "migrate_send" in item.reason


# Destination host


def test_enabled_live_host_passes():
    """An enabled, live destination passes."""
    assert check("host", sr="nfs1").severity is PASS


@pytest.mark.parametrize(
    ("changes", "text"), [({"enabled": False}, "disabled"), ({"live": False}, "not live")]
)
def test_disabled_or_dead_host_blocks(changes, text):
    """A disabled or not-live destination host is a blocker."""
    item = check("host", pool=with_host(make_pool(), "host3", **changes), sr="nfs1")
    assert item.severity is BLOCKER
    assert text in item.reason


# Memory


def test_enough_memory_passes():
    """32 GiB free for 8 GiB + overhead passes."""
    assert check("memory", sr="nfs1").severity is PASS


def test_too_little_memory_blocks_a_running_vm():
    """A running VM that does not fit on the destination is a blocker."""
    item = check("memory", pool=with_host(make_pool(), "host3", free_memory=4 * GiB), sr="nfs1")
    assert item.severity is BLOCKER
    assert "host3 has 4 GiB free; vm01 needs 8.1 GiB" in item.reason


def test_too_little_memory_blocks_a_halted_vm_whose_disks_move():
    """xapi checks memory for a halted VM's migrate_send too, so it blocks."""
    pool = with_host(make_pool(), "host3", free_memory=4 * GiB)
    assert check("memory", halted(make_vm()), pool, sr="nfs1").severity is BLOCKER


def test_too_little_memory_only_warns_for_an_affinity_change():
    """A halted VM that only gets a new affinity just cannot start there yet: a warning."""
    pool = with_host(make_pool(), "host3", free_memory=4 * GiB)
    item = check("memory", halted(make_vm("nfs1")), pool)
    assert item.severity is WARNING
    assert "before starting vm01" in item.fix


def test_offline_move_on_the_same_host_counts_the_memory_it_frees():
    """Shutting down frees the VM's own memory for its restart on the same host."""
    pool = with_host(make_pool(), "host1", free_memory=1 * GiB)
    item = check("memory", pool=pool, to="host1", sr="nfs1", mode="offline")
    assert item.severity is PASS
    assert "frees when it shuts down" in item.reason


def test_live_move_on_the_same_host_needs_memory_for_a_second_copy():
    """A live storage move on the same host still needs free memory there."""
    pool = with_host(make_pool(), "host1", free_memory=1 * GiB)
    assert check("memory", pool=pool, to="host1", sr="nfs1").severity is BLOCKER


# Storage reach


def test_reachable_destination_srs_pass():
    """Destination SRs attached to host3 pass."""
    item = check("sr_reach", sr="nfs1")
    assert (item.severity, item.reason) == (PASS, "host3 reaches nfs1")


def test_unreachable_sr_blocks_and_lists_reachable_srs_with_room():
    """A disk kept on host1's local SR blocks a move to host3; the fix lists usable SRs."""
    item = check("sr_reach", sr="nfs1", disks={"0": "local-host1"})
    assert item.severity is BLOCKER
    assert item.reason == "host3 cannot reach local-host1 (disk 0 (xvda, 'vm01 root'))"
    assert "nfs1 (3 TiB free), local-host3 (400 GiB free), nfs2 (124 GiB free)" in item.fix


# Free space


def test_room_for_full_size_passes():
    """nfs1 has room for the disks' full virtual size: pass."""
    item = check("space", sr="nfs1")
    assert (item.severity, item.reason) == (PASS, "nfs1 has 3 TiB free for 280 GiB")


def test_no_disk_moving_passes_space():
    """Without storage motion there is nothing to fit."""
    item = check("space", make_vm("nfs1"))
    assert (item.severity, item.reason) == (PASS, "no disk changes SR")


def test_room_for_used_but_not_full_size_warns():
    """nfs2 fits the 77 GiB in use but not the 280 GiB virtual size: a warning."""
    item = check("space", sr="nfs2")
    assert item.severity is WARNING
    assert "room for the 77 GiB the disks use now, not for their full 280 GiB" in item.reason
    assert "nfs1" in item.fix


def test_snapshot_disks_count_towards_space():
    """74 GiB fits the disks (72 GiB) but not with their snapshot disks (77 GiB): blocker."""
    item = check("space", pool=nfs2_free(74 * GiB), sr="nfs2")
    assert item.severity is BLOCKER
    assert "the disks moving there use 77 GiB" in item.reason


def test_disks_moving_to_one_sr_are_summed():
    """Two disks that fit nfs2 one by one (14 and 63 GiB) block together in 70 GiB."""
    item = check("space", pool=nfs2_free(70 * GiB), sr="nfs2")
    assert item.severity is BLOCKER
    assert item.fix.startswith("free space there or choose another SR")


def test_space_reports_only_the_worst_srs():
    """With one SR fine and one short, the reason names the short one."""
    item = check("space", pool=nfs2_free(10 * GiB), sr="nfs1", disks={"0": "nfs2"})
    assert item.severity is BLOCKER
    assert item.reason.startswith("nfs2 has 10 GiB free")
    assert "nfs1" not in item.reason


# Guest tools


def test_guest_tools_pass():
    """A running VM with tools passes in either mode."""
    assert check("guest_tools", sr="nfs1").severity is PASS
    assert check("guest_tools", sr="nfs1", mode="offline").severity is PASS


def test_live_without_tools_blocks_with_switch_to_offline():
    """No PV drivers means xapi refuses live migration: blocker, fix Switch to offline."""
    vm = replace(make_vm(), has_guest_tools=False)
    item = check("guest_tools", vm, sr="nfs1")
    assert (item.severity, item.action) == (BLOCKER, Fix.SWITCH_TO_OFFLINE)


def test_offline_clean_shutdown_without_tools_warns_with_hard_shutdown():
    """Without tools a clean shutdown fails: warning whose fix is shutdown=hard."""
    vm = replace(make_vm(), has_guest_tools=False)
    item = check("guest_tools", vm, sr="nfs1", mode="offline")
    assert (item.severity, item.action) == (WARNING, Fix.HARD_SHUTDOWN)
    assert "shutdown=hard" in item.fix


def test_offline_hard_shutdown_without_tools_passes():
    """With shutdown=hard chosen, missing tools no longer matter."""
    vm = replace(make_vm(), has_guest_tools=False)
    assert check("guest_tools", vm, sr="nfs1", mode="offline", shutdown="hard").severity is PASS


# CBT


def test_no_cbt_passes():
    """Disks without CBT pass."""
    assert check("cbt", sr="nfs1").severity is PASS


def test_cbt_blocks_a_storage_move():
    """A CBT disk blocks migrate_send, whichever disk moves."""
    vm = with_disk(make_vm(), "1", cbt_enabled=True)
    item = check("cbt", vm, sr="nfs1")
    assert item.severity is BLOCKER
    assert "1 (xvdb, 'vm01 data')" in item.reason


def test_cbt_does_not_matter_to_pool_migrate():
    """pool_migrate does not refuse CBT disks, so the item passes and says why."""
    vm = with_disk(make_vm("nfs1"), "0", cbt_enabled=True)
    item = check("cbt", vm)
    assert item.severity is PASS
    assert "no disk changes SR" in item.reason


# xapi's own pre-check


@pytest.mark.parametrize(
    ("vm", "kwargs", "call"),
    [
        (make_vm(), {"sr": "nfs1"}, "assert_can_migrate"),
        (make_vm("nfs1"), {}, "assert_can_boot_here"),
    ],
)
def test_xapi_precheck_passes_naming_the_call(vm, kwargs, call):
    """A passed assert names the xapi call that vouched for the move."""
    item = check("xapi", vm, **kwargs)
    assert item.severity is PASS
    assert call in item.reason


def test_xapi_precheck_failure_blocks_in_plain_words():
    """An assert failure is a blocker translated by xapi_errors, sizes formatted."""
    item = check(
        "xapi",
        sr="nfs1",
        assert_error=["HOST_NOT_ENOUGH_FREE_MEMORY", str(8 * GiB), str(1 * GiB)],
    )
    assert item.severity is BLOCKER
    assert item.reason == "The destination host has 1 GiB free, but the VM needs 8 GiB."


def test_xapi_precheck_names_refs():
    """Refs in xapi's error are shown as the names the pool facts give them."""
    error = ["VM_REQUIRES_SR", ref("vm01"), ref("local-host1")]
    item = check("xapi", sr="nfs1", assert_error=error)
    assert "SR local-host1, which holds a disk of vm01" in item.reason


def test_xapi_precheck_offers_offline_when_it_usually_helps():
    """A live failure an offline run avoids carries the Switch to offline fix."""
    item = check("xapi", sr="nfs1", assert_error=["VM_LACKS_FEATURE", ref("vm01")])
    assert item.action is Fix.SWITCH_TO_OFFLINE


def test_ha_plan_broken_blocks():
    """HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN from the assert is a blocker about HA."""
    pool = replace(make_pool(), ha_enabled=True)
    error = ["HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN"]
    item = check("xapi", make_vm("nfs1"), pool, assert_error=error)
    assert item.severity is BLOCKER
    assert "HA failover plan" in item.reason


def test_xapi_precheck_is_omitted_when_nothing_is_called():
    """An affinity-only move has no xapi pre-check to show."""
    assert "xapi" not in run(halted(make_vm("nfs1")))


def test_xapi_precheck_is_shown_whenever_an_error_came():
    """An error from the I/O layer is shown even for a move with no migration call."""
    found = run(halted(make_vm("nfs1")), assert_error=["HOST_OFFLINE", ref("host3")])
    assert found["xapi"].reason == "Host host3 is offline: the pool master cannot reach it."


# Load


def test_light_load_passes():
    """20 % CPU is below the 80 % threshold."""
    item = check("load", sr="nfs1")
    assert (item.severity, item.reason) == (PASS, "CPU at 20% (warning above 80%)")


def test_load_at_the_threshold_passes():
    """The warning is for load above the threshold, not at it."""
    vm = replace(make_vm(), cpu_usage=0.8)
    assert check("load", vm, sr="nfs1").severity is PASS


def test_heavy_load_warns_with_switch_to_offline_and_its_downtime():
    """Above the threshold: warning, reason says why, fix names the offline downtime."""
    vm = replace(make_vm("nfs1"), cpu_usage=0.95)
    item = check("load", vm)
    assert (item.severity, item.action) == (WARNING, Fix.SWITCH_TO_OFFLINE)
    assert "tend to fail" in item.reason
    assert "toolstack" in item.reason
    assert item.fix == "Switch to offline: about 1 min 15 s of downtime"  # 30 s + 45 s


def test_unknown_load_passes_and_says_so():
    """No cpu_usage figure is not judged, and the reason says so."""
    item = check("load", replace(make_vm(), cpu_usage=None), sr="nfs1")
    assert item.severity is PASS
    assert "unknown" in item.reason


def test_load_is_omitted_offline():
    """Load only matters for live migrations."""
    assert "load" not in run(sr="nfs1", mode="offline")


# Snapshots


def test_no_snapshots_passes():
    """A VM without snapshots passes."""
    vm = replace(make_vm(), snapshots=(), snapshot_disks=())
    assert check("snapshots", vm, sr="nfs1").severity is PASS


def test_snapshots_warn_with_delete_and_the_backup_consequence():
    """Snapshots warn; the fix deletes them and says the next backup is full."""
    item = check("snapshots", sr="nfs1")
    assert (item.severity, item.action) == (WARNING, Fix.DELETE_SNAPSHOTS)
    assert "'before upgrade'" in item.reason
    assert item.fix.startswith("Delete 1 snapshot:")
    assert "incremental backup chain is lost" in item.fix
    assert "next backup is a full one" in item.fix
    assert "backups themselves stay" in item.fix


def test_many_snapshots_are_counted_not_all_listed():
    """Five snapshots show three names and 'and 2 more', and the button deletes five."""
    snap = make_vm().snapshots[0]
    vm = replace(make_vm(), snapshots=tuple(replace(snap, name=f"s{i}") for i in range(5)))
    item = check("snapshots", vm, sr="nfs1")
    assert "'s0', 's1', 's2' and 2 more" in item.reason
    assert item.fix.startswith("Delete 5 snapshots:")


# Backup exclusion


@pytest.mark.parametrize("tag", [TAG, f"{TAG}=migrate-bot #42"])
def test_backup_exclusion_tag_passes(tag):
    """The bare tag or tag=reason marks the VM as excluded."""
    item = check("backup", replace(make_vm(), tags=("prod", tag)), sr="nfs1")
    assert item.severity is PASS
    assert tag in item.reason


@pytest.mark.parametrize("tags", [(), ("xo:no-bakery",), ("prod",)])
def test_missing_exclusion_warns_with_exclude_from_backup(tags):
    """Without the tag (a longer look-alike does not count) the item warns."""
    item = check("backup", replace(make_vm(), tags=tags), sr="nfs1")
    assert (item.severity, item.action) == (WARNING, Fix.EXCLUDE_FROM_BACKUP)


def test_is_excluded_from_backup_matches_xo_rule():
    """The tag's name part must equal the setting exactly, as Xen Orchestra checks it."""
    assert is_excluded_from_backup(["a", "xo:no-bak=x"], TAG)
    assert not is_excluded_from_backup(["xo:no-bak-x"], TAG)


# Recommended mode


@pytest.mark.parametrize(
    ("vm", "mode"),
    [
        (make_vm(), "live"),
        (replace(make_vm(), cpu_usage=0.9), "offline"),
        (replace(make_vm(), has_guest_tools=False), "offline"),
        (replace(make_vm(), cpu_usage=None), "live"),
        (replace(make_vm(), power_state="Halted", resident_on=NULL), "offline"),
    ],
)
def test_recommended_mode(vm, mode):
    """Live only for a running VM with tools that is not heavily loaded."""
    assert recommended_mode(vm, cpu_threshold=0.8) == mode


# What xapi checks only when the migration runs


def test_a_blocked_operation_the_plan_needs_is_a_blocker():
    """Someone blocked migrate_send: the checklist says so and how to lift it."""
    vm = make_vm(blocked_operations={"migrate_send": "backup window"})
    found = check("operations", vm, sr="nfs1")
    assert found.severity == BLOCKER and "blocked migrate_send" in found.reason
    assert "backup window" in found.reason and "param-key=migrate_send" in found.fix


def test_an_operation_xapi_does_not_allow_now_is_a_blocker():
    """pool_migrate missing from allowed_operations (a tools-bearing, idle VM): blocker."""
    vm = make_vm(allowed_operations=frozenset({"clean_shutdown"}))
    assert check("operations", vm, sr="nfs1").severity == BLOCKER
    offline = check("operations", vm, mode="offline", sr="nfs1")
    assert offline.severity == PASS  # the shutdown is what it asks of xapi now


def test_an_offline_move_is_checked_for_its_start_before_the_shutdown():
    """start_on blocked: the offline plan is refused before anything is shut down."""
    vm = make_vm(blocked_operations={"start_on": ""})
    found = check("operations", vm, mode="offline", sr="nfs1")
    assert found.severity == BLOCKER and "start_on" in found.reason


def test_a_network_the_destination_lacks_is_a_blocker():
    """The VM is on a network with PIFs on host1 and host2 only; host3 has none."""
    dmz = NetworkFacts(ref("net-dmz"), "dmz", frozenset({ref("host1"), ref("host2")}))
    pool = make_pool()
    pool = replace(pool, networks={**pool.networks, dmz.ref: dmz})
    vm = make_vm(networks=(ref("net-lan"), dmz.ref))
    found = check("networks", vm, pool, mode="offline", sr="nfs1")
    assert found.severity == BLOCKER and "host3 has no PIF on network dmz" in found.reason
    assert check("networks", vm, pool, to="host2", sr="nfs1").severity == PASS


def test_passed_through_devices_block_a_live_move_and_warn_an_offline_one():
    """A PCI device: xapi does not move it live; offline the destination needs one too."""
    vm = make_vm(devices=("PCI device",))
    assert check("devices", vm, sr="nfs1").severity == BLOCKER
    assert check("devices", vm, mode="offline", sr="nfs1").severity == WARNING
