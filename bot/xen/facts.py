"""XAPI records -> our typed facts, in a number of calls that does not grow with the pool.

The small classes (pool, host, host_metrics, SR, PBD) are read in bulk; the VM is looked up
by UUID or name and its VBDs, VDIs, snapshots and guest metrics read by reference. All VM
records are read only after a miss, to suggest the names the user probably meant.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import XenAPI

from bot.models import (
    Choice,
    DiskFacts,
    HostFacts,
    Inventory,
    NetworkFacts,
    PoolFacts,
    SnapshotDisk,
    SnapshotFacts,
    SRFacts,
    VMFacts,
    sr_label,
)

NULL = "OpaqueRef:NULL"
THICK_SR_TYPES = frozenset({"lvm", "lvmoiscsi", "lvmohba", "lvmofcoe"})
NO_DISK_SR_TYPES = frozenset({"iso", "udev"})  # libraries and removable media


@dataclass(frozen=True)
class VMRef:
    """A VM the user may have meant: enough to resolve a name and say which one."""

    ref: str
    uuid: str
    name: str
    resident_on: str
    record: dict[str, Any]


def _is_vm(record: dict[str, Any]) -> bool:
    return not (record["is_a_template"] or record["is_a_snapshot"] or record["is_control_domain"])


def read_pool(x: Any) -> PoolFacts:
    """Five bulk reads, whatever the pool's size."""
    (pool,) = x.pool.get_all_records().values()
    hosts = x.host.get_all_records()
    metrics = x.host_metrics.get_all_records()
    pbds = x.PBD.get_all_records()
    srs = x.SR.get_all_records()
    attached: dict[str, set[str]] = {}
    for pbd in pbds.values():
        if pbd["currently_attached"]:
            attached.setdefault(pbd["SR"], set()).add(pbd["host"])
    host_facts = {
        ref: HostFacts(
            ref=ref,
            uuid=h["uuid"],
            name=h["name_label"],
            address=h["address"],
            enabled=h["enabled"],
            live=metrics.get(h["metrics"], {}).get("live", False),
            is_master=ref == pool["master"],
            free_memory=int(metrics.get(h["metrics"], {}).get("memory_free", "0")),
            current_operations=dict(h["current_operations"]),
        )
        for ref, h in hosts.items()
    }
    sr_facts = {
        ref: SRFacts(
            ref=ref,
            uuid=s["uuid"],
            name=s["name_label"],
            type=s["type"],
            shared=s["shared"],
            physical_size=int(s["physical_size"]),
            physical_utilisation=int(s["physical_utilisation"]),
            hosts=frozenset(attached.get(ref, ())),
            takes_disks=_takes_disks(s),
            thick=s["type"] in THICK_SR_TYPES,
        )
        for ref, s in srs.items()
    }
    names = {ref: h.name for ref, h in host_facts.items()}
    repeated = Counter(s.name for s in sr_facts.values())
    sr_facts = {
        ref: replace(s, label=sr_label(s, names)) if repeated[s.name] > 1 else s
        for ref, s in sr_facts.items()
    }
    return PoolFacts(
        name=pool["name_label"],
        master_ref=pool["master"],
        ha_enabled=pool["ha_enabled"],
        hosts=host_facts,
        srs=sr_facts,
        networks=_networks(x),
    )


def _networks(x: Any) -> dict[str, NetworkFacts]:
    """Each network and the hosts with a PIF on it (two bulk reads)."""
    pif_hosts = {ref: pif["host"] for ref, pif in x.PIF.get_all_records().items()}
    return {
        ref: NetworkFacts(
            ref, n["name_label"], frozenset(pif_hosts[p] for p in n["PIFs"] if p in pif_hosts)
        )
        for ref, n in x.network.get_all_records().items()
    }


def with_free_memory(x: Any, pool: PoolFacts, host_ref: str) -> PoolFacts:
    """The destination's free memory as xapi computes it (host_metrics lags behind)."""
    free = int(x.host.compute_free_memory(host_ref))
    hosts = {**pool.hosts, host_ref: replace(pool.hosts[host_ref], free_memory=free)}
    return replace(pool, hosts=hosts)


def lookup_uuid(x: Any, cls: str, uuid: str) -> str | None:
    """The ref of the object with this UUID; None when it no longer exists."""
    try:
        return getattr(x, cls).get_by_uuid(uuid)
    except XenAPI.Failure as failure:
        if failure.details[0] == "UUID_INVALID":
            return None
        raise


