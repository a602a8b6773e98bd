"""A request -> a Plan: where each disk goes, which XAPI call moves the VM, how long it takes.

Pure, so the rules that protect data are tested directly: a disk the destination host
cannot reach is an error that lists the SRs it could go to, never a silent default SR.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Literal

from bot.errors import UserError
from bot.models import (
    DiskFacts,
    DiskMove,
    Mode,
    Plan,
    PoolFacts,
    ShutdownKind,
    SnapshotDisk,
    SRFacts,
    VMFacts,
)
from bot.planning.resolve import disk_label
from bot.planning.units import format_size

NULL_REF = "OpaqueRef:NULL"

# Fixed step costs the estimates add to the copy time (rough, on the safe side).
CLEAN_SHUTDOWN_SECONDS = 30.0  # a guest with tools powers off in well under a minute
HARD_SHUTDOWN_SECONDS = 5.0  # xapi destroys the domain at once
BOOT_SECONDS = 45.0  # start_on until the guest is back up
# A live migration pauses the guest only for its last memory round: XenMotion's
# stop-and-copy usually takes well under a second, a loaded guest a few.
LIVE_DOWNTIME_SECONDS = 3.0

Call = Literal["pool_migrate", "migrate_send", "none"]


class PlanError(UserError):
    """The request cannot become a plan; the message tells the user what to choose instead.

    `choices` maps each stranded disk's VDI ref to the SR refs it could go to, best first,
    so the modal can offer them.
    """

    def __init__(self, message: str, choices: Mapping[str, tuple[str, ...]] | None = None):
        super().__init__(message)
        self.choices = dict(choices or {})


def make_plan(
    vm: VMFacts,
    pool: PoolFacts,
    dest_host_ref: str,
    sr_ref: str | None,
    disk_srs: Mapping[str, str],
    mode: Mode | None,
    shutdown: ShutdownKind,
    throughput_mbps: float,
) -> Plan:
    """Plan moving `vm` to `dest_host_ref`; `disk_srs` maps VDI refs to SR refs (`disk:<n>=`).

    A disk goes to its own `disk:` SR, else to `sr_ref`, else stays where it is if the
    destination host reaches that SR; otherwise PlanError lists the SRs with room.
    """
    _check_refs(vm, pool, dest_host_ref, sr_ref, disk_srs, throughput_mbps)
    moves = _map_disks(vm, pool, dest_host_ref, sr_ref, disk_srs)
    source = vm.resident_on if vm.resident_on != NULL_REF else vm.affinity
    if source == dest_host_ref and not any(m.moves for m in moves):
        raise PlanError(
            f"{vm.name} is already on {pool.hosts[dest_host_ref].name} and its disks stay "
            "where they are; nothing to move"
        )
    chosen: Mode = mode or ("live" if vm.power_state == "Running" else "offline")
    return _build(vm, source, dest_host_ref, chosen, shutdown, moves, throughput_mbps)


def with_mode(plan: Plan, mode: Mode, shutdown: ShutdownKind | None = None) -> Plan:
    """The same moves in another mode (Switch to offline), with call and estimates redone."""
    if plan.throughput_mbps <= 0:
        raise PlanError("this plan has no copy rate to estimate another mode with")
    return _build(
        plan.vm,
        plan.source_host_ref,
        plan.dest_host_ref,
        mode,
        shutdown or plan.shutdown,
        plan.disks,
        plan.throughput_mbps,
    )


def snapshot_disks_of(vm: VMFacts, vdi_ref: str) -> list[SnapshotDisk]:
    """Snapshot disks that follow the disk `vdi_ref` wherever it goes (xapi moves them along)."""
    return [s for s in vm.snapshot_disks if s.snapshot_of == vdi_ref]


def space_needed(vm: VMFacts, disk: DiskFacts, sr: SRFacts | None = None) -> int:
    """Bytes a disk and its snapshot disks will occupy on `sr`: what they use now, or their
    full size on a thick (LVM) SR, where every disk is allocated whole."""
    if sr is not None and sr.thick:
        return full_size(vm, disk)
    return disk.physical_utilisation + sum(
        s.physical_utilisation for s in snapshot_disks_of(vm, disk.vdi_ref)
    )


def full_size(vm: VMFacts, disk: DiskFacts) -> int:
    """Bytes a disk and its snapshot disks may grow to (their virtual sizes)."""
    return disk.virtual_size + sum(s.virtual_size for s in snapshot_disks_of(vm, disk.vdi_ref))


def copy_bytes(plan: Plan) -> int:
    """Bytes the storage copy transfers: moving disks at full size, snapshot disks included."""
    return sum(full_size(plan.vm, m.disk) for m in plan.disks if m.moves)


def reachable_srs(
    pool: PoolFacts, host_ref: str, need: int = 0, full: int | None = None
) -> list[SRFacts]:
    """SRs that take disks, attached to `host_ref`, with room for `need` bytes (on a thick
    SR for `full`, the disks' whole size, when given); roomiest first."""
    fits = [
        sr
        for sr in pool.srs.values()
        if sr.takes_disks
        and host_ref in sr.hosts
        and sr.free >= (full if sr.thick and full is not None else need)
    ]
    return sorted(fits, key=lambda sr: (-sr.free, sr.name))


def format_sr_choices(srs: Iterable[SRFacts]) -> str:
    """'nfs1 (1.2 TiB free), nfs2 (300 GiB free)': SRs to pick from, with their room."""
    return ", ".join(f"{sr.shown} ({format_size(sr.free)} free)" for sr in srs)


def _check_refs(
    vm: VMFacts,
    pool: PoolFacts,
    dest_host_ref: str,
    sr_ref: str | None,
    disk_srs: Mapping[str, str],
    throughput_mbps: float,
) -> None:
    """Refs come from resolution against the same facts; a miss means the facts went stale."""
    if dest_host_ref not in pool.hosts:
        raise PlanError(f"host {dest_host_ref} is not in pool {pool.name}")
    own = {d.vdi_ref for d in vm.disks}
    for vdi in disk_srs:
        if vdi not in own:
            raise PlanError(f"disk {vdi} is not a disk of {vm.name}")
    for sr in {*disk_srs.values(), *([sr_ref] if sr_ref is not None else [])}:
        if sr not in pool.srs:
            raise PlanError(f"SR {sr} is not in pool {pool.name}")
        if not pool.srs[sr].takes_disks:
            raise PlanError(_no_disks_here(pool, pool.srs[sr], dest_host_ref))
    if throughput_mbps <= 0:
        raise PlanError(f"the copy rate must be positive, not {throughput_mbps} MB/s")


def _no_disks_here(pool: PoolFacts, sr: SRFacts, dest_host_ref: str) -> str:
    """Why an ISO library (or removable media, or a read-only SR) is refused, and what not."""
    choices = reachable_srs(pool, dest_host_ref)
    text = f"{sr.shown} cannot hold VM disks (an ISO library, removable media or read-only)"
    if choices:
        text += f"; choose one of: {format_sr_choices(choices)}"
    return text


def _map_disks(
    vm: VMFacts,
    pool: PoolFacts,
    dest_host_ref: str,
    sr_ref: str | None,
    disk_srs: Mapping[str, str],
) -> tuple[DiskMove, ...]:
    """Each disk's destination SR; every stranded disk is reported at once."""
    moves: list[DiskMove] = []
    stranded: list[DiskFacts] = []
    for disk in vm.disks:
        dest = disk_srs.get(disk.vdi_ref) or sr_ref or _stay(disk, pool, dest_host_ref)
        if dest is None:
            stranded.append(disk)
        else:
            moves.append(DiskMove(disk, dest))
    if stranded:
        raise _stranded_error(vm, pool, dest_host_ref, stranded)
    return tuple(moves)


def _stay(disk: DiskFacts, pool: PoolFacts, dest_host_ref: str) -> str | None:
    """The disk's own SR if the destination host has it attached, else None."""
    current = pool.srs.get(disk.sr_ref)
    return disk.sr_ref if current is not None and dest_host_ref in current.hosts else None


def _stranded_error(
    vm: VMFacts, pool: PoolFacts, dest_host_ref: str, disks: Sequence[DiskFacts]
) -> PlanError:
    host = pool.hosts[dest_host_ref].name
    lines: list[str] = []
    choices: dict[str, tuple[str, ...]] = {}
    for disk in disks:
        need = space_needed(vm, disk)
        fits = reachable_srs(pool, dest_host_ref, need, full_size(vm, disk))
        choices[disk.vdi_ref] = tuple(sr.ref for sr in fits)
        where = pool.srs[disk.sr_ref].shown if disk.sr_ref in pool.srs else disk.sr_ref
        line = f"{host} cannot reach {where}, where disk {disk_label(disk)} is; "
        if fits:
            line += (
                f"choose sr=<sr> or disk:{disk.userdevice}=<sr> from the SRs {host} reaches "
                f"with {format_size(need)} free: {format_sr_choices(fits)}"
            )
        else:
            line += f"no SR that {host} reaches has the {format_size(need)} it needs"
        lines.append(line)
    return PlanError("\n".join(lines), choices)


def _build(
    vm: VMFacts,
    source: str,
    dest: str,
    mode: Mode,
    shutdown: ShutdownKind,
    moves: tuple[DiskMove, ...],
    throughput_mbps: float,
) -> Plan:
    plan = Plan(
        vm=vm,
        source_host_ref=source,
        dest_host_ref=dest,
        mode=mode,
        shutdown=shutdown,
        disks=moves,
        call=_call(mode, moves),
        estimate_seconds=0.0,
        downtime_seconds=0.0,
        throughput_mbps=throughput_mbps,
    )
    total, downtime = _estimate(plan)
    return replace(plan, estimate_seconds=total, downtime_seconds=downtime)


def _call(mode: Mode, moves: Sequence[DiskMove]) -> Call:
    """migrate_send whenever a disk changes SR; else pool_migrate live, nothing offline."""
    if any(m.moves for m in moves):
        return "migrate_send"
    return "pool_migrate" if mode == "live" else "none"


def _estimate(plan: Plan) -> tuple[float, float]:
    """(whole run, downtime) in seconds, from the bytes to copy at the plan's copy rate."""
    rate = plan.throughput_mbps * 1e6  # megabytes per second -> bytes per second
    memory = plan.vm.memory_static_max if plan.mode == "live" else 0
    transfer = (copy_bytes(plan) + memory) / rate
    if plan.mode == "live":
        return transfer + LIVE_DOWNTIME_SECONDS, LIVE_DOWNTIME_SECONDS
    if plan.vm.power_state != "Running":
        return transfer, 0.0  # it stays halted
    stop = CLEAN_SHUTDOWN_SECONDS if plan.shutdown == "clean" else HARD_SHUTDOWN_SECONDS
    total = stop + transfer + BOOT_SECONDS
    return total, total
