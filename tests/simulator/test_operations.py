"""Migrations and lifecycle operations follow xapi's rules, driven over XML-RPC."""

from __future__ import annotations

import pytest
import XenAPI

from tests.support.pool import Pool

GIB = 1024**3


def test_live_pool_migrate_with_progress_through_events(pool: Pool) -> None:
    """pool_migrate: the task's progress rises in event.from, the VM lands on the host."""
    vm, host3 = pool.ref("VM", "vm02"), pool.ref("host", "host3")
    token = pool.x.event_from(["task"], "", 0.0)["token"]
    task = pool.x.Async.VM.pool_migrate(vm, host3, {})
    assert task.startswith("OpaqueRef:")
    assert pool.x.VM.get_current_operations(vm) == {task: "pool_migrate"}
    assert pool.x.host.get_current_operations(host3) == {task: "vm_migrate"}
    seen = []
    while pool.x.task.get_status(task) == "pending":
        pool.clock.advance(0.25)
        batch = pool.x.event_from([f"task/{task}"], token, 0.0)
        token = batch["token"]
        seen += [e["snapshot"]["progress"] for e in batch["events"]]
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == 1.0
    record = pool.x.task.get_record(task)
    assert record["status"] == "success" and record["result"] == "<value></value>"
    assert pool.x.VM.get_resident_on(vm) == host3
    assert pool.x.VM.get_current_operations(vm) == {}
    assert pool.x.host.get_current_operations(host3) == {}
    assert vm in pool.x.host.get_resident_VMs(host3)


def test_storage_migration_moves_disks_and_snapshot_disks(pool: Pool) -> None:
    """migrate_send with a vdi_map moves each disk and its snapshot disks to the new SR."""
    vm, host3, nfs1 = pool.ref("VM", "vm01"), pool.ref("host", "host3"), pool.ref("SR", "nfs1")
    used_before = int(pool.x.SR.get_physical_utilisation(nfs1))
    task = pool.x.Async.VM.migrate_send(
        vm, pool.receive(host3), True, {d: nfs1 for d in pool.disks(vm)}, {}, {}
    )
    record = pool.run(task, step=10)
    assert record["status"] == "success", record["error_info"]
    assert record["result"] == f"<value>{vm}</value>"
    assert pool.x.VM.get_resident_on(vm) == host3
    disks = pool.disks(vm)  # new VDIs: storage motion copies, it does not move records
    moved = disks + [s for d in disks for s in pool.x.VDI.get_snapshots(d)]
    assert len(moved) == 4 and {pool.x.VDI.get_SR(d) for d in moved} == {nfs1}
    grown = sum(int(pool.x.VDI.get_physical_utilisation(d)) for d in moved)
    assert int(pool.x.SR.get_physical_utilisation(nfs1)) == used_before + grown


def test_transfer_time_grows_with_disk_size(pool: Pool) -> None:
    """A disk twice as big takes about twice as long to copy."""
    nfs2 = pool.ref("SR", "nfs2")
    durations = {}
    for name in ("vm02", "mail01"):  # 30 GiB vs 80 GiB on nfs1
        vm = pool.ref("VM", name)
        host = pool.x.VM.get_resident_on(vm)
        task = pool.x.Async.VM.migrate_send(
            vm, pool.receive(host), True, {d: nfs2 for d in pool.disks(vm)}, {}, {}
        )
        start = pool.clock.now()
        assert pool.run(task, step=0.5)["status"] == "success"
        durations[name] = pool.clock.now() - start
    assert 2.0 < durations["mail01"] / durations["vm02"] < 3.2


def test_halted_vm_storage_migration_stays_halted(pool: Pool) -> None:
    """A halted VM's disks move with migrate_send and the VM stays halted."""
    vm, host2, nfs1 = pool.ref("VM", "archive01"), pool.ref("host", "host2"), pool.ref("SR", "nfs1")
    task = pool.x.Async.VM.migrate_send(
        vm, pool.receive(host2), False, {d: nfs1 for d in pool.disks(vm)}, {}, {}
    )
    assert pool.run(task, step=10)["status"] == "success"
    assert pool.x.VM.get_power_state(vm) == "Halted"
    assert {pool.x.VDI.get_SR(d) for d in pool.disks(vm)} == {nfs1}


def test_vdi_map_must_list_every_disk(pool: Pool) -> None:
    """Leaving a disk out of vdi_map fails VDI_NOT_IN_MAP; a VIF map intra-pool is refused."""
    vm, host3, nfs1 = pool.ref("VM", "vm01"), pool.ref("host", "host3"), pool.ref("SR", "nfs1")
    first, second = pool.disks(vm)
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.assert_can_migrate(vm, pool.receive(host3), True, {first: nfs1}, {}, {})
    assert failure.value.details == ["VDI_NOT_IN_MAP", second]
    vif = pool.x.VM.get_VIFs(vm)[0]
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.assert_can_migrate(
            vm, pool.receive(host3), True, {first: nfs1, second: nfs1}, {vif: "x"}, {}
        )
    assert failure.value.details[0] == "OPERATION_NOT_ALLOWED"