def vms_named(x: Any, text: str) -> list[VMRef]:
    """The VMs `text` names by UUID or name-label (templates, snapshots and dom0 left out)."""
    candidates = [vm_ref(x, ref) for ref in _lookup(x, text)]
    return [c for c in candidates if _is_vm(c.record)]


def vm_names(x: Any) -> list[str]:
    """Every VM's name: all records are read, so only after a miss (for "did you mean")."""
    return [r["name_label"] for r in x.VM.get_all_records().values() if _is_vm(r)]


def _lookup(x: Any, text: str) -> list[str]:
    try:
        return [x.VM.get_by_uuid(text)]
    except XenAPI.Failure as failure:
        if failure.details[0] != "UUID_INVALID":
            raise
    return list(x.VM.get_by_name_label(text))


def vm_ref(x: Any, ref: str) -> VMRef:
    return vm_ref_of(ref, x.VM.get_record(ref))


def where(candidate: VMRef, pool: PoolFacts) -> str:
    """'running on host1': how a VM is told apart from others of its name."""
    host = pool.hosts.get(candidate.resident_on)
    state = candidate.record["power_state"].lower()
    return f"{state} on {host.name}" if host else state


def vm_facts(x: Any, vm: VMRef) -> VMFacts:
    """The VM, its disks, snapshots and their disks, guest tools and CPU load."""
    record = vm.record
    disks = []
    for vbd_ref in record["VBDs"]:
        vbd = x.VBD.get_record(vbd_ref)
        if vbd["type"] == "CD" or vbd["empty"] or vbd["VDI"] == NULL:
            continue
        vdi = x.VDI.get_record(vbd["VDI"])
        disks.append((vbd_ref, vbd, vdi))
    snapshot_disks = [
        _snapshot_disk(x.VDI.get_record(snap), snap, vbd["VDI"])
        for _, vbd, vdi in disks
        for snap in vdi["snapshots"]
    ]
    snapshots = tuple(_snapshot(x, ref) for ref in record["snapshots"])
    return VMFacts(
        ref=vm.ref,
        uuid=record["uuid"],
        name=record["name_label"],
        power_state=record["power_state"],
        resident_on=record["resident_on"],
        affinity=record["affinity"],
        memory_static_max=int(record["memory_static_max"]),
        memory_overhead=int(record["memory_overhead"]),
        current_operations=dict(record["current_operations"]),
        tags=tuple(record["tags"]),
        other_config=dict(record["other_config"]),
        disks=tuple(_disk(ref, vbd, vdi) for ref, vbd, vdi in disks),
        snapshots=snapshots,
        snapshot_disks=tuple(snapshot_disks),
        has_guest_tools=_has_tools(x, record),
        cpu_usage=_cpu(x, vm),
        allowed_operations=frozenset(record.get("allowed_operations", ())),
        blocked_operations=dict(record.get("blocked_operations", {})),
        networks=tuple(dict.fromkeys(x.VIF.get_network(vif) for vif in record["VIFs"])),
        devices=_devices(record),
    )


def _devices(record: dict[str, Any]) -> tuple[str, ...]:
    """Hardware passed through to the VM, which only some hosts have."""
    kinds = (("attached_PCIs", "PCI device"), ("VGPUs", "vGPU"), ("VUSBs", "USB device"))
    return tuple(name for field, name in kinds if record.get(field))


def _disk(vbd_ref: str, vbd: dict[str, Any], vdi: dict[str, Any]) -> DiskFacts:
    return DiskFacts(
        vbd_ref=vbd_ref,
        vdi_ref=vbd["VDI"],
        vdi_uuid=vdi["uuid"],
        name=vdi["name_label"],
        userdevice=vbd["userdevice"],
        device=vbd["device"],
        sr_ref=vdi["SR"],
        virtual_size=int(vdi["virtual_size"]),
        physical_utilisation=int(vdi["physical_utilisation"]),
        cbt_enabled=vdi.get("cbt_enabled", False),  # since XenServer 7.3: none before
    )


def _snapshot_disk(vdi: dict[str, Any], ref: str, parent: str) -> SnapshotDisk:
    return SnapshotDisk(
        vdi_ref=ref,
        snapshot_of=parent,
        sr_ref=vdi["SR"],
        virtual_size=int(vdi["virtual_size"]),
        physical_utilisation=int(vdi["physical_utilisation"]),
    )


def _takes_disks(sr: dict[str, Any]) -> bool:
    """What XenCenter asks before it offers an SR for a disk (`SR.SupportsVdiCreate`)."""
    return (
        sr["type"] not in NO_DISK_SR_TYPES
        and sr["content_type"] != "iso"
        and "vdi_create" in sr["allowed_operations"]
    )


