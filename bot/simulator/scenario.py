"""Pools from scenario files (YAML or JSON): the built-in `demo` and `old`, and a large-pool
generator.

A scenario names hosts, SRs and VMs in human units (GiB); `load()` turns it into xapi
records with every cross-reference in place (host <-> PBD <-> SR, VM <-> VBD <-> VDI,
snapshots, metrics, networks with their PIFs, a control domain per host). ISO libraries
hold ISOs a VM's CD drive (and its snapshots' drives) may point at. `xapi:` says which
release the hosts run (the schema's default: XCP-ng 8.3); what an older one lacks follows
from its API version.
"""

from __future__ import annotations

import json
import math
import random
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bot.clock import Clock
from bot.simulator import storage
from bot.simulator.faults import Timing
from bot.simulator.pool import Simulator
from bot.simulator.rules import RUNNING_STATES, refresh_allowed, refresh_host_metrics
from bot.simulator.schema import FIELDS, lacking
from bot.simulator.wire import NULL_REF, wire_int, wire_time

GIB = 1024**3
MIB = 1024**2
DOM0_MEMORY = 4 * GIB
CURRENT_TOOLS = {"major": "9", "minor": "4", "micro": "0", "build": "1"}
OLD_TOOLS = {"major": "6", "minor": "5", "micro": "0", "build": "76"}
# A paravirtualised guest (`pv: true`): booted by pygrub, VM_metrics.hvm false.
PV_BOOT = {"domain_type": "pv", "HVM_boot_policy": "", "PV_bootloader": "pygrub"}


def read(name_or_path: str) -> dict[str, Any]:
    """A built-in scenario by name (`demo`) or a YAML/JSON file by path."""
    path = Path(name_or_path)
    if path.exists():
        text = path.read_text()
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if name_or_path.startswith("large"):
        return generate(**_large_args(name_or_path))
    try:
        text = resources.files("bot.simulator").joinpath(f"scenarios/{name_or_path}.yaml")
        return yaml.safe_load(text.read_text())
    except FileNotFoundError:
        raise ValueError(f"no scenario {name_or_path!r} (built-in: demo, large, old)") from None


def _large_args(name: str) -> dict[str, int]:
    """`large` or `large:vms=5000,hosts=16,srs=40,on_first=100`."""
    _, _, spec = name.partition(":")
    return {k: int(v) for k, v in (p.split("=") for p in spec.split(",") if p)}


def simulator(
    name_or_path: str = "demo",
    clock: Clock | None = None,
    username: str = "root",
    password: str = "secret",
) -> Simulator:
    data = read(name_or_path)
    timing = Timing(**_timing(data.get("timing", {})))
    sim = Simulator(clock=clock, timing=timing, username=username, password=password)
    load(sim, data)
    return sim


def _release(spec: dict[str, Any]) -> dict[str, Any]:
    """The host fields of the release a scenario's `xapi:` names, e.g.
    `{API_version: [2, 6], software_version: {product_brand: XenServer, ...}}`; none (the
    schema's XCP-ng 8.3) when it names none."""
    if not spec:
        return {}
    major, minor = spec["API_version"]
    return {
        "API_version_major": str(major),
        "API_version_minor": str(minor),
        "software_version": {k: str(v) for k, v in spec["software_version"].items()},
    }


