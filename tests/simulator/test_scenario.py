"""Scenarios: the built-in demo pool has what the README's examples need; large pools scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.simulator import simulator
from bot.simulator.scenario import describe, generate, read
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
