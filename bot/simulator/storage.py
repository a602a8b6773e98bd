"""Disks on SRs as xapi and its storage managers keep them: room, copies, destruction.

- Thick SRs (`lvm`, `lvmoiscsi`, `lvmohba`) hold a disk at its full `virtual_size`;
  file-based ones (`nfs`, `ext`, `file`) hold what it uses (`physical_utilisation`).
- Storage motion copies each moved disk (snapshot disks too, never a CD) into a *new* VDI
  on the destination SR, with a new ref and uuid, repoints the VBDs (the VM's and its
  snapshots') and the suspend image at it, and destroys the source VDI —
  `ocaml/xapi/xapi_vm_migrate.ml` (`vdi_filter`, `vdi_copy_fun`, `post_mirror`,
  `intra_pool_vdi_remap`). Disks are copied smallest first (`doc/.../sxm.md`); a disk
  that does not fit fails the copy with `SR_BACKEND_FAILURE_44` when its turn comes (a
  thick SR at once, creating it; a thin one when it fills up).
- `VDI.destroy` refuses only while a VBD is attached (`VDI_IN_USE`); otherwise the VDI and
  every VBD that points at it go, an ISO of a library included — `ocaml/xapi/xapi_vdi.ml`.
"""

from __future__ import annotations

from typing import Any

from bot.simulator.pool import Simulator
from bot.simulator.wire import NULL_REF, XapiError, wire_int, wire_time

THICK = frozenset({"lvm", "lvmoiscsi", "lvmohba"})
NO_DISKS = frozenset({"iso", "udev"})  # libraries and removable media hold no VM disks
WRITABLE_SR_OPS = ["vdi_create", "vdi_destroy", "vdi_snapshot", "vdi_clone", "vdi_mirror"]
NO_SPACE = ("SR_BACKEND_FAILURE_44", "", "There is insufficient space", "")


def thick(sim: Simulator, sr: str) -> bool:
    return sim.db.get("SR", sr)["type"] in THICK


def takes_new_disks(sim: Simulator, sr: str) -> bool:
    """What xapi shows in `SR.allowed_operations`: can a VDI be created there?"""
    record = sim.db.get("SR", sr)
    return record["type"] not in NO_DISKS and "vdi_create" in record["allowed_operations"]


def footprint(sim: Simulator, sr: str, vdi: dict[str, Any]) -> int:
    """Bytes the disk takes on `sr`: all of it on a thick SR, what it uses on a thin one."""
    return int(vdi["virtual_size"]) if thick(sim, sr) else int(vdi["physical_utilisation"])


def free(sim: Simulator, sr: str) -> int:
    record = sim.db.get("SR", sr)
    return int(record["physical_size"]) - int(record["physical_utilisation"])


def add_vdi(sim: Simulator, sr: str, **fields: Any) -> str:
    """A new VDI on `sr`, counted in the SR's utilisation and allocation."""
    if thick(sim, sr):
        fields["physical_utilisation"] = fields["virtual_size"]
    ref = sim.db.create("VDI", SR=sr, **fields)
    _account(sim, sr, ref, +1)
    return ref


def remove_vdi(sim: Simulator, vdi: str) -> None:
    """The VDI record goes, its bytes leave its SR, its parent forgets it."""
    record = sim.db.get("VDI", vdi)
    _account(sim, record["SR"], vdi, -1)
    parent = record["snapshot_of"]
    if sim.db.exists("VDI", parent):
        snaps = [s for s in sim.db.get("VDI", parent)["snapshots"] if s != vdi]
        sim.db.update("VDI", parent, snapshots=snaps)
    sim.db.delete("VDI", vdi)


