"""Typed records shared by the pure parts and the I/O parts.

`bot/xen/` turns XAPI records into these facts (ints as ints, refs as strings), so the
planner, the checklist and the renderers never see a raw XAPI dict.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["live", "offline"]
ShutdownKind = Literal["clean", "hard"]
PowerState = Literal["Halted", "Paused", "Running", "Suspended"]


@dataclass(frozen=True)
class HostFacts:
    ref: str
    uuid: str
    name: str
    address: str
    enabled: bool
    live: bool
    is_master: bool
    free_memory: int  # host.compute_free_memory, bytes
    current_operations: dict[str, str] = field(default_factory=dict)  # task ref -> op


@dataclass(frozen=True)
class SRFacts:
    ref: str
    uuid: str
    name: str
    type: str
    shared: bool
    physical_size: int
    physical_utilisation: int
    hosts: frozenset[str]  # refs of hosts with a currently attached PBD
    # False for ISO libraries, removable media and SRs whose allowed_operations lack
    # vdi_create: a VM's disks can never go there.
    takes_disks: bool = True
    thick: bool = False  # LVM-based: a disk takes its full virtual size there
    label: str = ""  # how people tell it apart where names repeat: "Local storage on host3"

    @property
    def free(self) -> int:
        return max(0, self.physical_size - self.physical_utilisation)

    @property
    def shown(self) -> str:
        return self.label or self.name


def sr_label(sr: SRFacts, hosts: Mapping[str, str]) -> str:
    """'nfs1', or 'Local storage on host3' for an SR one host has (real pools name every
    host's local SR 'Local storage')."""
    if sr.shared or len(sr.hosts) != 1:
        return sr.name
    (host,) = sr.hosts
    return f"{sr.name} on {hosts.get(host, host)}"


@dataclass(frozen=True)
class SnapshotDisk:
    """A disk of one of the VM's snapshots: it moves with its parent disk."""

    vdi_ref: str
    snapshot_of: str  # the parent disk's VDI ref
    sr_ref: str
    virtual_size: int
    physical_utilisation: int


@dataclass(frozen=True)
class DiskFacts:
    """One non-CD, non-empty VBD of the VM and its VDI."""

    vbd_ref: str
    vdi_ref: str
    vdi_uuid: str
    name: str
    userdevice: str  # "0", "1", ... as XenCenter and `xe vbd-list` show it
    device: str  # "xvda", "hda", ... ("" while never attached)
    sr_ref: str
    virtual_size: int
    physical_utilisation: int
    cbt_enabled: bool


@dataclass(frozen=True)
class SnapshotFacts:
    ref: str
    uuid: str
    name: str
    # What deleting the snapshot destroys after VM.destroy: the VDIs of its Disk VBDs that
    # nothing else uses, and a checkpoint's suspend image; never a CD drive's ISO.
    vdi_refs: tuple[str, ...]


@dataclass(frozen=True)
class VMFacts:
    ref: str
    uuid: str
    name: str
    power_state: PowerState
    resident_on: str  # host ref or OpaqueRef:NULL
    affinity: str
    memory_static_max: int
    memory_overhead: int
    current_operations: dict[str, str]
    tags: tuple[str, ...]
    other_config: dict[str, str]
    disks: tuple[DiskFacts, ...]
    snapshots: tuple[SnapshotFacts, ...]
    snapshot_disks: tuple[SnapshotDisk, ...]
    has_guest_tools: bool  # what xapi's feature check accepts (drivers, suspend, PV guest)
    agent_addresses: tuple[str, ...] | None  # the live guest agent's IPs (None: not live)
    cpu_usage: float | None  # "cpu_usage", or the mean of cpu0..cpuN; None when unknown
    # What xapi offers now (None: not read) and what someone blocked (op -> reason):
    # its pre-check does not look at them, the operation itself does.
    allowed_operations: frozenset[str] | None = None
    blocked_operations: dict[str, str] = field(default_factory=dict)
    networks: tuple[str, ...] = ()  # refs of the networks its VIFs are on
    devices: tuple[str, ...] = ()  # passed-through hardware: "PCI device", "vGPU", "USB device"
    vcpus: int = 0  # VCPUs_max: how many cpu<N> data sources an older pool has for it

    @property
    def memory_needed(self) -> int:
        """The bot's conservative rule: static max plus overhead must fit on the host."""
        return self.memory_static_max + self.memory_overhead


@dataclass(frozen=True)
class Intent:
    """What a request stores of its plan: uuids (refs do not outlive a session, a VDI does
    not outlive a storage copy: disks are keyed by their place in the VM, the VBD
    userdevice) and the choices. Stored as JSON (`as_json` / `from_json`)."""

    vm_uuid: str
    dest_host_uuid: str
    source_host_uuid: str  # "" for a halted VM with no affinity
    disk_srs: dict[str, str]  # userdevice -> destination SR uuid
    mode: Mode
    shutdown: ShutdownKind
    was_running: bool
    copy_bytes: int = 0
    source_srs: dict[str, str] | None = None  # userdevice -> SR uuid then (None: not kept)

    @property
    def live(self) -> bool:
        return self.mode == "live"

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Intent:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]


