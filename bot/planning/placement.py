"""Where each VM of a batch goes: placement for `evacuate` and lists without a host.

Pure. Running VMs are placed largest first, each on the target with the most memory left
after the VMs placed before it (so they spread), on a host that has their networks and
reaches the SRs their disks are on or will be on (`sr=`), with room there for a copy.
Memory a moving VM frees on its source is not counted: the plan holds whatever order
the moves finish in. Halted VMs keep their disks and get their affinity moved; they
take no memory, so they go where a start would fit best. A VM that fits nowhere is left
out with why, and what would make room.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from bot.models import PoolFacts, VMFacts
from bot.planning.plan import NULL_REF, space_needed
from bot.planning.units import format_size


@dataclass(frozen=True)
class Placed:
    """A VM and its destination; `pool` is the pool as this VM finds it: free memory and
    SR space net of the VMs placed before it (what its checklist judges)."""

    vm: VMFacts
    host_ref: str
    pool: PoolFacts


@dataclass(frozen=True)
class Left:
    """A VM that does not move, and why; `blocks` when the plan cannot go ahead without it
    (a VM named or on the host to empty that fits nowhere)."""

    vm: VMFacts
    why: str
    blocks: bool


@dataclass(frozen=True)
class Placement:
    placed: tuple[Placed, ...]  # in placement order: running VMs largest first, then halted
    left: tuple[Left, ...]

    @property
    def blocked(self) -> bool:
        return any(left.blocks for left in self.left)


def home(vm: VMFacts) -> str:
    """The host a VM is on: where it runs, else its affinity (NULL for neither)."""
    return vm.resident_on if vm.resident_on != NULL_REF else vm.affinity


class Refusal(NamedTuple):
    """Why a host cannot take a VM: `kind` groups hosts refused alike, `words` say it after
    the host's name, `short` is the memory missing (for what would make room)."""

    kind: str
    words: str
    short: int = 0


def place(
    vms: Sequence[VMFacts],
    pool: PoolFacts,
    targets: Sequence[str],
    srs: Mapping[str, str] | None = None,
    *,
    chosen: bool = False,
    evacuating: bool = False,
) -> Placement:
    """Place `vms` on `targets` (host refs, never a VM's own); `srs` maps each target to
    the SR that `sr=` names there (None: disks stay where they are).

    `chosen`: the targets are the hosts someone named (`to host2,host3`), so a VM already
    on one of them stays. `evacuating`: the VMs are everything on a host being emptied, so
    a halted or suspended VM whose disks no target reaches stays where it is (a warning),
    where a VM someone named is a blocker."""
    ledger = Ledger(pool)
    placed: list[Placed] = []
    left: list[Left] = []
    for vm in sorted(vms, key=lambda vm: (not _takes_memory(vm), -vm.memory_needed, vm.name)):
        if chosen and home(vm) in targets and _disks_there(vm, srs, home(vm)):
            left.append(Left(vm, f"{vm.name} is on {_name(pool, home(vm))} already", False))
            continue
        refusals = {host: ledger.refusal(vm, host, srs) for host in targets if host != home(vm)}
        able = [host for host, refusal in refusals.items() if refusal is None]
        if not able:
            stays = evacuating and not _takes_memory(vm)
            why = _nowhere(vm, pool, refusals, srs, stays, _Ask(chosen, evacuating))
            left.append(Left(vm, why, not stays))
            continue
        free = ledger.free
        best = min(able, key=lambda h: (vm.memory_needed > free[h], -free[h], _by_name(pool, h)))
        placed.append(Placed(vm, best, ledger.as_found()))
        ledger.take(vm, best, {d.vdi_ref: _disk_sr(d.sr_ref, srs, best) for d in vm.disks})
    return Placement(tuple(placed), tuple(left))


def follow(
    moves: Sequence[tuple[VMFacts, str, Mapping[str, str]]], pool: PoolFacts
) -> list[PoolFacts]:
    """The pool as each move of a stored plan finds it, the moves before it counted: what
    the checklist judges each against when a batch is checked again. A move is (VM,
    destination host ref, VDI ref -> destination SR ref)."""
    ledger, found = Ledger(pool), []
    for vm, host, disk_srs in moves:
        found.append(ledger.as_found())
        ledger.take(vm, host, disk_srs)
    return found


class Ledger:
    """Free memory per host and free space per SR as VMs are placed, one after another."""

    def __init__(self, pool: PoolFacts) -> None:
        self.pool = pool
        self.free = {ref: host.free_memory for ref, host in pool.hosts.items()}
        self.space = {ref: sr.free for ref, sr in pool.srs.items()}

    def take(self, vm: VMFacts, host: str, disk_srs: Mapping[str, str]) -> None:
        """`vm` lands on `host`, each disk on the SR `disk_srs` maps its VDI to."""
        if _takes_memory(vm) and host in self.free:
            self.free[host] -= vm.memory_needed
        for disk in vm.disks:
            dest = disk_srs.get(disk.vdi_ref, disk.sr_ref)
            if dest != disk.sr_ref and dest in self.pool.srs:
                self.space[dest] -= space_needed(vm, disk, self.pool.srs[dest])

    def as_found(self) -> PoolFacts:
        pool = self.pool
        hosts = {ref: replace(h, free_memory=self.free[ref]) for ref, h in pool.hosts.items()}
        srs = {
            ref: replace(sr, physical_utilisation=sr.physical_size - self.space[ref])
            for ref, sr in pool.srs.items()
        }
        return replace(pool, hosts=hosts, srs=srs)

    def refusal(self, vm: VMFacts, host_ref: str, srs: Mapping[str, str] | None) -> Refusal | None:
        """Why `host_ref` cannot take `vm` now, or None when it can."""
        return _refusal(vm, self.pool, host_ref, srs, self.free[host_ref], self.space)


