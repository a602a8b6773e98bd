"""From `/migrate evacuate host1` (or a list, or a tag) to a batch: the VMs, where each goes,
and each move's checklist; and a stored batch checked again at its approval.

The facts are read in bulk (the host's VMs by a filtered read, their disks and snapshots by
reference), so the calls do not grow with the pool; the calls that are one per VM (its
CPU load, xapi's own pre-check) run on a few sessions at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from bot.errors import UserError
from bot.models import HostFacts, Intent, PoolFacts, VMFacts
from bot.planning.batch import Aside, BatchPreview
from bot.planning.command import BatchCommand, parse
from bot.planning.placement import Placed, follow, place
from bot.planning.plan import PlanError, make_plan
from bot.planning.planner import Planner
from bot.planning.preflight import checklist
from bot.planning.preview import Preview
from bot.planning.resolve import NotFound, ResolveError, did_you_mean, resolve, resolve_sr
from bot.xen import facts, ops

T = TypeVar("T")
R = TypeVar("R")
SESSIONS = 8  # sessions the per-VM calls share (xapi's own limit per client is far higher)


@dataclass(frozen=True)
class _Move:
    """A move to check: the VM, its destination, each disk's SR, and the pool as it will
    find it (the moves before it counted)."""

    vm: VMFacts
    host: str
    disk_srs: Mapping[str, str]  # VDI ref -> SR ref; a disk not named stays
    pool: PoolFacts


class BatchPlanner:
    def __init__(self, planner: Planner, slots: int) -> None:
        """`slots`: how many moves run at once (the whole plan's estimate counts them)."""
        self.planner = planner
        self.slots = slots

    def preview(self, command: BatchCommand) -> BatchPreview:
        """Resolve the subject and the hosts, place every VM, check every move."""

        def gather(x: Any) -> tuple[PoolFacts, HostFacts | None, list[str], list[VMFacts]]:
            pool = facts.read_pool(x)
            hosts = list(pool.hosts.values())
            emptied = resolve("host", command.evacuate, hosts) if command.evacuate else None
            targets = [resolve("host", name, hosts).ref for name in command.to] or [
                h.ref for h in hosts if emptied is None or h.ref != emptied.ref
            ]
            if emptied is not None and emptied.ref in targets:
                raise UserError(f"{emptied.name} is the host to empty: it cannot take VMs too")
            vms = _subject(x, command, pool, emptied)
            return pool, emptied, targets, facts.vms_facts(x, vms, cpu=False)

        pool, emptied, targets, vms = self.planner.call(gather)
        pool = self._with_free_memory(pool, targets)
        srs = _sr_per_host(command.sr, pool, targets) if command.sr else None
        placement = place(
            vms, pool, targets, srs, chosen=bool(command.to), evacuating=emptied is not None
        )
        if not placement.placed and emptied is None:
            why = "; ".join(left.why for left in placement.left)
            raise UserError(f"Nothing to move: {why}")
        moves = [_placed(p, srs) for p in placement.placed]
        items, failed = self._check(moves, command)
        left = [Aside(x.vm.name, x.why, x.blocks) for x in placement.left]
        return BatchPreview(
            command=command,
            subject=_subject_text(command, emptied),
            pool=pool,
            items=items,
            left=(*left, *failed),
            slots=self.slots,
            evacuate=emptied.ref if emptied else "",
            targets=tuple(targets),
        )

    def host(self, text: str) -> HostFacts:
        """The host `text` names (a name or a UUID), as the pool has it now."""
        return self.planner.call(
            lambda x: resolve("host", text, list(facts.read_pool(x).hosts.values()))
        )

    def recheck(self, command_text: str, stored: Mapping[str, Any]) -> BatchPreview:
        """A stored batch against the pool as it is now, each move where it was placed (the
        moves before it counted); a VM gone or changed so its move no longer plans blocks."""
        command = parse(command_text)
        if not isinstance(command, BatchCommand):
            raise UserError(f"this request's command no longer reads as a batch: {command_text}")
        rows = stored["batch"]["rows"]
        intents = [Intent.from_json(row["intent"]) for row in rows]

        def gather(x: Any) -> tuple[PoolFacts, list[str], list[VMFacts]]:
            pool = facts.read_pool(x)
            by_uuid = {h.uuid: h.ref for h in pool.hosts.values()}
            dests = {by_uuid[i.dest_host_uuid] for i in intents if i.dest_host_uuid in by_uuid}
            found = facts.vms_by_uuid(x, [i.vm_uuid for i in intents])
            return pool, sorted(dests), facts.vms_facts(x, list(found.values()), cpu=False)

        pool, dests, vms = self.planner.call(gather)
        pool = self._with_free_memory(pool, dests)
        by_vm = {vm.uuid: vm for vm in vms}
        hosts = {h.uuid: h.ref for h in pool.hosts.values()}
        srs = {sr.uuid: sr.ref for sr in pool.srs.values()}
        gone: list[Aside] = []
        planned: list[tuple[VMFacts, str, dict[str, str]]] = []
        for row, intent in zip(rows, intents, strict=True):
            vm = by_vm.get(intent.vm_uuid)
            host = hosts.get(intent.dest_host_uuid)
            if vm is None or host is None:
                what = row["vm"] if vm is None else f"the host {row['vm']} goes to"
                gone.append(Aside(row["vm"], f"{what} no longer exists: Re-check", True))
                continue
            disk_srs = {
                d.vdi_ref: srs[intent.disk_srs[d.userdevice]]
                for d in vm.disks
                if intent.disk_srs.get(d.userdevice) in srs
            }
            planned.append((vm, host, disk_srs))
        found = follow(planned, pool)
        moves = [_Move(vm, h, d, at) for (vm, h, d), at in zip(planned, found, strict=True)]
        modes = {i.vm_uuid: i for i in intents}
        items, failed = self._check(moves, command, modes)
        kept = [
            Aside(x["vm"], x["why"], x["blocks"])
            for x in stored["summary"].get("left", ())
            if not x["blocks"]
        ]
        emptied = stored["batch"].get("evacuate")
        return BatchPreview(
            command=command,
            subject=stored["summary"]["subject"],
            pool=pool,
            items=items,
            left=(*kept, *gone, *failed),
            slots=self.slots,
            evacuate=hosts.get(emptied, "") if emptied else "",
            targets=tuple(hosts[u] for u in stored["batch"].get("targets", ()) if u in hosts),
        )

    def _check(
        self,
        moves: Sequence[_Move],
        command: BatchCommand,
        intents: Mapping[str, Intent] | None = None,
    ) -> tuple[tuple[Preview, ...], list[Aside]]:
        """Plan and check every move (on a few sessions at once); longest first, so the
        slots end together."""
        config = self.planner.config
        throughput = self.planner.throughput()

        def check(x: Any, move: _Move) -> Preview | Aside:
            vm = move.vm
            intent = intents.get(vm.uuid) if intents else None
            mode = intent.mode if intent else command.mode
            shutdown = intent.shutdown if intent else command.shutdown
            if mode != "offline":
                vm = _with_cpu(x, vm)
            try:
                plan = make_plan(
                    vm, move.pool, move.host, None, move.disk_srs, mode, shutdown, throughput
                )
            except PlanError as error:
                return Aside(vm.name, str(error), True)
            checks = checklist(
                plan,
                move.pool,
                backup_tag=config.backup_tag,
                cpu_threshold=config.cpu_threshold,
                assert_error=ops.assert_can_migrate(x, plan),
            )
            return Preview(plan, move.pool, checks)

        checked = self._each(check, moves)
        items = [c for c in checked if isinstance(c, Preview)]
        items.sort(key=lambda p: (-p.plan.estimate_seconds, p.plan.vm.name))
        return tuple(items), [c for c in checked if isinstance(c, Aside)]

    def _with_free_memory(self, pool: PoolFacts, hosts: Sequence[str]) -> PoolFacts:
        """The hosts' free memory as xapi computes it, read side by side (one call each)."""
        free = self._each(lambda x, ref: facts.free_memory(x, ref), hosts)
        return facts.with_free(pool, dict(zip(hosts, free, strict=True)))

    def _each(self, fn: Callable[[Any, T], R], items: Sequence[T]) -> list[R]:
        """`fn(x, item)` for every item, on up to SESSIONS sessions, results in order."""
        if not items:
            return []
        size = -(-len(items) // SESSIONS)
        chunks = [items[n : n + size] for n in range(0, len(items), size)]

        def run(chunk: Sequence[T]) -> list[R]:
            return self.planner.call(lambda x: [fn(x, item) for item in chunk])

        if len(chunks) == 1:
            return run(chunks[0])
        with ThreadPoolExecutor(len(chunks), thread_name_prefix="plan") as pool:
            return [result for part in pool.map(run, chunks) for result in part]


def _placed(placed: Placed, srs: Mapping[str, str] | None) -> _Move:
    disk_srs = {d.vdi_ref: srs[placed.host_ref] for d in placed.vm.disks} if srs else {}
    return _Move(placed.vm, placed.host_ref, disk_srs, placed.pool)


def _with_cpu(x: Any, vm: VMFacts) -> VMFacts:
    return replace(vm, cpu_usage=facts.cpu_usage(x, vm.ref, vm.power_state, vm.vcpus))


def _subject(
    x: Any, command: BatchCommand, pool: PoolFacts, emptied: HostFacts | None
) -> list[facts.VMRef]:
    """The VMs the command names: on the host, with the tag, or each name of the list."""
    if emptied is not None:
        return facts.vms_on(x, emptied.ref)
    if command.tag is not None:
        tagged = facts.vms_tagged(x, command.tag)
        if not tagged:
            close = did_you_mean(command.tag, facts.all_tags(x))
            hint = f"; did you mean {' or '.join(f'tag:{t}' for t in close)}?" if close else ""
            raise UserError(f"No VM has the tag '{command.tag}'{hint}")
        return tagged
    named = facts.vms_named_each(x, command.vms)
    missing = [name for name, found in named.items() if not found]
    if missing:
        names = facts.vm_names(x)
        raise UserError(
            "; ".join(str(NotFound("VM", name, did_you_mean(name, names))) for name in missing)
        )
    return [
        resolve("VM", name, found, describe=lambda c: facts.where(c, pool))
        for name, found in named.items()
    ]


def _sr_per_host(text: str, pool: PoolFacts, targets: Sequence[str]) -> dict[str, str]:
    """The SR `sr=` names on each target (`local` is each host's own); hosts where it names
    none are left out, so no VM goes there; none at all is the user's error."""
    srs, names = list(pool.srs.values()), {h.ref: h.name for h in pool.hosts.values()}
    found: dict[str, str] = {}
    errors: list[str] = []
    for host in targets:
        try:
            found[host] = resolve_sr(text, srs, names, host).ref
        except ResolveError as error:
            errors.append(str(error))
    if not found:
        raise UserError(errors[0] if errors else f"no host to move to with sr={text}")
    return found


def _subject_text(command: BatchCommand, emptied: HostFacts | None) -> str:
    if emptied is not None:
        return f"evacuate {emptied.name}"
    if command.tag is not None:
        return f"tag:{command.tag}"
    return f"{len(command.vms)} VMs"
