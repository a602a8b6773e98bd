"""XAPI records -> our typed facts, in a number of calls that does not grow with the pool.

The small classes (pool, host, host_metrics, SR, PBD) are read in bulk; the VM is looked up
by UUID or name and its VBDs, VDIs, snapshots and guest metrics read by reference. All VM
records are read only after a miss, to suggest the names the user probably meant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import XenAPI

from bot.models import (
    Choice,
    DiskFacts,
    GuestAgent,
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
from bot.xen.ops import agent_of

NULL = "OpaqueRef:NULL"
THICK_SR_TYPES = frozenset({"lvm", "lvmoiscsi", "lvmohba", "lvmofcoe"})
NO_DISK_SR_TYPES = frozenset({"iso", "udev"})  # libraries and removable media
WHERE_TERMS = 100  # values per get_all_records_where call


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


def with_free_memory(x: Any, pool: PoolFacts, *host_refs: str) -> PoolFacts:
    """The destinations' free memory as xapi computes it (host_metrics lags behind)."""
    return with_free(pool, {ref: free_memory(x, ref) for ref in host_refs})


def free_memory(x: Any, host_ref: str) -> int:
    return int(x.host.compute_free_memory(host_ref))


def with_free(pool: PoolFacts, free: Mapping[str, int]) -> PoolFacts:
    """The pool with these hosts' free memory (bytes) as read."""
    hosts = dict(pool.hosts)
    for ref, amount in free.items():
        hosts[ref] = replace(hosts[ref], free_memory=amount)
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
    candidates = [vm_ref(x, ref) for ref in refs_named(x, "VM", text)]
    return [c for c in candidates if _is_vm(c.record)]


def vm_names(x: Any) -> list[str]:
    """Every VM's name: all records are read, so only after a miss (for "did you mean")."""
    return [r["name_label"] for r in x.VM.get_all_records().values() if _is_vm(r)]


def vms_on(x: Any, host: str) -> list[VMRef]:
    """Everything on a host: the VMs it runs (paused ones too), and the halted or suspended
    ones whose affinity is there (their next start lands there). Two filtered reads."""
    records = {
        **x.VM.get_all_records_where(f'field "resident_on" = "{host}"'),
        **x.VM.get_all_records_where(f'field "affinity" = "{host}"'),
    }
    return sorted(
        (
            vm_ref_of(ref, r)
            for ref, r in records.items()
            if _is_vm(r) and (r["resident_on"] == host or r["resident_on"] == NULL)
        ),
        key=lambda vm: vm.name.lower(),
    )


def vms_tagged(x: Any, tag: str) -> list[VMRef]:
    """The VMs with this tag. xapi's filter has no test for a set member, so every VM
    record is read: a tag costs what a miss costs."""
    return sorted(
        (
            vm_ref_of(ref, r)
            for ref, r in x.VM.get_all_records().items()
            if _is_vm(r) and tag in r["tags"]
        ),
        key=lambda vm: vm.name.lower(),
    )


def all_tags(x: Any) -> list[str]:
    """Every tag on a VM: for "did you mean" after a tag no VM has."""
    return sorted({t for r in x.VM.get_all_records().values() if _is_vm(r) for t in r["tags"]})


def vms_named_each(x: Any, texts: Sequence[str]) -> dict[str, list[VMRef]]:
    """The VMs each text names by UUID or name-label, in one filtered read for all names
    the filter language can hold (no double quote), one lookup each for the others."""
    plain = [t for t in texts if '"' not in t]
    found = {
        **records_where(x.VM, "name__label", plain),
        **records_where(x.VM, "uuid", plain),
    }
    named: dict[str, list[VMRef]] = {}
    for text in texts:
        if text in plain:
            refs = [ref for ref, r in found.items() if text in (r["uuid"], r["name_label"])]
            candidates = [vm_ref_of(ref, found[ref]) for ref in refs]
            named[text] = [c for c in candidates if _is_vm(c.record)]
        else:
            named[text] = vms_named(x, text)
    return named