def _takes_memory(vm: VMFacts) -> bool:
    """Running (or paused) VMs hold memory where they land; halted ones only get affinity."""
    return vm.power_state in ("Running", "Paused")


def _disks_there(vm: VMFacts, srs: Mapping[str, str] | None, host: str) -> bool:
    return srs is None or all(d.sr_ref == srs.get(host) for d in vm.disks)


def _disk_sr(current: str, srs: Mapping[str, str] | None, host: str) -> str:
    """Where a disk goes on `host`: the SR `sr=` names there, else where it is."""
    return current if srs is None else srs.get(host, current)


def _refusal(
    vm: VMFacts,
    pool: PoolFacts,
    host_ref: str,
    srs: Mapping[str, str] | None,
    free: int,
    space: Mapping[str, int],
) -> Refusal | None:
    """Why `host_ref` cannot take `vm`, or None when it can."""
    host = pool.hosts[host_ref]
    if not host.live:
        return Refusal("down", "not live")
    if not host.enabled:
        return Refusal("down", "disabled")
    if srs is not None and host_ref not in srs:
        return Refusal("sr", "no SR that sr= names")
    for net_ref in vm.networks:
        net = pool.networks.get(net_ref)
        if net is not None and net.hosts and host_ref not in net.hosts:
            return Refusal("network", f"no {net.name} network")
    needs: dict[str, int] = {}
    for disk in vm.disks:
        dest = _disk_sr(disk.sr_ref, srs, host_ref)
        sr = pool.srs.get(dest)
        if sr is None or host_ref not in sr.hosts or not sr.takes_disks:
            return Refusal("reach", f"no access to {sr.shown if sr is not None else dest}")
        if dest != disk.sr_ref:
            needs[dest] = needs.get(dest, 0) + space_needed(vm, disk, sr)
    for sr_ref, need in sorted(needs.items()):
        if need > space[sr_ref]:
            shown, left = pool.srs[sr_ref].shown, format_size(space[sr_ref])
            return Refusal("space", f"{shown} has {left} left of the {format_size(need)} needed")
    if _takes_memory(vm) and vm.memory_needed > free:
        return Refusal("memory", f"{format_size(max(0, free))} free", vm.memory_needed - free)
    return None


def _nowhere(
    vm: VMFacts,
    pool: PoolFacts,
    refusals: Mapping[str, Refusal | None],
    srs: Mapping[str, str] | None,
    stays: bool,
    ask: _Ask,
) -> str:
    """'vm05 (8 GiB) fits on no host (host2: 4 GiB free; host3, host4: no dmz network).
    Free 4 GiB on host2, …': why, host by host, then what would make room."""
    if not refusals:
        return f"{vm.name} has no host to go to but its own"
    grouped: dict[str, list[str]] = {}
    for host_ref in sorted(refusals, key=lambda h: _by_name(pool, h)):
        refusal = refusals[host_ref]
        if refusal is not None:
            grouped.setdefault(refusal.words, []).append(_name(pool, host_ref))
    why = "; ".join(f"{_listed(hosts)}: {words}" for words, hosts in grouped.items())
    size = f" ({format_size(vm.memory_needed)})" if _takes_memory(vm) else ""
    text = f"{vm.name}{size} fits on no host ({why})"
    if stays:
        return f"{text}; it stays {vm.power_state.lower()} where it is (sr= would move its disks)"
    return f"{text}. {_room(pool, refusals, srs, ask)}"


@dataclass(frozen=True)
class _Ask:
    """What the person asked, which decides the remedies that make sense."""

    chosen: bool  # `to host2,host3`: another host can be added to the plan
    evacuating: bool  # everything on a host: it cannot be left out, but it can be stopped


def _room(
    pool: PoolFacts,
    refusals: Mapping[str, Refusal | None],
    srs: Mapping[str, str] | None,
    ask: _Ask,
) -> str:
    """What would make room: the remedies the refusals point at, as the request allows."""
    found = [(host, r) for host, r in refusals.items() if r is not None]
    kinds = {r.kind for _, r in found}
    first = "Add a host to the plan"
    if kinds == {"memory"}:
        host, refusal = min(found, key=lambda hr: (hr[1].short, _by_name(pool, hr[0])))
        first = (
            f"Free {format_size(refusal.short)} on {_name(pool, host)} (move or stop a VM there)"
        )
    elif "reach" in kinds and srs is None:
        first = "Give sr= an SR the other hosts reach, so its disks move too"
    elif "network" in kinds:
        first = "Add a host that has its networks"
    remedies = [first]
    if ask.chosen and first != "Add a host to the plan":
        remedies.append("add a host to the plan")
    if ask.evacuating:
        remedies.append("shut it down for the maintenance (a halted VM is not in the way)")
    else:
        remedies.append("leave it out")
    return f"{', '.join(remedies[:-1])}, or {remedies[-1]}"


def _listed(names: list[str]) -> str:
    if len(names) > 4:
        return f"{', '.join(names[:3])} and {len(names) - 3} more"
    return ", ".join(names)


def _name(pool: PoolFacts, ref: str) -> str:
    host = pool.hosts.get(ref)
    return host.name if host else "no host"


def _by_name(pool: PoolFacts, ref: str) -> str:
    return _name(pool, ref).lower()


def makespan(durations: Iterable[float], slots: int) -> float:
    """How long moves take run in this order with `slots` at once, each starting as soon as
    a slot frees: the whole plan's estimate."""
    ends = [0.0] * max(1, slots)
    for duration in durations:
        heapq.heapreplace(ends, ends[0] + duration)
    return max(ends)