def test_destination_must_see_the_sr(pool: Pool) -> None:
    """pool_migrate of a VM on a local SR fails VM_REQUIRES_SR; a local SR of another host too."""
    vm, host3 = pool.ref("VM", "vm01"), pool.ref("host", "host3")
    local = pool.ref("SR", "host1-local")
    task = pool.x.Async.VM.pool_migrate(vm, host3, {})
    record = pool.run(task)
    assert record["status"] == "failure"
    assert record["error_info"] == ["VM_REQUIRES_SR", vm, local]
    other = pool.ref("SR", "host2-local")
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.assert_can_migrate(
            vm, pool.receive(host3), True, {d: other for d in pool.disks(vm)}, {}, {}
        )
    assert failure.value.details == ["VM_REQUIRES_SR", vm, other]


def test_power_state_rules(pool: Pool) -> None:
    """pool_migrate of a halted VM and start of a running one fail VM_BAD_POWER_STATE."""
    halted, running = pool.ref("VM", "archive01"), pool.ref("VM", "vm02")
    record = pool.run(pool.x.Async.VM.pool_migrate(halted, pool.ref("host", "host2"), {}))
    assert record["error_info"] == ["VM_BAD_POWER_STATE", halted, "running", "halted"]
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.start_on(running, pool.ref("host", "host3"), False, False)
    assert failure.value.details == ["VM_BAD_POWER_STATE", running, "halted", "running"]


def test_destination_memory_is_checked(pool: Pool) -> None:
    """bigdb does not fit host2: HOST_NOT_ENOUGH_FREE_MEMORY with needed and available bytes."""
    vm, host2 = pool.ref("VM", "bigdb"), pool.ref("host", "host2")
    free = int(pool.x.host.compute_free_memory(host2))
    record = pool.run(pool.x.Async.VM.pool_migrate(vm, host2, {}))
    assert record["error_info"][0] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    needed, available = map(int, record["error_info"][1:])
    assert needed > 96 * GIB and available == free
    assert pool.x.VM.get_resident_on(vm) == pool.ref("host", "host1")


def test_live_migration_needs_guest_tools(pool: Pool) -> None:
    """A VM without PV drivers cannot migrate live or shut down cleanly: VM_LACKS_FEATURE."""
    vm = pool.ref("VM", "legacy01")
    record = pool.run(pool.x.Async.VM.pool_migrate(vm, pool.ref("host", "host2"), {}))
    assert record["error_info"] == ["VM_LACKS_FEATURE", vm]
    record = pool.run(pool.x.Async.VM.clean_shutdown(vm))
    assert record["error_info"] == ["VM_LACKS_FEATURE", vm]
    assert pool.run(pool.x.Async.VM.hard_shutdown(vm))["status"] == "success"
    assert pool.x.VM.get_power_state(vm) == "Halted"


def test_offline_migration_shutdown_move_start(pool: Pool) -> None:
    """Offline: clean_shutdown, migrate_send the halted VM, start_on the destination."""
    vm, host2, nfs2 = pool.ref("VM", "vm01"), pool.ref("host", "host2"), pool.ref("SR", "nfs2")
    assert pool.run(pool.x.Async.VM.clean_shutdown(vm))["status"] == "success"
    assert pool.x.VM.get_power_state(vm) == "Halted"
    assert pool.x.VM.get_resident_on(vm) == "OpaqueRef:NULL"
    task = pool.x.Async.VM.migrate_send(
        vm, pool.receive(host2), False, {d: nfs2 for d in pool.disks(vm)}, {}, {}
    )
    assert pool.run(task, step=10)["status"] == "success"
    assert pool.run(pool.x.Async.VM.start_on(vm, host2, False, False))["status"] == "success"
    assert pool.x.VM.get_power_state(vm) == "Running"
    assert pool.x.VM.get_resident_on(vm) == host2


def test_busy_vm_waits_then_fails(pool: Pool) -> None:
    """A second operation waits while the VM is busy, then fails OTHER_OPERATION_IN_PROGRESS."""
    pool.sim.timing.lock_wait_s = 5
    pool.sim.timing.clean_shutdown_s = 100
    vm = pool.ref("VM", "vm02")
    first = pool.x.Async.VM.clean_shutdown(vm)
    second = pool.x.Async.VM.pool_migrate(vm, pool.ref("host", "host3"), {})
    pool.clock.advance(2)
    assert pool.x.task.get_status(second) == "pending"
    record = pool.run(second)
    assert record["error_info"] == [
        "OTHER_OPERATION_IN_PROGRESS",
        "VM",
        vm,
        "clean_shutdown",
        first,
    ]