def _snapshot(x: Any, ref: str) -> SnapshotFacts:
    """The snapshot and the VDIs that are its own: a CD VBD points at the library's ISO
    (`xapi_vm_clone.ml` does not clone CDs), and a VDI another VM uses is not ours to go."""
    record = x.VM.get_record(ref)
    vdis = []
    for vbd_ref in record["VBDs"]:
        vbd = x.VBD.get_record(vbd_ref)
        if vbd["type"] == "Disk" and vbd["VDI"] != NULL and _only_user(x, vbd["VDI"], ref):
            vdis.append(vbd["VDI"])
    if record["suspend_VDI"] != NULL:
        vdis.append(record["suspend_VDI"])
    return SnapshotFacts(ref, record["uuid"], record["name_label"], tuple(vdis))


def _only_user(x: Any, vdi: str, vm: str) -> bool:
    return all(x.VBD.get_VM(vbd) == vm for vbd in x.VDI.get_VBDs(vdi))


def _has_tools(x: Any, record: dict[str, Any]) -> bool:
    """What xapi's feature check accepts for a live move or a clean shutdown
    (`check_op_for_feature`, xapi_vm_lifecycle.ml): a guest with PV drivers or that
    advertises suspend, or a PV guest, which supports both implicitly."""
    guest = _record(x.VM_guest_metrics, record["guest_metrics"])
    if guest is not None and _drivers(guest):
        return True
    metrics = _record(x.VM_metrics, record["metrics"])
    # VM_metrics.hvm exists since XenServer 7.1; without it the guest is not known to be PV.
    return metrics is not None and not metrics.get("hvm", True)


def _drivers(guest: dict[str, Any]) -> bool:
    """PV_drivers_detected (since XenServer 7.0), else what xapi reads for older tools: a
    driver version with a numeric major and minor (xapi_pv_driver_version.ml), or the
    guest's `feature-suspend` flag."""
    version = guest["PV_drivers_version"]
    return (
        bool(guest.get("PV_drivers_detected", False))
        or (_numeric(version.get("major")) and _numeric(version.get("minor")))
        or guest["other"].get("feature-suspend") == "1"
    )


def _numeric(text: str | None) -> bool:
    try:
        int(text or "")
    except ValueError:
        return False
    return True


def _record(cls: Any, ref: str) -> dict[str, Any] | None:
    """The object's record; None for a null or vanished ref."""
    if ref == NULL:
        return None
    try:
        return cls.get_record(ref)
    except XenAPI.Failure:
        return None


def _cpu(x: Any, vm: VMRef) -> float | None:
    """The running VM's CPU use (0-1), as the RRDs have it (VM_metrics.VCPUs_utilisation is
    always empty now): `cpu_usage` since xapi e89a35eb81 (December 2023), else the mean of
    the per-vCPU `cpu0`..`cpu<N>` that older pools have; None when neither answers."""
    if vm.record["power_state"] != "Running":
        return None  # no RRD
    usage = _data_source(x, vm.ref, "cpu_usage")
    if usage is not None:
        return usage
    vcpus = int(vm.record["VCPUs_max"])
    per_vcpu = [_data_source(x, vm.ref, f"cpu{n}") for n in range(vcpus)]
    known = [value for value in per_vcpu if value is not None]
    return sum(known) / len(known) if known else None


def _data_source(x: Any, ref: str, name: str) -> float | None:
    """The data source's latest value; None when the VM has no such source (Datasource_missing)."""
    try:
        return float(x.VM.query_data_source(ref, name))
    except XenAPI.Failure:
        return None


def inventory(x: Any) -> Inventory:
    """Every VM, host and SR by name, for the modal's searches (read all VMs: cache it)."""
    pool = read_pool(x)
    names = {h.ref: h.name for h in pool.hosts.values()}
    vms = [
        Choice(f"{r['name_label']} ({where(vm_ref_of(ref, r), pool)})", r["uuid"])
        for ref, r in x.VM.get_all_records().items()
        if _is_vm(r)
    ]
    return Inventory(
        vms=tuple(sorted(vms, key=lambda c: c.text.lower())),
        hosts=tuple(Choice(h.name, h.uuid) for h in sorted(pool.hosts.values(), key=_name)),
        srs=tuple(
            Choice(sr_label(s, names), s.uuid)
            for s in sorted(pool.srs.values(), key=lambda s: sr_label(s, names).lower())
            if s.takes_disks
        ),
    )


def vm_ref_of(ref: str, record: dict[str, Any]) -> VMRef:
    return VMRef(ref, record["uuid"], record["name_label"], record["resident_on"], record)


def _name(obj: Any) -> str:
    return obj.name.lower()