def vms_by_uuid(x: Any, uuids: Sequence[str]) -> dict[str, VMRef]:
    """The VMs with these UUIDs that still exist, by UUID (one read per hundred)."""
    found = records_where(x.VM, "uuid", uuids)
    return {r["uuid"]: vm_ref_of(ref, r) for ref, r in found.items()}


def refs_named(x: Any, cls: str, text: str) -> list[str]:
    """The objects of `cls` that `text` names by UUID or name-label (two small calls)."""
    try:
        return [getattr(x, cls).get_by_uuid(text)]
    except XenAPI.Failure as failure:
        if failure.details[0] != "UUID_INVALID":
            raise
    return list(getattr(x, cls).get_by_name_label(text))


def vm_ref(x: Any, ref: str) -> VMRef:
    return vm_ref_of(ref, x.VM.get_record(ref))


def where(candidate: VMRef, pool: PoolFacts) -> str:
    """'running on host1': how a VM is told apart from others of its name."""
    host = pool.hosts.get(candidate.resident_on)
    state = candidate.record["power_state"].lower()
    return f"{state} on {host.name}" if host else state


def vm_facts(x: Any, vm: VMRef) -> VMFacts:
    """The VM, its disks, snapshots and their disks, guest tools and CPU load."""
    (facts,) = vms_facts(x, [vm])
    return facts


def vms_facts(x: Any, vms: Sequence[VMRef], *, cpu: bool = True) -> list[VMFacts]:
    """Many VMs' facts in a few bulk reads (`get_all_records_where` by reference, a call per
    hundred of them), never all of the pool's; the CPU load is a call per running VM, so
    `cpu=False` leaves it to the caller (`cpu_usage`, on sessions in parallel)."""
    records = {vm.ref: vm.record for vm in vms}
    snapshots = records_where(x.VM, "_ref", [s for r in records.values() for s in r["snapshots"]])
    vbds = records_where(x.VBD, "VM", [*records, *snapshots])
    disk_vbds = {
        ref: vbd
        for ref, vbd in vbds.items()
        if vbd["type"] != "CD" and not vbd["empty"] and vbd["VDI"] != NULL
    }
    vdis = records_where(x.VDI, "_ref", [vbd["VDI"] for vbd in disk_vbds.values()])
    missing = {s for vdi in vdis.values() for s in vdi["snapshots"]} - set(vdis)
    vdis.update(records_where(x.VDI, "_ref", missing))
    guests = records_where(
        x.VM_guest_metrics, "_ref", [r["guest_metrics"] for r in records.values()]
    )
    metrics = records_where(x.VM_metrics, "_ref", [r["metrics"] for r in records.values()])
    vifs = records_where(x.VIF, "VM", records)
    by_vm: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for ref, vbd in disk_vbds.items():
        if vbd["VDI"] in vdis:  # a disk deleted while we read is no disk
            by_vm.setdefault(vbd["VM"], []).append((ref, vbd))
    networks: dict[str, list[str]] = {}
    for vif in vifs.values():
        networks.setdefault(vif["VM"], []).append(vif["network"])
    read = _Read(vbds, vdis, by_vm)
    facts = []
    for vm in vms:
        record = vm.record
        disks = [(ref, vbd, vdis[vbd["VDI"]]) for ref, vbd in by_vm.get(vm.ref, ())]
        own = [s for s in record["snapshots"] if s in snapshots]
        facts.append(
            _vm(
                vm,
                disks=disks,
                snapshots=tuple(read.snapshot(s, snapshots[s]) for s in own),
                tools=_has_tools(
                    guests.get(record["guest_metrics"]), metrics.get(record["metrics"])
                ),
                agent=agent_of(guests.get(record["guest_metrics"])),
                cpu=cpu_usage(x, vm.ref, record["power_state"], int(record["VCPUs_max"]))
                if cpu
                else None,
                networks=tuple(dict.fromkeys(networks.get(vm.ref, ()))),
                vdis=vdis,
            )
        )
    return facts


