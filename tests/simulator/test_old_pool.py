"""The `old` scenario: a XenServer 7.1 pool, whose xapi lacks what later releases added."""

from __future__ import annotations

from collections.abc import Iterator
from statistics import mean

import pytest
import XenAPI

from bot.simulator.scenario import read
from tests.support.pool import Pool, scenario_pool


@pytest.fixture
def old() -> Iterator[Pool]:
    yield from scenario_pool({**read("old"), "timing": {}})


def test_hosts_report_xenserver_7_1(old: Pool) -> None:
    """Every host says API 2.6 and XenServer 7.1.2, as `host.get_record` shows it."""
    for ref in old.x.host.get_all():
        record = old.x.host.get_record(ref)
        assert (record["API_version_major"], record["API_version_minor"]) == ("2", "6")
        assert record["software_version"]["product_brand"] == "XenServer"
        assert record["software_version"]["product_version"] == "7.1.2"


def test_no_cpu_usage_only_one_source_per_vcpu(old: Pool, pool: Pool) -> None:
    """`cpu_usage` is missing as rrdd says so; cpu0..cpu3 of a 4-vCPU VM average its load,
    busiest first; cpu4 does not exist. A current pool (the demo) answers both."""
    vm = old.ref("VM", "vm01")
    with pytest.raises(XenAPI.Failure) as missing:
        old.x.VM.query_data_source(vm, "cpu_usage")
    assert missing.value.details == [
        "INTERNAL_ERROR",
        "Rrd_interface.Rrdd_error(Datasource_missing cpu_usage)",
    ]
    per_vcpu = [old.x.VM.query_data_source(vm, f"cpu{n}") for n in range(4)]
    assert mean(per_vcpu) == pytest.approx(0.35)
    assert per_vcpu == sorted(per_vcpu, reverse=True) and per_vcpu[0] > per_vcpu[-1]
    with pytest.raises(XenAPI.Failure):
        old.x.VM.query_data_source(vm, "cpu4")
    current = pool.ref("VM", "vm01")
    assert pool.x.VM.query_data_source(current, "cpu_usage") == 0.35
    assert mean(pool.x.VM.query_data_source(current, f"cpu{n}") for n in range(4)) == (
        pytest.approx(0.35)
    )


def test_pv_guests_and_old_tools() -> None:
    """`pv: true` boots with pygrub (VM_metrics.hvm false); `tools: old` reports only a
    driver version: no PV_drivers_detected, no feature flags."""
    data = {
        **read("old"),
        "timing": {},
        "vms": [
            {"name": "pv01", "host": "host1", "pv": True, "tools": False},
            {"name": "win2008", "host": "host1", "tools": "old"},
        ],
    }
    for p in scenario_pool(data):
        pv = p.x.VM.get_record(p.ref("VM", "pv01"))
        assert pv["domain_type"] == "pv" and pv["PV_bootloader"] == "pygrub"
        assert p.x.VM_metrics.get_hvm(pv["metrics"]) is False
        assert pv["guest_metrics"] == "OpaqueRef:NULL"
        win = p.x.VM.get_record(p.ref("VM", "win2008"))
        assert p.x.VM_metrics.get_hvm(win["metrics"]) is True
        tools = p.x.VM_guest_metrics.get_record(win["guest_metrics"])
        assert tools["PV_drivers_detected"] is False and tools["other"] == {}
        assert {"major", "minor"} <= set(tools["PV_drivers_version"])
        for name in ("pv01", "win2008"):  # xapi's feature check accepts both: they move live
            vm = p.ref("VM", name)
            assert "pool_migrate" in p.x.VM.get_allowed_operations(vm)
            task = p.x.Async.VM.pool_migrate(vm, p.ref("host", "host2"), {})
            assert p.run(task)["status"] == "success", name


def test_vdis_have_no_cbt_enabled(old: Pool, pool: Pool) -> None:
    """XenServer 7.3 brought VDI.cbt_enabled: on 7.1 records and events leave it out and its
    getter is unknown, and a storage migration works as ever. The demo pool has it."""
    vm, vdi = old.ref("VM", "vm02"), old.disks(old.ref("VM", "vm02"))[0]
    assert "cbt_enabled" not in old.x.VDI.get_record(vdi)
    assert not any("cbt_enabled" in r for r in old.x.VDI.get_all_records().values())
    assert not any(
        "cbt_enabled" in e["snapshot"] for e in old.x.event_from(["vdi"], "", 0.0)["events"]
    )
    with pytest.raises(XenAPI.Failure) as unknown:
        old.x.VDI.get_cbt_enabled(vdi)
    assert unknown.value.details == ["MESSAGE_METHOD_UNKNOWN", "VDI.get_cbt_enabled"]
    receive, nfs2 = old.receive(old.ref("host", "host3")), old.ref("SR", "nfs2")
    task = old.x.Async.VM.migrate_send(vm, receive, True, {vdi: nfs2}, {}, {})
    assert old.run(task)["status"] == "success"
    assert pool.x.VDI.get_cbt_enabled(pool.disks(pool.ref("VM", "vm02"))[0]) is False
