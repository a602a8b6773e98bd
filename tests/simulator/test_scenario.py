"""Scenarios: the built-in demo pool has what the README's examples need; large pools scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.simulator import simulator
from bot.simulator.rules import free_memory, memory_needed
from bot.simulator.scenario import _large_args, describe, generate, read
from bot.simulator.wire import NULL_REF
from tests.support.pool import Pool


def test_demo_pool_matches_the_card(pool: Pool) -> None:
    """host1 is master; nfs1/nfs2 shared; vm01 runs on host1 with 2 local disks, 1 snapshot."""
    x = pool.x
    assert x.pool.get_master(x.pool.get_all()[0]) == pool.ref("host", "host1")
    assert {x.host.get_name_label(h) for h in x.host.get_all()} == {"host1", "host2", "host3"}
    for name in ("nfs1", "nfs2"):
        assert x.SR.get_shared(pool.ref("SR", name)) is True
    vm = pool.ref("VM", "vm01")
    assert x.VM.get_power_state(vm) == "Running"
    assert x.VM.get_resident_on(vm) == pool.ref("host", "host1")
    assert {x.VDI.get_SR(d) for d in pool.disks(vm)} == {pool.ref("SR", "host1-local")}
    assert len(pool.disks(vm)) == 2 and len(x.VM.get_snapshots(vm)) == 1
    assert not any(t.startswith("xo:no-bak") for t in x.VM.get_tags(vm))
    assert x.VM.get_power_state(pool.ref("VM", "archive01")) == "Halted"
    assert len(x.VM.get_by_name_label("web")) == 2
    big = pool.ref("VM", "bigdb")
    needed = int(x.VM.get_memory_static_max(big))
    assert needed > int(x.host.compute_free_memory(pool.ref("host", "host2")))
    ordinary = [
        r
        for r in x.VM.get_all_records().values()
        if not (r["is_a_template"] or r["is_a_snapshot"] or r["is_control_domain"])
    ]
    assert len(ordinary) >= 15


def test_large_pool_generator() -> None:
    """The generator builds 1,000 VMs on 16 hosts and 40 SRs, the same every time."""
    data = generate(vms=1000, hosts=16, srs=40)
    assert data == generate(vms=1000, hosts=16, srs=40)
    sim = simulator("large:vms=1000,hosts=16,srs=40")
    try:
        db = sim.db.tables
        assert len(db["host"]) == 16 and len(db["SR"]) == 40
        assert sum(1 for r in db["VM"].values() if not r["is_control_domain"]) == 1000
    finally:
        sim.close()


def test_scenario_from_yaml_and_json_files(tmp_path: Path) -> None:
    """A scenario file (YAML or JSON) given by path builds that pool."""
    spec = {
        "pool": "tiny",
        "hosts": [{"name": "a", "master": True}, {"name": "b"}],
        "srs": [{"name": "shared"}],
        "vms": [{"name": "one", "host": "a", "disks": [{"name": "root", "sr": "shared"}]}],
    }
    (tmp_path / "tiny.json").write_text(json.dumps(spec))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    assert read(str(tmp_path / "tiny.yaml")) == read(str(tmp_path / "tiny.json")) == spec
    sim = simulator(str(tmp_path / "tiny.yaml"))
    try:
        assert [r["name_label"] for r in sim.db.tables["pool"].values()] == ["tiny"]
    finally:
        sim.close()


def test_unknown_scenario_is_a_clear_error() -> None:
    """A scenario name that is neither built in nor a file says which ones exist."""
    with pytest.raises(ValueError, match="built-in: demo, large"):
        read("nope")


def test_the_demo_pool_says_what_is_hard_about_it() -> None:
    """`migrate-bot simulator --scenario demo` names the thick SR, the ISO library and the
    snapshots whose CD drives hold its ISOs."""
    lines = "\n".join(describe(simulator("demo")))
    assert "host3-local (lvm, thick, host3)" in lines
    assert "iso-library (iso, shared; no VM disks: debian-12.iso, virtio-win.iso)" in lines
    assert "vm01 (before-upgrade: debian-12.iso)" in lines
    assert "dmz (host1, host2)" in lines


def test_large_pool_with_vms_on_the_first_host() -> None:
    """`large:…,on_first=100`: exactly 100 VMs run on host01 beside its control domain, the
    other hosts have room for them on top of their own, every host keeps its control
    domain; the pool is the same every time, and without `on_first` as before."""
    assert _large_args("large:vms=500,hosts=8,srs=12,on_first=100") == {
        "vms": 500,
        "hosts": 8,
        "srs": 12,
        "on_first": 100,
    }
    spec = generate(vms=500, hosts=8, srs=12, on_first=100)
    assert spec == generate(vms=500, hosts=8, srs=12, on_first=100)
    assert generate(vms=500, hosts=8, srs=12) == generate(vms=500, hosts=8, srs=12, on_first=None)
    sim = simulator("large:vms=500,hosts=8,srs=12,on_first=100")
    try:
        hosts = list(sim.db.tables["host"])
        first = hosts[0]
        on_first = [v for v, r in sim.db.tables["VM"].items() if r["resident_on"] == first]
        guests = [v for v in on_first if not sim.db.get("VM", v)["is_control_domain"]]
        assert len(guests) == 100 and len(on_first) == 101
        assert set(sim.db.get("host", first)["resident_VMs"]) == set(on_first)
        for host in hosts:
            dom0 = sim.db.find("VM", resident_on=host, is_control_domain=True)
            assert len(dom0) == 1 and sim.db.get("VM", dom0[0])["power_state"] == "Running"
        moving = sum(memory_needed(sim, v) for v in guests)
        room = [free_memory(sim, h) for h in hosts[1:]]
        assert sum(room) > 1.4 * moving and min(room) > moving / len(room)
        assert free_memory(sim, first) > 0
    finally:
        sim.close()
    with pytest.raises(ValueError, match="on_first"):
        generate(vms=10, hosts=2, srs=4, on_first=11)
    with pytest.raises(ValueError, match="two hosts"):
        generate(vms=10, hosts=1, srs=2, on_first=5)


def test_paused_vms_stay_resident_suspended_ones_do_not(tmp_path: Path) -> None:
    """A Paused VM keeps its domain on its host (resident_on, resident_VMs, domid, memory);
    a Suspended one is resident nowhere, as xapi's force_state_reset leaves it."""
    spec = {
        "hosts": [{"name": "a", "master": True}, {"name": "b"}],
        "srs": [{"name": "shared"}],
        "vms": [
            {"name": "paused", "host": "a", "power": "Paused", "memory_gib": 8},
            {"name": "suspended", "host": "a", "power": "Suspended", "memory_gib": 8},
        ],
    }
    (tmp_path / "p.json").write_text(json.dumps(spec))
    sim = simulator(str(tmp_path / "p.json"))
    try:
        a = sim.db.find("host", name_label="a")[0]
        paused = sim.db.get("VM", sim.db.find("VM", name_label="paused")[0])
        suspended = sim.db.get("VM", sim.db.find("VM", name_label="suspended")[0])
        assert paused["resident_on"] == a and paused["domid"] != "-1"
        assert suspended["resident_on"] == NULL_REF and suspended["domid"] == "-1"
        resident = sim.db.get("host", a)["resident_VMs"]
        assert sim.db.find("VM", name_label="paused")[0] in resident
        assert sim.db.find("VM", name_label="suspended")[0] not in resident
        dom0 = sim.db.find("VM", resident_on=a, is_control_domain=True)[0]
        paused_ref = sim.db.find("VM", name_label="paused")[0]
        used = memory_needed(sim, dom0) + memory_needed(sim, paused_ref)
        assert free_memory(sim, a) == 64 * 1024**3 - used  # the suspended one takes none
    finally:
        sim.close()
