"""bot/xen against the simulator: sessions, facts, the event watcher, failover."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.errors import XapiFailure, XapiUnavailable
from bot.planning.planner import find_vm
from bot.planning.resolve import Ambiguous, NotFound
from bot.xen import facts, ops
from bot.xen.connection import Xapi, XenConfig
from bot.xen.watch import TaskWatcher
from tests.support.pool import Pool, Ticker


@pytest.fixture
def xapi(pool: Pool) -> Iterator[Xapi]:
    gateway = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=5))
    yield gateway
    gateway.close()


def test_sessions_are_pooled_and_tagged(pool: Pool, xapi: Xapi) -> None:
    """Many calls reuse one session with originator migrate-bot; close() logs it out."""
    pool.sim.calls.reset()
    for _ in range(20):
        xapi.call(lambda x: x.pool.get_all())
    assert pool.sim.calls.counts["session.login_with_password"] == 1
    originators = [s["originator"] for s in pool.sim.db.tables["session"].values()]
    assert "migrate-bot" in originators
    xapi.close()
    assert "migrate-bot" not in [s["originator"] for s in pool.sim.db.tables["session"].values()]


def test_failures_become_our_errors(pool: Pool, xapi: Xapi) -> None:
    """XenAPI.Failure becomes XapiFailure; a wrong password says so."""
    with pytest.raises(XapiFailure) as failure:
        xapi.call(lambda x: x.VM.get_record("OpaqueRef:gone"))
    assert failure.value.code == "HANDLE_INVALID"
    wrong = Xapi(XenConfig(pool.server.url, "root", "nope", timeout=5))
    with pytest.raises(XapiFailure) as failure:
        wrong.call(lambda x: x.pool.get_all())
    assert failure.value.code == "SESSION_AUTHENTICATION_FAILED"


def test_unreachable_pool_is_unavailable(pool: Pool) -> None:
    """A pool that resets connections is XapiUnavailable, not a traceback."""
    pool.sim.faults.drop_until = pool.clock.now() + 60
    gateway = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=2))
    with pytest.raises(XapiUnavailable):
        gateway.call(lambda x: x.pool.get_all())


def test_follows_host_is_slave_to_the_new_master(pool: Pool, xapi: Xapi) -> None:
    """After the master moves, calls reconnect to the named master on the same port."""
    from bot.simulator.control import control

    xapi.call(lambda x: x.pool.get_all())
    control(pool.sim, {"fault": "move_master", "host": "host2"})
    master = xapi.call(lambda x: x.host.get_name_label(x.pool.get_master(x.pool.get_all()[0])))
    assert master == "host2"
    assert xapi.url == f"http://127.0.0.2:{pool.server.port}"


def test_pool_facts_in_seven_calls(pool: Pool, xapi: Xapi) -> None:
    """read_pool makes seven bulk calls (pool, host, host_metrics, PBD, SR, PIF, network)
    and knows masters, SR reachability, networks and memory."""
    xapi.call(lambda x: None)  # log in first (a login also reads the hosts' addresses)
    pool.sim.calls.reset()
    facts_ = xapi.call(facts.read_pool)
    assert pool.sim.calls.total == 7
    dmz = next(n for n in facts_.networks.values() if n.name == "dmz")
    assert {facts_.hosts[h].name for h in dmz.hosts} == {"host1", "host2"}
    hosts = {h.name: h for h in facts_.hosts.values()}
    assert hosts["host1"].is_master and not hosts["host2"].is_master
    srs = {s.name: s for s in facts_.srs.values()}
    assert srs["nfs1"].hosts == frozenset(facts_.hosts)
    assert srs["host1-local"].hosts == {hosts["host1"].ref}
    assert hosts["host2"].free_memory > 0


def test_vm_facts(pool: Pool, xapi: Xapi) -> None:
    """vm01's facts: two disks (no CD), one snapshot with its disks, tools, CPU load."""
    pool_facts = xapi.call(facts.read_pool)
    vm = xapi.call(lambda x: facts.vm_facts(x, find_vm(x, "vm01", pool_facts)))
    assert [d.userdevice for d in vm.disks] == ["0", "1"]
    assert [d.name for d in vm.disks] == ["vm01 root", "vm01 data"]
    assert vm.disks[0].virtual_size == 40 * 1024**3
    assert len(vm.snapshots) == 1 and len(vm.snapshots[0].vdi_refs) == 2
    assert {s.snapshot_of for s in vm.snapshot_disks} == {d.vdi_ref for d in vm.disks}
    assert vm.has_guest_tools and vm.cpu_usage == 0.35
    legacy = xapi.call(lambda x: facts.vm_facts(x, find_vm(x, "legacy01", pool_facts)))
    assert not legacy.has_guest_tools