def test_too_many_storage_migrations(pool: Pool) -> None:
    """A fourth concurrent migrate_send fails TOO_MANY_STORAGE_MIGRATES ['3']."""
    nfs2 = pool.ref("SR", "nfs2")
    tasks = []
    for name in ("vm02", "dns01", "mail01", "ci-runner-2"):
        vm = pool.ref("VM", name)
        host = pool.x.VM.get_resident_on(vm)
        tasks.append(
            pool.x.Async.VM.migrate_send(
                vm, pool.receive(host), True, {d: nfs2 for d in pool.disks(vm)}, {}, {}
            )
        )
    pool.clock.advance(0.1)
    assert pool.x.task.get_error_info(tasks[3]) == ["TOO_MANY_STORAGE_MIGRATES", "3"]
    assert [pool.x.task.get_status(t) for t in tasks[:3]] == ["pending"] * 3


def test_sr_space_is_found_out_by_the_copy(pool: Pool) -> None:
    """archive01 (40 + 500 GiB) onto host3's nearly full LVM SR: xapi's pre-check passes;
    the copy starts, the small disk fits, the big one fails for space; nothing moved."""
    vm, host3 = pool.ref("VM", "archive01"), pool.ref("host", "host3")
    local = pool.ref("SR", "host3-local")
    vdi_map = {d: local for d in pool.disks(vm)}
    before = sorted(pool.disks(vm))
    assert pool.x.VM.assert_can_migrate(vm, pool.receive(host3), False, vdi_map, {}, {}) == ""
    task = pool.x.Async.VM.migrate_send(vm, pool.receive(host3), False, vdi_map, {}, {})
    began = pool.clock.now()
    record = pool.run(task, step=1)
    assert record["status"] == "failure"
    assert record["error_info"] == ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""]
    rate = pool.sim.timing.storage_bytes_per_s
    # after the small disk's copy (40 GiB), long before the whole copy (540 GiB) would end
    assert 40 * GIB / rate <= pool.clock.now() - began < 100 * GIB / rate
    assert sorted(pool.disks(vm)) == before
    assert {pool.x.VDI.get_SR(d) for d in before} == {pool.ref("SR", "nfs2")}


def test_cancel_during_copy_and_ignored_after(pool: Pool) -> None:
    """task.cancel stops a copy (VM unchanged); once the copy is done it is ignored."""
    vm, host3, nfs2 = pool.ref("VM", "vm02"), pool.ref("host", "host3"), pool.ref("SR", "nfs2")
    vdi_map = {d: nfs2 for d in pool.disks(vm)}
    task = pool.x.Async.VM.migrate_send(vm, pool.receive(host3), True, vdi_map, {}, {})
    pool.clock.advance(3)
    pool.x.task.cancel(task)
    record = pool.run(task)
    assert record["status"] == "cancelled" and record["error_info"] == ["TASK_CANCELLED", task]
    assert pool.x.VM.get_resident_on(vm) == pool.ref("host", "host2")
    assert pool.x.VM.get_current_operations(vm) == {}
    task = pool.x.Async.VM.migrate_send(vm, pool.receive(host3), True, vdi_map, {}, {})
    while pool.x.task.get_allowed_operations(task):
        pool.clock.advance(1)
    pool.x.task.cancel(task)
    assert pool.run(task)["status"] == "success"
    assert pool.x.VM.get_resident_on(vm) == host3


def test_delete_snapshot_leaves_disks_until_vdi_destroy(pool: Pool) -> None:
    """VM.destroy of a snapshot keeps its VDIs (as xapi); VDI.destroy frees the space."""
    vm = pool.ref("VM", "vm01")
    (snap,) = pool.x.VM.get_snapshots(vm)
    snap_disks = pool.disks(snap)
    sr = pool.x.VDI.get_SR(snap_disks[0])
    used = int(pool.x.SR.get_physical_utilisation(sr))
    pool.x.VM.destroy(snap)
    assert pool.x.VM.get_snapshots(vm) == []
    assert all(pool.x.VDI.get_VBDs(d) == [] for d in snap_disks)
    freed = sum(int(pool.x.VDI.get_physical_utilisation(d)) for d in snap_disks)
    for disk in snap_disks:
        pool.x.VDI.destroy(disk)
    assert int(pool.x.SR.get_physical_utilisation(sr)) == used - freed
    assert all(pool.x.VDI.get_snapshots(d) == [] for d in pool.disks(vm))


def test_vm_start_prefers_affinity(pool: Pool) -> None:
    """VM.start places a halted VM on its affinity host."""
    vm, host3 = pool.ref("VM", "archive01"), pool.ref("host", "host3")
    pool.x.VM.set_affinity(vm, host3)
    assert pool.run(pool.x.Async.VM.start(vm, False, False))["status"] == "success"
    assert pool.x.VM.get_resident_on(vm) == host3


def test_query_data_source_cpu_usage(pool: Pool) -> None:
    """cpu_usage of a running VM is its load; a halted VM has no data source."""
    assert pool.x.VM.query_data_source(pool.ref("VM", "build01"), "cpu_usage") == 0.95
    with pytest.raises(XenAPI.Failure):
        pool.x.VM.query_data_source(pool.ref("VM", "archive01"), "cpu_usage")
