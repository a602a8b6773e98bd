"""Facts for the pure modules' tests: one small pool and one VM, each overridable by name.

The pool: host1 (master), host2, host3; shared SRs nfs1 (roomy) and nfs2 (124 GiB free)
attached everywhere; a local SR per host. vm01 runs on host1 with two disks on
local-host1 and one snapshot covering both disks.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from bot.models import (
    DiskFacts,
    HostFacts,
    Mode,
    NetworkFacts,
    Plan,
    PoolFacts,
    ShutdownKind,
    SnapshotDisk,
    SnapshotFacts,
    SRFacts,
    VMFacts,
)
from bot.planning.plan import make_plan

MiB = 1024**2
GiB = 1024**3
TiB = 1024**4
NULL = "OpaqueRef:NULL"
HOSTS = ("host1", "host2", "host3")


def ref(name: str) -> str:
    """A readable ref: 'OpaqueRef:host1'."""
    return f"OpaqueRef:{name}"


def uuid_of(name: str) -> str:
    """A stable, real-looking UUID per name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"migrate-bot-test:{name}"))


def host(name: str, **changes: object) -> HostFacts:
    facts = HostFacts(
        ref=ref(name),
        uuid=uuid_of(name),
        name=name,
        address=f"10.0.0.{HOSTS.index(name) + 1 if name in HOSTS else 9}",
        enabled=True,
        live=True,
        is_master=name == "host1",
        free_memory=32 * GiB,
    )
    return replace(facts, **changes)


def sr(name: str, hosts: tuple[str, ...], size: int, used: int, **changes: object) -> SRFacts:
    facts = SRFacts(
        ref=ref(name),
        uuid=uuid_of(name),
        name=name,
        type="nfs" if len(hosts) > 1 else "ext",
        shared=len(hosts) > 1,
        physical_size=size,
        physical_utilisation=used,
        hosts=frozenset(ref(h) for h in hosts),
    )
    return replace(facts, **changes)


def make_pool() -> PoolFacts:
    srs = [
        sr("nfs1", HOSTS, 4 * TiB, 1 * TiB),
        sr("nfs2", HOSTS, 1 * TiB, 900 * GiB),
        *(sr(f"local-{h}", (h,), 500 * GiB, 100 * GiB) for h in HOSTS),
    ]
    lan = NetworkFacts(ref("net-lan"), "lan", frozenset(ref(h) for h in HOSTS))
    return PoolFacts(
        name="pool-a",
        master_ref=ref("host1"),
        ha_enabled=False,
        hosts={ref(h): host(h) for h in HOSTS},
        srs={s.ref: s for s in srs},
        networks={lan.ref: lan},
    )


def with_host(pool: PoolFacts, name: str, **changes: object) -> PoolFacts:
    return replace(pool, hosts={**pool.hosts, ref(name): replace(pool.hosts[ref(name)], **changes)})


def with_sr(pool: PoolFacts, name: str, **changes: object) -> PoolFacts:
    return replace(pool, srs={**pool.srs, ref(name): replace(pool.srs[ref(name)], **changes)})


def disk(userdevice: str, name: str, virtual: int, physical: int, sr_name: str) -> DiskFacts:
    return DiskFacts(
        vbd_ref=ref(f"vbd-{name}"),
        vdi_ref=ref(f"vdi-{name}"),
        vdi_uuid=uuid_of(f"vdi-{name}"),
        name=name,
        userdevice=userdevice,
        device=f"xvd{'abcdefgh'[int(userdevice)]}",
        sr_ref=ref(sr_name),
        virtual_size=virtual,
        physical_utilisation=physical,
        cbt_enabled=False,
    )


def make_vm(sr_name: str = "local-host1", **changes: object) -> VMFacts:
    """vm01, running on host1, its disks (and their snapshot disks) on `sr_name`."""
    root = disk("0", "vm01 root", 40 * GiB, 12 * GiB, sr_name)
    data = disk("1", "vm01 data", 100 * GiB, 60 * GiB, sr_name)
    snap_disks = tuple(
        SnapshotDisk(ref(f"vdi-snap-{d.name}"), d.vdi_ref, d.sr_ref, d.virtual_size, used)
        for d, used in ((root, 2 * GiB), (data, 3 * GiB))
    )
    facts = VMFacts(
        ref=ref("vm01"),
        uuid=uuid_of("vm01"),
        name="vm01",
        power_state="Running",
        resident_on=ref("host1"),
        affinity=ref("host1"),
        memory_static_max=8 * GiB,
        memory_overhead=64 * MiB,
        current_operations={},
        tags=(),
        other_config={},
        disks=(root, data),
        snapshots=(
            SnapshotFacts(
                ref("snap1"),
                uuid_of("snap1"),
                "before upgrade",
                tuple(s.vdi_ref for s in snap_disks),
            ),
        ),
        snapshot_disks=snap_disks,
        has_guest_tools=True,
        agent_addresses=("10.0.0.11",),
        cpu_usage=0.2,
        allowed_operations=frozenset(
            {"pool_migrate", "migrate_send", "clean_shutdown", "hard_shutdown", "shutdown"}
        ),
        networks=(ref("net-lan"),),
    )
    return replace(facts, **changes)


def halted(vm: VMFacts) -> VMFacts:
    """`vm` shut down: resident nowhere, no load figure, its affinity kept."""
    return replace(vm, power_state="Halted", resident_on=NULL, cpu_usage=None)


def with_disk(vm: VMFacts, userdevice: str, **changes: object) -> VMFacts:
    disks = tuple(replace(d, **changes) if d.userdevice == userdevice else d for d in vm.disks)
    return replace(vm, disks=disks)


def plan_for(
    vm: VMFacts | None = None,
    pool: PoolFacts | None = None,
    *,
    to: str = "host3",
    sr: str | None = None,
    disks: dict[str, str] | None = None,
    mode: Mode | None = None,
    shutdown: ShutdownKind = "clean",
    throughput: float = 100.0,
) -> Plan:
    """make_plan with names: disks maps a userdevice to an SR name, like `disk:<n>=<sr>`."""
    vm = vm or make_vm()
    by_device = {d.userdevice: d.vdi_ref for d in vm.disks}
    disk_srs = {by_device[n]: ref(s) for n, s in (disks or {}).items()}
    return make_plan(
        vm,
        pool or make_pool(),
        ref(to),
        ref(sr) if sr else None,
        disk_srs,
        mode,
        shutdown,
        throughput,
    )