def _timing(spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    for key in ("storage", "memory"):
        if f"{key}_mb_per_s" in out:
            out[f"{key}_bytes_per_s"] = float(out.pop(f"{key}_mb_per_s")) * 1e6
    return out


def load(sim: Simulator, data: dict[str, Any]) -> None:
    with sim.db.lock:
        _Builder(sim).build(data)


class _Builder:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.db = sim.db
        self.hosts: dict[str, str] = {}
        self.srs: dict[str, str] = {}
        self.isos: dict[str, str] = {}
        self.networks: dict[str, str] = {}
        self.release: dict[str, Any] = {}  # host fields naming the xapi release

    def build(self, data: dict[str, Any]) -> None:
        self.db.tables["pool"].clear()
        self.release = _release(data.get("xapi", {}))
        host = {**FIELDS["host"], **self.release}
        self.db.lacking = lacking((int(host["API_version_major"]), int(host["API_version_minor"])))
        self.network = self.db.create(
            "network", name_label="Pool-wide network associated with eth0", bridge="xenbr0"
        )
        for index, host in enumerate(data["hosts"]):
            self._host(index, host)
        masters = [h["name"] for h in data["hosts"] if h.get("master")] or [
            data["hosts"][0]["name"]
        ]
        self.sim.pool_ref = self.db.create(
            "pool",
            name_label=data.get("pool", "pool"),
            master=self.hosts[masters[0]],
            ha_enabled=bool(data.get("ha_enabled", False)),
        )
        for network in data.get("networks", []):
            self._network(network)
        for sr in data["srs"]:
            self._sr(sr)
        default = data.get("default_sr")
        if default:
            self.db.update("pool", self.sim.pool_ref, default_SR=self.srs[default])
        for host in self.hosts.values():
            self._vm(
                {"name": "Control domain", "memory_gib": DOM0_MEMORY / GIB, "tools": True},
                host=host,
                control=True,
            )
        for vm in data.get("vms", []):
            self._vm(vm)
        for template in data.get("templates", []):
            self._vm({"name": template, "power": "Halted"}, template=True)
        for host in self.hosts.values():  # the many end of VM.resident_on, as xapi keeps it
            resident = [v for v, r in self.db.tables["VM"].items() if r["resident_on"] == host]
            self.db.update("host", host, resident_VMs=resident)
            refresh_allowed(self.sim, "host", host)
        refresh_host_metrics(self.sim, *self.hosts.values())

    def _host(self, index: int, spec: dict[str, Any]) -> None:
        address = spec.get("address", f"127.0.0.{index + 1}")
        metrics = self.db.create(
            "host_metrics",
            memory_total=wire_int(int(spec.get("memory_gib", 64) * GIB)),
            last_updated=wire_time(self.sim.now()),
        )
        start = f"{self.sim.now() - 86400:.0f}."
        ref = self.db.create(
            "host",
            name_label=spec["name"],
            hostname=spec["name"],
            address=address,
            metrics=metrics,
            enabled=spec.get("enabled", True),
            other_config={"agent_start_time": start, "boot_time": start},
            **self.release,
        )
        self.hosts[spec["name"]] = ref
        self._pif(ref, self.network, "eth0", address)

    def _pif(self, host: str, network: str, device: str, address: str = "") -> None:
        pif = self.db.create(
            "PIF", host=host, network=network, device=device, IP=address, management=bool(address)
        )
        self.db.update("host", host, PIFs=[*self.db.get("host", host)["PIFs"], pif])
        self.db.update("network", network, PIFs=[*self.db.get("network", network)["PIFs"], pif])

    def _network(self, spec: dict[str, Any]) -> None:
        """A network on some hosts only (`hosts: []`: internal, everywhere, no PIF)."""
        ref = self.db.create("network", name_label=spec["name"], bridge=f"xapi{len(self.networks)}")
        for host in spec.get("hosts", []):
            self._pif(self.hosts[host], ref, spec.get("device", "eth1"))
        self.networks[spec["name"]] = ref

    def _sr(self, spec: dict[str, Any]) -> None:
        shared = spec.get("shared", "host" not in spec)
        kind = spec.get("type", "nfs" if shared else "ext")
        writable = kind not in storage.NO_DISKS and not spec.get("read_only", False)
        ref = self.db.create(
            "SR",
            name_label=spec["name"],
            type=kind,
            content_type={"iso": "iso", "udev": "disk"}.get(kind, "user"),
            shared=shared,
            physical_size=wire_int(int(spec.get("size_gib", 1000) * GIB)),
            physical_utilisation=wire_int(int(spec.get("used_gib", 0) * GIB)),
            allowed_operations=[*(storage.WRITABLE_SR_OPS if writable else []), "scan"],
        )
        hosts = list(self.hosts.values()) if shared else [self.hosts[spec["host"]]]
        pbds = [
            self.db.create("PBD", host=h, SR=ref, currently_attached=spec.get("attached", True))
            for h in hosts
        ]
        self.db.update("SR", ref, PBDs=pbds)
        for h, pbd in zip(hosts, pbds, strict=True):
            self.db.update("host", h, PBDs=[*self.db.get("host", h)["PBDs"], pbd])
        self.srs[spec["name"]] = ref
        for iso in spec.get("isos", []):
            self.isos[iso] = storage.add_vdi(
                self.sim,
                ref,
                name_label=iso,
                virtual_size=wire_int(700 * MIB),
                physical_utilisation=wire_int(700 * MIB),
                read_only=True,
            )

    def _vdi(self, spec: dict[str, Any], sr: str, **extra: Any) -> str:
        size = int(spec.get("size_gib", 10) * GIB)
        used = int(spec.get("used_gib", spec.get("size_gib", 10) / 2) * GIB)
        return storage.add_vdi(
            self.sim,
            sr,
            name_label=spec.get("name", "disk"),
            virtual_size=wire_int(size),
            physical_utilisation=wire_int(used),
            cbt_enabled=bool(spec.get("cbt", False)),
            **extra,
        )

    def _vm(
        self,
        spec: dict[str, Any],
        host: str | None = None,
        control: bool = False,
        template: bool = False,
    ) -> str:
        host = host or (self.hosts[spec["host"]] if spec.get("host") else NULL_REF)
        power = spec.get("power", "Running" if host != NULL_REF else "Halted")
        # A Running or Paused VM has a domain on its host; a Suspended one, like a Halted
        # one, is resident nowhere (`xapi_vm_lifecycle.ml`, force_state_reset: resident_on
        # NULL and domid -1 for Halted and Suspended).
        live = power in RUNNING_STATES and host != NULL_REF
        memory = wire_int(int(spec.get("memory_gib", 2) * GIB))
        vcpus = str(spec.get("vcpus", 2))
        pv = bool(spec.get("pv", False))
        ref = self.db.create(
            "VM",
            name_label=spec["name"],
            name_description=spec.get("description", ""),
            power_state=power,
            is_a_template=template,
            is_control_domain=control,
            resident_on=host if live else NULL_REF,
            affinity=self.hosts.get(spec.get("affinity", ""), NULL_REF),
            memory_static_max=memory,
            memory_dynamic_max=memory,
            memory_target=memory,
            memory_dynamic_min=memory,
            memory_static_min=wire_int(512 * MIB),
            memory_overhead=wire_int(int(spec.get("memory_gib", 2) * GIB) // 128),
            VCPUs_max=vcpus,
            VCPUs_at_startup=vcpus,
            domid="0" if control else ("1" if live else "-1"),
            tags=list(spec.get("tags", [])),
            other_config=dict(spec.get("other_config", {})),
            platform={"nomigrate": "true"} if spec.get("nomigrate") else {},
            **(PV_BOOT if pv else {}),
        )
        metrics = self.db.create("VM_metrics", VCPUs_number=vcpus, memory_actual=memory, hvm=not pv)
        tools = spec.get("tools", True)
        guest = (
            self._guest_metrics(spec, power == "Running") if tools and not template else NULL_REF
        )
        self.db.update("VM", ref, metrics=metrics, guest_metrics=guest)
        if power == "Running" and not control:
            self.sim.load[ref] = float(spec.get("cpu", 0.1))
        for position, disk in enumerate(spec.get("disks", [])):
            storage.add_vbd(self.sim, ref, self._vdi(disk, self.srs[disk["sr"]]), position)
        if spec.get("cd"):
            storage.add_vbd(self.sim, ref, self._iso(spec["cd"]), 3, kind="CD")
        networks = [self.networks[n] for n in spec.get("networks", [])] or [self.network]
        vifs = [
            self.db.create(
                "VIF",
                VM=ref,
                network=network,
                device=str(index),
                MAC=_mac(ref, index),
                currently_attached=power == "Running",
            )
            for index, network in enumerate(networks)
        ]
        self.db.update("VM", ref, VIFs=vifs)
        for network, vif in zip(networks, vifs, strict=True):
            self.db.update("network", network, VIFs=[*self.db.get("network", network)["VIFs"], vif])
        for snapshot in spec.get("snapshots", []):
            self._snapshot(ref, snapshot if isinstance(snapshot, dict) else {"name": snapshot})
        refresh_allowed(self.sim, "VM", ref)
        return ref

    def _guest_metrics(self, spec: dict[str, Any], live: bool) -> str:
        """Current tools, or with `tools: old` only a driver version (no PV_drivers_detected,
        no feature flags): what xapi goes by for tools older than XenServer 7.0."""
        old = spec.get("tools") == "old"
        return self.db.create(
            "VM_guest_metrics",
            PV_drivers_detected=not old,
            PV_drivers_up_to_date=not old,
            PV_drivers_version=OLD_TOOLS if old else CURRENT_TOOLS,
            other={} if old else {"feature-suspend": "1", "feature-shutdown": "1"},
            os_version={"name": spec.get("os", "Debian GNU/Linux 12")},
            networks={"0/ip": spec.get("ip") or self._address()},
            live=live,
            last_updated=wire_time(self.sim.now() - 3600),
        )

    def _address(self) -> str:
        """A guest's IPv4 address, unique in the pool: 10.0.x.y in VM creation order."""
        n = len(self.db.tables["VM_guest_metrics"])
        return f"10.0.{n // 250}.{n % 250 + 2}"

    def _iso(self, cd: object) -> str:
        """`cd: true` is an empty drive; `cd: <iso name>` has that ISO of a library in it."""
        return self.isos[cd] if isinstance(cd, str) else NULL_REF

    def _snapshot(self, vm: str, spec: dict[str, Any]) -> None:
        """A snapshot taken a week ago; `cd:` names the ISO its drive held then, if other."""
        cd = self._iso(spec["cd"]) if "cd" in spec else None
        storage.snapshot(self.sim, vm, spec["name"], self.sim.now() - 7 * 86400, cd)


def describe(sim: Simulator) -> list[str]:
    """What a person trying the pool wants to know first: hosts, the xapi release, SRs (thick,
    ISO libraries), networks on some hosts only, VMs whose snapshots' drives hold an ISO."""
    db = sim.db
    names = {ref: h["name_label"] for ref, h in db.tables["host"].items()}
    master = db.get("pool", sim.pool_ref)["master"]
    release = db.get("host", master)
    brand = release["software_version"]
    lines = [
        "hosts: " + ", ".join(n + (" (master)" if r == master else "") for r, n in names.items()),
        f"xapi: {brand.get('product_brand', '?')} {brand.get('product_version', '?')} "
        f"(API {release['API_version_major']}.{release['API_version_minor']})",
    ]
    srs = []
    for ref, sr in db.tables["SR"].items():
        where = (
            "shared"
            if sr["shared"]
            else ", ".join(names[db.get("PBD", p)["host"]] for p in sr["PBDs"])
        )
        kind = sr["type"] + (", thick" if storage.thick(sim, ref) else "")
        if storage.takes_new_disks(sim, ref):
            srs.append(f"{sr['name_label']} ({kind}, {where})")
        else:
            held = [db.get("VDI", v)["name_label"] for v in sr["VDIs"]]
            srs.append(
                f"{sr['name_label']} ({kind}, {where}; no VM disks{': ' if held else ''}"
                f"{', '.join(held)})"
            )
    lines.append("SRs: " + "; ".join(srs))
    partial = [
        f"{n['name_label']} ({', '.join(names[db.get('PIF', p)['host']] for p in n['PIFs'])})"
        for n in db.tables["network"].values()
        if n["PIFs"] and len(n["PIFs"]) < len(names)
    ]
    if partial:
        lines.append("networks on some hosts only: " + ", ".join(partial))
    isos = [
        f"{vm['name_label']} ({snap['name_label']}: {db.get('VDI', vbd['VDI'])['name_label']})"
        for vm in db.tables["VM"].values()
        for snap in (db.get("VM", s) for s in vm["snapshots"])
        for vbd in (db.get("VBD", v) for v in snap["VBDs"])
        if vbd["type"] == "CD" and db.exists("VDI", vbd["VDI"])
    ]
    if isos:
        lines.append("snapshots whose CD drive holds a library ISO: " + ", ".join(isos))
    return lines


def _mac(ref: str, index: int = 0) -> str:
    digits = ref.replace("-", "")[-8:]
    return f"02:{index:02x}:" + ":".join(digits[i : i + 2] for i in range(0, 8, 2))


def generate(
    vms: int = 1000, hosts: int = 16, srs: int = 40, seed: int = 1, on_first: int | None = None
) -> dict[str, Any]:
    """A large, deterministic pool for benchmarks: local + shared SRs, VMs spread over hosts.

    With `on_first`, that many VMs run on the first host (`host01`, the master) and the
    rest spread over the others (an evacuation benchmark): every host gets the same memory,
    enough for the first host's VMs and for the others to take them in on top of their
    own. Each host keeps its control domain (a real pool's dom0, `is_control_domain`,
    resident on its host), which an evacuation must leave alone. Without `on_first` the
    pool is the same as ever."""
    if on_first is not None and not 0 <= on_first <= vms:
        raise ValueError(f"on_first={on_first}: between 0 and vms={vms}")
    if on_first is not None and hosts < 2:
        raise ValueError("on_first needs at least two hosts: the others take its VMs")
    rng = random.Random(seed)
    host_names = [f"host{i + 1:02d}" for i in range(hosts)]
    local = min(hosts, srs // 2)
    shared = [f"nfs{i + 1:02d}" for i in range(srs - local)]
    sr_specs = [{"name": name, "size_gib": 20000, "used_gib": 2000} for name in shared]
    sr_specs += [
        {"name": f"{host_names[i]}-local", "host": host_names[i], "size_gib": 4000}
        for i in range(local)
    ]
    vm_specs = []
    for i in range(vms):
        running = rng.random() < 0.8
        sr = rng.choice(shared)
        host: str | None = host_names[i % hosts] if running else None
        if on_first is not None and i < on_first:
            host = host_names[0]
        elif on_first is not None:
            host = host_names[1 + i % (hosts - 1)] if running else None
        vm_specs.append(
            {
                "name": f"vm{i + 1:05d}",
                "host": host,
                "memory_gib": rng.choice([1, 2, 4]),
                "cpu": round(rng.random() * 0.6, 2),
                "disks": [{"name": f"vm{i + 1:05d} root", "size_gib": 20, "used_gib": 8, "sr": sr}],
            }
        )
    memory = max(512, vms * 4 // hosts)
    if on_first is not None:
        memory = max(memory, _room_for_evacuation(vm_specs, host_names))
    return {
        "pool": f"large-{vms}",
        "hosts": [
            {"name": n, "memory_gib": memory, "master": i == 0} for i, n in enumerate(host_names)
        ],
        "srs": sr_specs,
        "vms": vm_specs,
    }


def _room_for_evacuation(vm_specs: list[dict[str, Any]], host_names: list[str]) -> int:
    """GiB per host so that the first host holds its VMs and the other hosts, besides their
    own, hold the first host's VMs spread evenly (half as much again as a margin: whole
    VMs do not split evenly), each host with its control domain; counted as the simulator
    counts memory (`memory_static_max` plus its 1/128 overhead), rounded up to 64 GiB."""
    dom0 = DOM0_MEMORY / GIB * (1 + 1 / 128)
    load = dict.fromkeys(host_names, dom0)
    for spec in vm_specs:
        if spec["host"]:
            load[spec["host"]] += spec["memory_gib"] * (1 + 1 / 128)
    first, others = host_names[0], host_names[1:]
    moving = load[first] - dom0
    need = max(load[first], max(load[h] for h in others) + 1.5 * moving / len(others) + 8)
    return int(math.ceil(need / 64) * 64)
