"""Facts and checklists on every release people run: the `old` scenario is XenServer 7.1.

Its xapi has no `cpu_usage` data source (only cpu0..cpuN), and its guests may be PV or run
tools that report a driver version only; xapi-notes.md §11 "Versions".
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import mean

import pytest

from bot.models import Severity, VMFacts
from bot.planning.command import MigrateCommand, parse
from bot.planning.planner import Planner, PlannerConfig, find_vm
from bot.planning.preview import Preview
from bot.simulator.scenario import read
from bot.xen import facts
from bot.xen.connection import Xapi, XenConfig
from tests.support.pool import Pool, scenario_pool

GUESTS = [
    {"name": "pv01", "host": "host1", "pv": True, "tools": False, "cpu": 0.3},
    {"name": "win2008", "host": "host1", "tools": "old", "cpu": 0.3},
]


@pytest.fixture
def old() -> Iterator[Pool]:
    data = read("old")
    yield from scenario_pool({**data, "timing": {}, "vms": data["vms"] + GUESTS})


@pytest.fixture
def xapi(old: Pool) -> Iterator[Xapi]:
    gateway = Xapi(XenConfig(old.server.url, "root", "secret", timeout=5))
    yield gateway
    gateway.close()


def vm_facts(xapi: Xapi, name: str) -> VMFacts:
    pool = xapi.call(facts.read_pool)
    return xapi.call(lambda x: facts.vm_facts(x, find_vm(x, name, pool)))


def preview(xapi: Xapi, text: str) -> Preview:
    command = parse(text)
    assert isinstance(command, MigrateCommand)
    return Planner(xapi, PlannerConfig()).preview(command)


def test_facts_on_the_old_pool(old: Pool, xapi: Xapi) -> None:
    """The pool, vm01's disks, snapshot and tools read as on a current pool; its load comes
    from cpu0..cpu3 since there is no cpu_usage."""
    pool = xapi.call(facts.read_pool)
    assert {h.name for h in pool.hosts.values()} == {"host1", "host2", "host3"}
    assert {s.name for s in pool.srs.values() if s.thick} == {"host3-local"}
    vm = vm_facts(xapi, "vm01")
    assert [d.name for d in vm.disks] == ["vm01 root", "vm01 data"]
    assert not any(d.cbt_enabled for d in vm.disks)
    assert len(vm.snapshots) == 1 and len(vm.snapshot_disks) == 2
    assert vm.has_guest_tools
    assert vm.cpu_usage == pytest.approx(0.35)


def test_the_load_is_the_mean_of_the_vcpus(old: Pool, xapi: Xapi, pool: Pool) -> None:
    """build01's load is the mean of its eight cpu<N> sources, not any one of them; a
    current pool (the demo) still gives it in one call to cpu_usage."""
    ref = old.ref("VM", "build01")
    per_vcpu = [old.x.VM.query_data_source(ref, f"cpu{n}") for n in range(8)]
    old.sim.calls.reset()
    load = vm_facts(xapi, "build01").cpu_usage
    assert load == pytest.approx(mean(per_vcpu)) and load not in per_vcpu
    assert old.sim.calls.counts["VM.query_data_source"] == 1 + 8  # cpu_usage, then cpu0..cpu7
    current = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=5))
    try:
        pool.sim.calls.reset()
        assert vm_facts(current, "vm01").cpu_usage == 0.35
        assert pool.sim.calls.counts["VM.query_data_source"] == 1
    finally:
        current.close()


def test_the_checklist_passes_and_says_the_load(xapi: Xapi) -> None:
    """`vm02 to host3` on the old pool: every check passes, the load among them."""
    checks = {c.key: c for c in preview(xapi, "vm02 to host3").checks}
    assert {c.severity for c in checks.values()} == {Severity.PASS}
    assert checks["load"].reason == "CPU at 20% (warning above 80%)"


def test_a_heavy_load_is_seen_on_the_old_pool(xapi: Xapi) -> None:
    """build01 at 95% gets the heavy-load warning from its vCPUs' mean."""
    load = {c.key: c for c in preview(xapi, "build01 to host3").checks}["load"]
    assert load.severity is Severity.WARNING and load.reason.startswith("CPU at 95%")


def test_tools_as_xapi_judges_them(xapi: Xapi) -> None:
    """A PV guest without a guest agent, and a guest whose old tools report only a driver
    version, may move live (xapi's check_op_for_feature lets both through); an HVM guest
    without tools may not."""
    for name in ("pv01", "win2008"):
        assert vm_facts(xapi, name).has_guest_tools, name
        tools = {c.key: c for c in preview(xapi, f"{name} to host2").checks}["guest_tools"]
        assert tools.severity is Severity.PASS, name
    assert not vm_facts(xapi, "legacy01").has_guest_tools
    checks = {c.key: c for c in preview(xapi, "legacy01 to host2 sr=nfs1 mode=live").checks}
    assert checks["guest_tools"].severity is Severity.BLOCKER
