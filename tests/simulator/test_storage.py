"""Storage as xapi keeps it, through the real XenAPI client: new VDIs after storage motion,
snapshots' CD drives on the library's ISO, thick SRs, SRs that take no disks, networks."""

from __future__ import annotations

import pytest
import XenAPI

from tests.support.pool import Pool

GIB = 1024**3
NO_SPACE = ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""]


def _vbd(pool: Pool, vm: str, userdevice: str) -> str:
    (vbd,) = [v for v in pool.x.VM.get_VBDs(vm) if pool.x.VBD.get_userdevice(v) == userdevice]
    return vbd


def test_storage_motion_makes_new_vdis_and_destroys_the_old(pool: Pool) -> None:
    """After migrate_send each moved disk is a new VDI (ref and uuid) behind the same VBD;
    the old one is gone; snapshot disks are new too and chained to the new disk."""
    vm, host3, nfs1 = pool.ref("VM", "vm01"), pool.ref("host", "host3"), pool.ref("SR", "nfs1")
    root = pool.x.VBD.get_VDI(_vbd(pool, vm, "0"))
    root_uuid, (snap_disk,) = pool.x.VDI.get_uuid(root), pool.x.VDI.get_snapshots(root)
    task = pool.x.Async.VM.migrate_send(
        vm, pool.receive(host3), True, {d: nfs1 for d in pool.disks(vm)}, {}, {}
    )
    assert pool.run(task, step=10)["status"] == "success"
    new_root = pool.x.VBD.get_VDI(_vbd(pool, vm, "0"))
    assert new_root != root and pool.x.VDI.get_uuid(new_root) != root_uuid
    assert pool.x.VDI.get_SR(new_root) == nfs1
    assert pool.x.VDI.get_name_label(new_root) == "vm01 root"
    for gone in (root, snap_disk):
        with pytest.raises(XenAPI.Failure) as failure:
            pool.x.VDI.get_record(gone)
        assert failure.value.details[0] == "HANDLE_INVALID"
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VDI.get_by_uuid(root_uuid)
    assert failure.value.details[0] == "UUID_INVALID"
    (new_snap,) = pool.x.VDI.get_snapshots(new_root)
    assert pool.x.VDI.get_snapshot_of(new_snap) == new_root
    (snapshot,) = pool.x.VM.get_snapshots(vm)
    assert new_snap in [pool.x.VBD.get_VDI(v) for v in pool.x.VM.get_VBDs(snapshot)]


def test_vdi_pool_migrate_returns_the_new_vdi(pool: Pool) -> None:
    """VDI.pool_migrate moves one disk of a running VM and answers the new VDI's ref."""
    vm, nfs2 = pool.ref("VM", "vm02"), pool.ref("SR", "nfs2")
    (disk,) = pool.disks(vm)
    record = pool.run(pool.x.Async.VDI.pool_migrate(disk, nfs2, {}), step=5)
    assert record["status"] == "success", record["error_info"]
    new = record["result"].removeprefix("<value>").removesuffix("</value>")
    assert new != disk and pool.disks(vm) == [new] and pool.x.VDI.get_SR(new) == nfs2


def test_a_snapshots_cd_drive_is_the_librarys_iso(pool: Pool) -> None:
    """vm01's snapshot was taken with debian-12.iso inserted: its CD VBD points at that
    very VDI on the ISO library, not at a copy."""
    vm = pool.ref("VM", "vm01")
    iso = pool.ref("VDI", "debian-12.iso")
    (snapshot,) = pool.x.VM.get_snapshots(vm)
    cds = [v for v in pool.x.VM.get_VBDs(snapshot) if pool.x.VBD.get_type(v) == "CD"]
    assert [pool.x.VBD.get_VDI(v) for v in cds] == [iso]
    assert pool.x.VBD.get_VDI(_vbd(pool, vm, "3")) == iso
    assert pool.x.SR.get_content_type(pool.x.VDI.get_SR(iso)) == "iso"


def test_vdi_destroy_deletes_an_iso_no_running_vm_holds(pool: Pool) -> None:
    """xapi destroys an ISO whose VBDs are not attached (and those VBDs with it); an ISO
    in a running VM's drive is VDI_IN_USE."""
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VDI.destroy(pool.ref("VDI", "debian-12.iso"))  # in vm01's running drive
    assert failure.value.details[0] == "VDI_IN_USE"
    archive = pool.ref("VM", "archive01")
    (snapshot,) = pool.x.VM.get_snapshots(archive)
    iso = pool.ref("VDI", "virtio-win.iso")
    library = pool.x.VDI.get_SR(iso)
    pool.x.VDI.destroy(iso)
    assert pool.x.VDI.get_by_name_label("virtio-win.iso") == []
    assert iso not in pool.x.SR.get_VDIs(library)
    assert [pool.x.VBD.get_type(v) for v in pool.x.VM.get_VBDs(snapshot)] == ["Disk", "Disk"]