@dataclass(frozen=True)
class VMState:
    """Where a VM is now, by identity that survives a move (host uuid) and its disks' SRs by
    their place in the VM (VBD userdevice -> SR uuid): what "done" means for a step."""

    power_state: PowerState
    host_uuid: str  # "" when it runs nowhere
    operations: dict[str, str]  # current_operations: task ref -> operation
    disk_srs: dict[str, str]


@dataclass(frozen=True)
class BootOption:
    """A host, and why it cannot boot the VM as things are (None: it can)."""

    host_ref: str
    host_uuid: str
    host_name: str
    refusal: tuple[str, ...] | None


@dataclass(frozen=True)
class GuestAgent:
    """What the guest's agent last reported: whether it is live, the VM's IP addresses,
    and when (epoch seconds; None when it never did)."""

    live: bool
    addresses: tuple[str, ...]
    reported_at: float | None


@dataclass(frozen=True)
class Leftover:
    """A migrate operation on the VM (or `vm_migrate` on a host) and what became of its task:
    "pending" (still running: not a leftover yet), "ended" (finished, its record still
    there), "gone" (destroyed or lost)."""

    task: str
    op: str
    holder: str  # "the VM" or the host's name
    task_state: Literal["pending", "ended", "gone"]


@dataclass(frozen=True)
class HostLoad:
    """A host and the tasks pending on it: what restarting its toolstack would cancel."""

    ref: str
    uuid: str
    name: str
    is_master: bool
    pending: tuple[str, ...]  # names of the tasks resident on it


@dataclass(frozen=True)
class NetworkFacts:
    ref: str
    name: str
    hosts: frozenset[str]  # refs of hosts with a PIF on it; empty: internal, everywhere


@dataclass(frozen=True)
class PoolFacts:
    """The small classes of one pool, read in bulk."""

    name: str
    master_ref: str
    ha_enabled: bool
    hosts: dict[str, HostFacts]  # by ref
    srs: dict[str, SRFacts]  # by ref
    networks: dict[str, NetworkFacts] = field(default_factory=dict)  # by ref


class Severity(enum.StrEnum):
    PASS = "pass"
    WARNING = "warning"
    BLOCKER = "blocker"


class Fix(enum.StrEnum):
    """A checklist item's one-click remedy (a button in Slack)."""

    SWITCH_TO_OFFLINE = "switch_offline"
    DELETE_SNAPSHOTS = "delete_snapshots"
    EXCLUDE_FROM_BACKUP = "exclude_backup"
    HARD_SHUTDOWN = "hard_shutdown"


@dataclass(frozen=True)
class Check:
    key: str  # stable identifier, e.g. "memory", "snapshots"
    severity: Severity
    title: str  # short label, e.g. "Snapshots"
    reason: str  # one line: what was found
    fix: str = ""  # one line: how to fix it ("" for a pass)
    action: Fix | None = None


@dataclass(frozen=True)
class DiskMove:
    disk: DiskFacts
    dest_sr_ref: str

    @property
    def moves(self) -> bool:
        return self.dest_sr_ref != self.disk.sr_ref


@dataclass(frozen=True)
class Plan:
    vm: VMFacts
    source_host_ref: str  # resident_on, or the affinity/"none" for a halted VM
    dest_host_ref: str
    mode: Mode
    shutdown: ShutdownKind
    disks: tuple[DiskMove, ...]
    call: Literal["pool_migrate", "migrate_send", "none"]
    estimate_seconds: float
    downtime_seconds: float
    # The copy rate the estimates assume, so a re-plan (Switch to offline) can redo them;
    # 0 means unknown (a Plan built by hand).
    throughput_mbps: float = 0.0

    @property
    def moves_storage(self) -> bool:
        return any(d.moves for d in self.disks)

    @property
    def vdi_map(self) -> dict[str, str]:
        """Every disk of the VM, as migrate_send requires (snapshot disks follow their parent)."""
        return {d.disk.vdi_ref: d.dest_sr_ref for d in self.disks}


@dataclass(frozen=True)
class Choice:
    """One entry of a searchable list in the modal: what it shows, and its UUID."""

    text: str
    uuid: str
    name: str = ""  # the name alone, where `text` says more ("vm01 (running on host1)")


@dataclass(frozen=True)
class Inventory:
    """Every VM, host and SR by name, for the modal's searchable selects."""

    vms: tuple[Choice, ...]
    hosts: tuple[Choice, ...]
    srs: tuple[Choice, ...]