def _account(sim: Simulator, sr: str, vdi: str, sign: int) -> None:
    record, srec = sim.db.get("VDI", vdi), sim.db.get("SR", sr)
    used, size = int(record["physical_utilisation"]), int(record["virtual_size"])
    vdis = [v for v in srec["VDIs"] if v != vdi] + ([vdi] if sign > 0 else [])
    sim.db.update(
        "SR",
        sr,
        VDIs=vdis,
        physical_utilisation=wire_int(max(0, int(srec["physical_utilisation"]) + sign * used)),
        virtual_allocation=wire_int(max(0, int(srec["virtual_allocation"]) + sign * size)),
    )


def add_vbd(
    sim: Simulator, vm: str, vdi: str, userdevice: int, kind: str = "Disk", attached: bool = True
) -> str:
    """A drive of the VM (attached while the VM runs, unless told not to)."""
    running = attached and sim.db.get("VM", vm)["power_state"] == "Running"
    device = f"xvd{'abcdefghijklmnop'[userdevice]}" if kind == "Disk" else "xvdd"
    ref = sim.db.create(
        "VBD",
        VM=vm,
        VDI=vdi,
        type=kind,
        userdevice=str(userdevice),
        device=device,
        bootable=userdevice == 0,
        currently_attached=running,
        empty=vdi == NULL_REF,
        mode="RW" if kind == "Disk" else "RO",
    )
    sim.db.update("VM", vm, VBDs=[*sim.db.get("VM", vm)["VBDs"], ref])
    if vdi != NULL_REF:
        sim.db.update("VDI", vdi, VBDs=[*sim.db.get("VDI", vdi)["VBDs"], ref])
    return ref


def snapshot(
    sim: Simulator, vm: str, name: str, taken: float, cd: str | None = None, used: float = 0.1
) -> str:
    """A snapshot of `vm`: its disks are snapshotted (new VDIs on the same SRs, `used` of
    their size written since), its CD drive is not: it points at the very ISO the drive
    holds (`xapi_vm_clone.ml`, `safe_clone_disks`: "don't clone CDs"), or `cd` if given."""
    record = sim.db.get("VM", vm)
    snap = sim.db.create(
        "VM",
        name_label=name,
        is_a_snapshot=True,
        snapshot_of=vm,
        power_state="Halted",
        snapshot_time=wire_time(taken),
        memory_static_max=record["memory_static_max"],
        memory_overhead=record["memory_overhead"],
    )
    for vbd in list(record["VBDs"]):
        drive = sim.db.get("VBD", vbd)
        position = int(drive["userdevice"])
        if drive["type"] == "CD":
            add_vbd(sim, snap, cd or drive["VDI"], position, kind="CD", attached=False)
            continue
        source = sim.db.get("VDI", drive["VDI"])
        size = int(source["virtual_size"])
        copy = add_vdi(
            sim,
            source["SR"],
            name_label=source["name_label"],
            virtual_size=wire_int(size),
            physical_utilisation=wire_int(int(size * used)),
            is_a_snapshot=True,
            snapshot_of=drive["VDI"],
            snapshot_time=wire_time(taken),
        )
        sim.db.update("VDI", drive["VDI"], snapshots=[*source["snapshots"], copy])
        add_vbd(sim, snap, copy, position)
    sim.db.update("VM", vm, snapshots=[*sim.db.get("VM", vm)["snapshots"], snap])
    return snap


def destroy_vdi(sim: Simulator, vdi: str) -> None:
    """`VDI.destroy`: refused while attached; otherwise the VDI and its VBDs are gone."""
    record = sim.db.get("VDI", vdi)
    if sim.db.get("SR", record["SR"])["type"] == "udev":
        raise XapiError("VDI_IS_A_PHYSICAL_DEVICE", vdi)
    vbds = [sim.db.get("VBD", v) for v in record["VBDs"] if sim.db.exists("VBD", v)]
    if any(v["currently_attached"] for v in vbds):
        raise XapiError("VDI_IN_USE", vdi, "destroy")
    for vbd in list(record["VBDs"]):
        if sim.db.exists("VBD", vbd):
            owner = sim.db.get("VBD", vbd)["VM"]
            if sim.db.exists("VM", owner):
                left = [v for v in sim.db.get("VM", owner)["VBDs"] if v != vbd]
                sim.db.update("VM", owner, VBDs=left)
            sim.db.delete("VBD", vbd)
    remove_vdi(sim, vdi)