def records_where(cls: Any, field: str, values: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The records whose `field` is one of `values` (refs: xapi's rows hold their own under
    `_ref`), a call per hundred values. xapi's filter language has no escapes: a value
    with a double quote cannot be asked for this way."""
    wanted = sorted({v for v in values if v and v != NULL})
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), WHERE_TERMS):
        terms = wanted[start : start + WHERE_TERMS]
        found.update(
            cls.get_all_records_where(" or ".join(f'field "{field}" = "{v}"' for v in terms))
        )
    return found


@dataclass(frozen=True)
class _Read:
    """Records read in bulk, for what each VM's facts need of them."""

    vbds: dict[str, dict[str, Any]]
    vdis: dict[str, dict[str, Any]]
    disk_vbds: dict[str, list[tuple[str, dict[str, Any]]]]  # VM ref -> its disk VBDs

    def snapshot(self, ref: str, record: dict[str, Any]) -> SnapshotFacts:
        """The snapshot and the VDIs that are its own: a CD VBD points at the library's ISO
        (`xapi_vm_clone.ml` does not clone CDs), and a VDI another VM uses is not ours to go."""
        vdis = [
            vbd["VDI"]
            for _, vbd in self.disk_vbds.get(ref, ())
            if vbd["type"] == "Disk" and self._only_user(vbd["VDI"], ref)
        ]
        if record["suspend_VDI"] != NULL:
            vdis.append(record["suspend_VDI"])
        return SnapshotFacts(ref, record["uuid"], record["name_label"], tuple(vdis))

    def _only_user(self, vdi: str, vm: str) -> bool:
        """Every VBD of the VDI is the snapshot's (one not read belongs to another VM)."""
        record = self.vdis.get(vdi)
        if record is None:
            return False
        return all(self.vbds.get(vbd, {}).get("VM") == vm for vbd in record["VBDs"])


def _vm(
    vm: VMRef,
    *,
    disks: list[tuple[str, dict[str, Any], dict[str, Any]]],
    snapshots: tuple[SnapshotFacts, ...],
    tools: bool,
    agent: GuestAgent,
    cpu: float | None,
    networks: tuple[str, ...],
    vdis: dict[str, dict[str, Any]],
) -> VMFacts:
    record = vm.record
    disks.sort(key=lambda d: _device_order(d[1]["userdevice"]))
    snapshot_disks = [
        _snapshot_disk(vdis[snap], snap, vbd["VDI"])
        for _, vbd, vdi in disks
        for snap in vdi["snapshots"]
        if snap in vdis
    ]
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
        has_guest_tools=tools,
        agent_addresses=agent.addresses if agent.live else None,
        cpu_usage=cpu,
        allowed_operations=frozenset(record.get("allowed_operations", ())),
        blocked_operations=dict(record.get("blocked_operations", {})),
        networks=networks,
        devices=_devices(record),
        vcpus=int(record["VCPUs_max"]),
    )


def _device_order(userdevice: str) -> tuple[int, str]:
    """Disks in the order the VM has them: '0', '1', …, '10' (not as strings sort)."""
    return (int(userdevice), "") if userdevice.isdigit() else (1 << 30, userdevice)


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


def _has_tools(guest: dict[str, Any] | None, metrics: dict[str, Any] | None) -> bool:
    """What xapi's feature check accepts for a live move or a clean shutdown
    (`check_op_for_feature`, xapi_vm_lifecycle.ml): a guest with PV drivers or that
    advertises suspend, or a PV guest, which supports both implicitly."""
    if guest is not None and _drivers(guest):
        return True
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


def cpu_usage(x: Any, ref: str, power_state: str, vcpus: int) -> float | None:
    """The running VM's CPU use (0-1), as the RRDs have it (VM_metrics.VCPUs_utilisation is
    always empty now): `cpu_usage` since xapi e89a35eb81 (December 2023), else the mean of
    the per-vCPU `cpu0`..`cpu<N>` that older pools have; None when neither answers."""
    if power_state != "Running":
        return None  # no RRD
    usage = _data_source(x, ref, "cpu_usage")
    if usage is not None:
        return usage
    per_vcpu = [_data_source(x, ref, f"cpu{n}") for n in range(vcpus)]
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
        Choice(f"{r['name_label']} ({where(vm_ref_of(ref, r), pool)})", r["uuid"], r["name_label"])
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
