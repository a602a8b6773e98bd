"""From what a user typed (or what a request stored) to a plan and its checklist.

`Planner.preview(command)` resolves names against the pool and runs every check;
`Planner.rebuild(intent)` does the same from the UUIDs a request stored, with fresh facts,
so an approval or a scheduled start re-checks what may have changed (a run's re-check may
take the pool's own facts from a read a few seconds old, for a pass only: see `rebuild`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.errors import PoolUnreachable, UserError, XapiFailure, XapiUnavailable
from bot.models import Intent, Inventory, Mode, Plan, PoolFacts, ShutdownKind, VMFacts
from bot.planning.command import MigrateCommand
from bot.planning.explain import explain, names_for
from bot.planning.plan import NULL_REF, make_plan
from bot.planning.preflight import checklist
from bot.planning.preview import Preview
from bot.planning.resolve import (
    NotFound,
    did_you_mean,
    resolve,
    resolve_disk,
    resolve_sr,
)
from bot.xen import facts, ops
from bot.xen.connection import Xapi

T = TypeVar("T")
RECENT_POOL_SECONDS = 5.0  # how old a read of the pool a run's re-check may take a pass from


@dataclass(frozen=True)
class PlannerConfig:
    backup_tag: str = "xo:no-bak"
    cpu_threshold: float = 0.8
    throughput_mbps: float = 100.0


class SharedRead(Generic[T]):
    """Callers that ask while a read is under way get that read's answer instead of
    reading again: a burst of requests reads the pool once, and nobody gets a copy older
    than their own question's start minus one read."""

    def __init__(self, read: Callable[[Any], T]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._flight: Future[T] | None = None

    def __call__(self, x: Any) -> T:
        with self._lock:
            flight, owner = self._flight, self._flight is None
            if flight is None:
                flight = self._flight = Future()
        if not owner:
            return flight.result()
        try:
            flight.set_result(self._read(x))
        except BaseException as error:
            flight.set_exception(error)
        finally:
            with self._lock:
                self._flight = None
        return flight.result()


class RecentRead(Generic[T]):
    """The last read's answer while it is younger than `seconds` (counted from the read's
    start), else a new read, shared by whoever asks while it is under way: moves of a
    batch that start together read the pool once instead of once each."""

    def __init__(self, read: Callable[[Any], T], seconds: float, now: Callable[[], float]) -> None:
        self._read, self._seconds, self._now = read, seconds, now
        self._lock = threading.Lock()
        self._kept: tuple[float, T] | None = None
        self._shared = SharedRead(self._timed)

    def __call__(self, x: Any) -> T:
        with self._lock:
            kept = self._kept
        if kept is not None and self._now() - kept[0] < self._seconds:
            return kept[1]
        return self._keep(*self._shared(x))

    def fresh(self, x: Any) -> T:
        """A read begun now (none under way will do), kept for the next callers."""
        return self._keep(*self._timed(x))

    def _timed(self, x: Any) -> tuple[float, T]:
        started = self._now()
        return started, self._read(x)

    def _keep(self, started: float, value: T) -> T:
        with self._lock:
            if self._kept is None or self._kept[0] <= started:
                self._kept = (started, value)
        return value


class Planner:
    def __init__(
        self,
        xapi: Xapi,
        config: PlannerConfig,
        measured: Callable[[], float | None] = lambda: None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        """`measured` gives the copy rate (MB/s) seen on earlier migrations, if any; `now`
        times how long a run's re-check may reuse a read of the pool."""
        self.xapi = xapi
        self.config = config
        self.measured = measured
        self._pool_read = SharedRead(facts.read_pool)
        self._recent_pool = RecentRead(facts.read_pool, RECENT_POOL_SECONDS, now)

    def throughput(self) -> float:
        return self.measured() or self.config.throughput_mbps

    def preview(self, command: MigrateCommand) -> Preview:
        """Resolve the command's names, plan, and run the checklist."""

        def gather(x: Any) -> Preview:
            pool = self._pool_read(x)  # requests filed together share one read
            host = resolve("host", command.host, list(pool.hosts.values()))
            vm = facts.vm_facts(x, find_vm(x, command.vm, pool))
            srs, names = list(pool.srs.values()), {h.ref: h.name for h in pool.hosts.values()}

            def sr_ref(text: str) -> str:
                return resolve_sr(text, srs, names, host.ref).ref

            sr = sr_ref(command.sr) if command.sr else None
            disk_srs = {
                resolve_disk(selector, vm.disks).vdi_ref: sr_ref(name)
                for selector, name in command.disks
            }
            return self._checked(
                x, vm, pool, host.ref, sr, disk_srs, command.mode, command.shutdown
            )

        return self.call(gather)

    def rebuild(
        self,
        intent: Intent,
        mode: Mode | None = None,
        shutdown: ShutdownKind | None = None,
        *,
        recent: bool = False,
    ) -> Preview:
        """The stored request against the pool as it is now (optionally another mode).

        `recent` (a run's re-check as its move starts): the pool's own facts (hosts, SRs,
        PBDs, networks) may come from a read of the last RECENT_POOL_SECONDS, so moves
        starting together read them once; the VM, the destination's free memory (xapi's
        count, which holds the moves under way) and xapi's own pre-check are read now, and
        the latter re-checks what a few seconds can change among those facts (host enabled
        and live, SRs and networks it reaches). Only a pass is taken from them: a blocker,
        a drift or a host, SR or network they lack is judged again on a fresh read. A
        request that copies disks always reads afresh (SR free space changes as copies run).
        """
        mode_, shutdown_ = mode or intent.mode, shutdown or intent.shutdown

        def checked(x: Any, vm: VMFacts, pool: PoolFacts) -> Preview:
            host, disk_srs = _placed(vm, pool, intent)
            return self._checked(x, vm, pool, host, None, disk_srs, mode_, shutdown_)

        def gather(x: Any) -> Preview:
            if not recent or _copies_disks(intent):
                pool = facts.read_pool(x)
                return checked(x, _vm_by_uuid(x, intent.vm_uuid), pool)
            vm = _vm_by_uuid(x, intent.vm_uuid)
            pool = self._recent_pool(x)
            if _knows(pool, vm, intent):
                preview = checked(x, vm, pool)
                if not preview.blocked and preview.drift(intent) is None:
                    return preview
            return checked(x, vm, self._recent_pool.fresh(x))

        return self.call(gather)

    def plan_only(self, intent: Intent) -> Plan:
        """The stored plan against the pool as it is, without the checklist or xapi's own
        pre-check: what the migrate step issues once the checklist has run (for an offline
        move every call here is downtime)."""

        def gather(x: Any) -> Plan:
            vm, pool, host, disk_srs = _stored(x, intent)
            return make_plan(
                vm,
                pool,
                host,
                None,
                disk_srs,
                intent.mode,
                intent.shutdown,
                self.throughput(),
            )

        return self.call(gather)

    def has(self, kind: str, names: Sequence[str]) -> set[str]:
        """Which of `names` this pool has: VMs, hosts (by name-label or UUID) or VM tags;
        how a bot serving several pools finds the one a command means."""

        def gather(x: Any) -> set[str]:
            if kind == "VM":
                named = facts.vms_named_each(x, names)
                return {name for name in names if named[name]}
            if kind == "tag":
                tags = set(facts.all_tags(x))
                return {name for name in names if name in tags}
            return {name for name in names if facts.refs_named(x, kind, name)}

        return self.call(gather)

    def names_of(self, kind: str) -> list[str]:
        """Every VM, host or tag name, for "did you mean" after a miss in every pool."""
        read = {"VM": facts.vm_names, "tag": facts.all_tags}.get(kind)
        if read is None:
            return self.call(lambda x: [h.name for h in facts.read_pool(x).hosts.values()])
        return self.call(read)

    def inventory(self) -> Inventory:
        """VMs, hosts and SRs by name, for the modal's searchable selects."""
        return self.call(facts.inventory)

    def names(self, vm_uuid: str) -> dict[str, str]:
        """Refs and uuids of the pool's hosts and SRs, the VM and its disks -> names, so an
        XAPI error about them reads "host3-local", not a ref."""
        vm, pool = self.vm_and_pool(vm_uuid)
        return names_for(pool, vm)

    def vm_and_pool(self, vm_uuid: str) -> tuple[VMFacts, PoolFacts]:
        """One VM's facts (its disks, for the modal) and the pool's."""

        def gather(x: Any) -> tuple[VMFacts, PoolFacts]:
            return _vm_by_uuid(x, vm_uuid), facts.read_pool(x)

        return self.call(gather)

    def _checked(
        self,
        x: Any,
        vm: Any,
        pool: PoolFacts,
        host: str,
        sr: str | None,
        disk_srs: Mapping[str, str],
        mode: Mode | None,
        shutdown: ShutdownKind,
    ) -> Preview:
        pool = facts.with_free_memory(x, pool, host)
        plan = make_plan(vm, pool, host, sr, disk_srs, mode, shutdown, self.throughput())
        verdict = ops.assert_can_migrate(x, plan)
        checks = checklist(
            plan,
            pool,
            backup_tag=self.config.backup_tag,
            cpu_threshold=self.config.cpu_threshold,
            assert_error=verdict,
        )
        return Preview(plan, pool, checks)

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run `fn` on a session; every failure becomes a UserError worded for people (names
        and plans fail as UserErrors already)."""
        try:
            return self.xapi.call(fn)
        except XapiFailure as failure:
            raise UserError(str(explain(failure.description))) from None
        except XapiUnavailable as error:
            raise PoolUnreachable(
                f"Cannot reach the pool master ({error}). Try again shortly."
            ) from None


def find_vm(x: Any, text: str, pool: PoolFacts) -> facts.VMRef:
    """The one VM `text` names (UUID or name-label); NotFound/Ambiguous otherwise."""
    candidates = facts.vms_named(x, text)
    if not candidates:
        raise NotFound("VM", text, did_you_mean(text, facts.vm_names(x)))
    return resolve("VM", text, candidates, describe=lambda c: facts.where(c, pool))


def _stored(x: Any, intent: Intent) -> tuple[VMFacts, PoolFacts, str, dict[str, str]]:
    """The VM, the pool, the destination's ref and each disk's SR ref, from a stored intent
    (disks by their place in the VM: a moved disk is a new VDI)."""
    pool = facts.read_pool(x)
    vm = _vm_by_uuid(x, intent.vm_uuid)
    return vm, pool, *_placed(vm, pool, intent)


def _placed(vm: VMFacts, pool: PoolFacts, intent: Intent) -> tuple[str, dict[str, str]]:
    """The destination's ref and each disk's SR ref in this read of the pool."""
    host = _by_uuid(pool.hosts, intent.dest_host_uuid, "host")
    by_uuid = {s.uuid: s.ref for s in pool.srs.values()}
    disk_srs = {
        d.vdi_ref: by_uuid[intent.disk_srs[d.userdevice]]
        for d in vm.disks
        if intent.disk_srs.get(d.userdevice) in by_uuid
    }
    return host, disk_srs


def _copies_disks(intent: Intent) -> bool:
    """Whether a disk changes SR (not known for requests stored before `source_srs`)."""
    return intent.source_srs is None or intent.disk_srs != intent.source_srs


def _knows(pool: PoolFacts, vm: VMFacts, intent: Intent) -> bool:
    """Whether this read of the pool has every host, SR and network the VM and the request
    name: one it lacks may have come since, and is not to be judged as missing."""
    hosts = {h.uuid for h in pool.hosts.values()}
    srs = {s.uuid for s in pool.srs.values()}
    return (
        intent.dest_host_uuid in hosts
        and all(ref in pool.hosts for ref in (vm.resident_on, vm.affinity) if ref != NULL_REF)
        and all(d.sr_ref in pool.srs for d in vm.disks)
        and set(intent.disk_srs.values()) <= srs
        and all(n in pool.networks for n in vm.networks)
    )


def _vm_by_uuid(x: Any, uuid: str) -> VMFacts:
    ref = facts.lookup_uuid(x, "VM", uuid)
    if ref is None:
        raise NotFound("VM", uuid)
    return facts.vm_facts(x, facts.vm_ref(x, ref))


def _by_uuid(objects: Mapping[str, Any], uuid: str, kind: str) -> str:
    for ref, obj in objects.items():
        if obj.uuid == uuid:
            return ref
    raise UserError(f"the {kind} this request names ({uuid}) no longer exists")