def copy_order(sim: Simulator, moving: dict[str, str]) -> list[str]:
    """xapi copies the smallest disks first."""
    return sorted(moving, key=lambda v: int(sim.db.get("VDI", v)["virtual_size"]))


def out_of_space(sim: Simulator, moving: dict[str, str]) -> float | None:
    """The fraction of the copy (by bytes) at which a destination SR runs out, if one does."""
    order = copy_order(sim, moving)
    total = sum(int(sim.db.get("VDI", v)["virtual_size"]) for v in order) or 1
    room: dict[str, int] = {}
    copied = 0
    for vdi in order:
        record, sr = sim.db.get("VDI", vdi), moving[vdi]
        room.setdefault(sr, free(sim, sr))
        need, size = footprint(sim, sr, record), int(record["virtual_size"])
        if need > room[sr]:
            # A thick SR refuses the volume when it is created; a thin one fills up mid-copy.
            part = 0 if thick(sim, sr) else size * max(0, room[sr]) / max(1, need)
            return (copied + part) / total
        room[sr] -= need
        copied += size
    return None


def unwritable(sim: Simulator, moving: dict[str, str]) -> str | None:
    """A destination SR that cannot take a new VDI (a library, removable media, read-only)."""
    for vdi in copy_order(sim, moving):
        if not takes_new_disks(sim, moving[vdi]):
            return moving[vdi]
    return None


def move_disks(sim: Simulator, moving: dict[str, str]) -> dict[str, str]:
    """Copy each disk to its SR as a new VDI, repoint its users, destroy the source.

    Returns old ref -> new ref. Snapshot disks keep their chain to their (new) parent.
    """
    renamed: dict[str, str] = {}
    for vdi in sorted(moving, key=lambda v: sim.db.get("VDI", v)["is_a_snapshot"]):
        renamed[vdi] = _copy(sim, vdi, moving[vdi], renamed)
    for vbd, record in list(sim.db.tables["VBD"].items()):
        if record["VDI"] in renamed:
            new = renamed[record["VDI"]]
            sim.db.update("VBD", vbd, VDI=new)
            sim.db.update("VDI", new, VBDs=[*sim.db.get("VDI", new)["VBDs"], vbd])
    for vm, record in list(sim.db.tables["VM"].items()):
        if record["suspend_VDI"] in renamed:
            sim.db.update("VM", vm, suspend_VDI=renamed[record["suspend_VDI"]])
    for old in renamed:
        sim.db.update("VDI", old, VBDs=[], snapshots=[])
        remove_vdi(sim, old)
    return renamed


_COPIED = (
    "name_label",
    "name_description",
    "virtual_size",
    "physical_utilisation",
    "type",
    "sharable",
    "read_only",
    "is_a_snapshot",
    "snapshot_time",
    "on_boot",
    "other_config",
    "tags",
)


def _copy(sim: Simulator, vdi: str, sr: str, renamed: dict[str, str]) -> str:
    record = sim.db.get("VDI", vdi)
    fields = {key: record[key] for key in _COPIED}
    fields["physical_utilisation"] = wire_int(footprint(sim, sr, record))
    parent = renamed.get(record["snapshot_of"], record["snapshot_of"])
    new = add_vdi(sim, sr, snapshot_of=parent, **fields)
    if sim.db.exists("VDI", parent) and parent != NULL_REF:
        siblings = [s for s in sim.db.get("VDI", parent)["snapshots"] if s != vdi]
        sim.db.update("VDI", parent, snapshots=[*siblings, new])
    return new