def test_find_vm_by_uuid_did_you_mean_and_ambiguity(pool: Pool, xapi: Xapi) -> None:
    """A UUID finds the VM; a typo suggests the name; a shared name asks for the UUID."""
    pool_facts = xapi.call(facts.read_pool)
    uuid = pool.x.VM.get_uuid(pool.ref("VM", "vm02"))
    assert xapi.call(lambda x: find_vm(x, uuid, pool_facts)).name == "vm02"
    with pytest.raises(NotFound, match="did you mean vm01"):
        xapi.call(lambda x: find_vm(x, "vm0l", pool_facts))
    with pytest.raises(Ambiguous) as ambiguous:
        xapi.call(lambda x: find_vm(x, "web", pool_facts))
    assert "on host1" in str(ambiguous.value) and "on host2" in str(ambiguous.value)
    with pytest.raises(NotFound):
        xapi.call(lambda x: find_vm(x, "Debian Bookworm 12", pool_facts))  # a template


def test_vm_lookup_cost_does_not_grow_with_the_pool(pool: Pool, xapi: Xapi) -> None:
    """Finding vm01 and its facts never reads all VM records."""
    xapi.call(lambda x: None)  # log in first (a login also reads the hosts' addresses)
    pool.sim.calls.reset()
    pool_facts = xapi.call(facts.read_pool)
    xapi.call(lambda x: facts.vm_facts(x, find_vm(x, "vm01", pool_facts)))
    assert "VM.get_all_records" not in pool.sim.calls.counts
    assert pool.sim.calls.total < 30  # grows with the VM's own disks and snapshots only


def test_watcher_sees_progress_and_completion(pool: Pool, xapi: Xapi) -> None:
    """The watcher reports a task's progress and final record from event.from alone."""
    watcher = TaskWatcher(xapi, poll_seconds=1.0, batch_pause=0.01).start()
    try:
        vm, host = pool.ref("VM", "vm02"), pool.ref("host", "host3")
        task = xapi.call(lambda x: x.Async.VM.pool_migrate(vm, host, {}))
        seen: list[float] = []
        with Ticker(pool.clock):
            record = watcher.wait_task(task, lambda r: seen.append(float(r["progress"])))
        assert record is not None and record["status"] == "success"
        assert seen == sorted(seen) and len(seen) >= 2
        # at most the one probe for a task no event has shown yet; never one per change
        assert pool.sim.calls.counts["task.get_record"] <= 1
    finally:
        watcher.stop()


def test_watcher_reports_a_vanished_task(pool: Pool, xapi: Xapi) -> None:
    """A task lost to a master toolstack restart is reported as vanished (None)."""
    watcher = TaskWatcher(xapi, poll_seconds=1.0, retry_seconds=0.05).start()
    try:
        vm, host = pool.ref("VM", "vm02"), pool.ref("host", "host3")
        task = xapi.call(lambda x: x.Async.VM.pool_migrate(vm, host, {}))
        xapi.call(lambda x: ops.restart_agent(x, pool.x.host.get_uuid(pool.ref("host", "host1"))))
        with Ticker(pool.clock):
            assert watcher.wait_task(task) is None
    finally:
        watcher.stop()


def test_watcher_calls_stay_few_however_many_tasks_change(pool: Pool, xapi: Xapi) -> None:
    """With tasks changing all the time, the watcher asks about twice a second, not per change."""
    watcher = TaskWatcher(xapi, poll_seconds=1.0, batch_pause=0.5).start()
    try:
        vm, host = pool.ref("VM", "vm01"), pool.ref("host", "host3")
        sr = pool.ref("SR", "nfs1")
        task = xapi.call(
            lambda x: x.Async.VM.migrate_send(
                vm, pool.receive(host), True, {d: sr for d in pool.disks(vm)}, {}, {}
            )
        )
        started = time.monotonic()
        with Ticker(pool.clock, step=0.05, every=0.005):  # a change every 5 ms of real time
            time.sleep(1.0)
        rate = watcher.calls / (time.monotonic() - started)
        assert rate < 4, rate
        assert watcher.task(task) is not None
    finally:
        watcher.stop()


def test_the_callers_own_errors_give_the_session_back(pool: Pool) -> None:
    """Typos raise inside a call a hundred times: the pool of sessions is still whole."""
    small = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=2), max_sessions=2)
    try:

        def typo(x: object) -> None:
            raise LookupError("no VM 'vm0l'")

        for _ in range(100):
            with pytest.raises(LookupError):
                small.call(typo)
        assert small.call(lambda x: x.pool.get_name_label(x.pool.get_all()[0])) == "demo"
    finally:
        small.close()