def test_a_failed_migration_can_leave_its_operation_behind(pool: Pool) -> None:
    """The stick fault with an error: the task fails, the VM stays, and both the VM's
    migrate operation and the destination's vm_migrate stay after the task ended."""
    vm, host3 = pool.ref("VM", "vm02"), pool.ref("host", "host3")
    pool.sim.faults.stick_next_migration(vm, at=0.6, error=["VM_MIGRATE_FAILED", "x", "y", "z"])
    task = pool.x.Async.VM.pool_migrate(vm, host3, {})
    record = pool.run(task, step=0.5)
    assert record["status"] == "failure" and record["error_info"][0] == "VM_MIGRATE_FAILED"
    assert pool.x.VM.get_resident_on(vm) == pool.ref("host", "host2")
    assert pool.x.VM.get_current_operations(vm) == {task: "pool_migrate"}
    assert pool.x.host.get_current_operations(host3) == {task: "vm_migrate"}


def test_a_vm_needs_its_networks_where_it_starts(pool: Pool) -> None:
    """proxy01's dmz network has PIFs on host1 and host2 only: booting it on host3 is
    VM_REQUIRES_NETWORK, for start_on, pool_migrate and assert_can_boot_here alike."""
    vm, host3 = pool.ref("VM", "proxy01"), pool.ref("host", "host3")
    dmz = pool.ref("network", "dmz")
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.assert_can_boot_here(vm, host3)
    assert failure.value.details == ["VM_REQUIRES_NETWORK", vm, dmz]
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.pool_migrate(vm, host3, {})
    assert failure.value.details[0] == "VM_REQUIRES_NETWORK"
    pool.run(pool.x.Async.VM.hard_shutdown(vm))
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.start_on(vm, host3, False, False)
    assert failure.value.details[0] == "VM_REQUIRES_NETWORK"
    assert pool.x.VM.assert_can_boot_here(vm, pool.ref("host", "host2")) == ""


def test_a_thick_sr_holds_a_disk_at_its_full_size(pool: Pool) -> None:
    """legacy01's 20 GiB disk on host3's LVM SR takes 20 GiB there, whatever it uses."""
    (disk,) = pool.disks(pool.ref("VM", "legacy01"))
    assert pool.x.SR.get_type(pool.x.VDI.get_SR(disk)) == "lvm"
    assert int(pool.x.VDI.get_physical_utilisation(disk)) == 20 * GIB


def test_a_thin_disk_to_a_thick_sr_without_its_virtual_size_fails_in_the_copy(
    pool: Pool,
) -> None:
    """vm02's 30 GiB disk uses 12 GiB. With 20 GiB left on host3's LVM SR, xapi's pre-check
    passes and the migration task starts; creating the 30 GiB volume fails it."""
    vm, host3 = pool.ref("VM", "vm02"), pool.ref("host", "host3")
    local = pool.ref("SR", "host3-local")
    (disk,) = pool.disks(vm)
    size = int(pool.x.SR.get_physical_size(local))
    pool.sim.db.update("SR", local, physical_utilisation=str(size - 20 * GIB))
    vdi_map = {disk: local}
    assert pool.x.VM.assert_can_migrate(vm, pool.receive(host3), True, vdi_map, {}, {}) == ""
    task = pool.x.Async.VM.migrate_send(vm, pool.receive(host3), True, vdi_map, {}, {})
    record = pool.run(task, step=0.5)
    assert record["status"] == "failure" and record["error_info"] == NO_SPACE
    assert pool.disks(vm) == [disk] and pool.x.VM.get_resident_on(vm) == pool.ref("host", "host2")


@pytest.mark.parametrize("sr", ["iso-library", "Removable storage"])
def test_an_sr_that_takes_no_disks_fails_the_copy(pool: Pool, sr: str) -> None:
    """A library or removable media SR lacks vdi_create: the copy fails at once."""
    vm, host1 = pool.ref("VM", "vm01"), pool.ref("host", "host1")
    target = pool.ref("SR", sr)
    assert "vdi_create" not in pool.x.SR.get_allowed_operations(target)
    vdi_map = {d: target for d in pool.disks(vm)}
    task = pool.x.Async.VM.migrate_send(vm, pool.receive(host1), True, vdi_map, {}, {})
    record = pool.run(task)
    assert record["error_info"] == ["SR_OPERATION_NOT_SUPPORTED", target]
