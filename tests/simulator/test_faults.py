"""Each injected fault, and what the real XenAPI client sees of it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
import XenAPI

from bot.simulator.faults import EMU_MANAGER_FAILURE
from tests.support.pool import Pool


def test_fail_next_migration_at_percent(pool: Pool) -> None:
    """The task fails at the chosen progress with the chosen error; the VM stays put."""
    vm, host3, nfs2 = pool.ref("VM", "vm02"), pool.ref("host", "host3"), pool.ref("SR", "nfs2")
    pool.sim.faults.fail_next_migration(at=0.4, error=["VDI_IO_ERROR", "Device I/O errors"])
    task = pool.x.Async.VM.migrate_send(
        vm, pool.receive(host3), True, {d: nfs2 for d in pool.disks(vm)}, {}, {}
    )
    record = pool.run(task, step=0.5)
    assert record["status"] == "failure"
    assert record["error_info"] == ["VDI_IO_ERROR", "Device I/O errors"]
    assert record["progress"] == 1.0
    assert pool.x.VM.get_resident_on(vm) == pool.ref("host", "host2")
    assert {pool.x.VDI.get_SR(d) for d in pool.disks(vm)} == {pool.ref("SR", "nfs1")}
    assert pool.x.VM.get_current_operations(vm) == {}
    assert pool.x.host.get_current_operations(host3) == {}


def test_failure_happens_at_the_chosen_progress(pool: Pool) -> None:
    """Progress watched through events rises to just below the failure point, then fails."""
    vm = pool.ref("VM", "vm02")
    pool.sim.faults.fail_next_migration(at=0.5, vm=vm)
    token = pool.x.event_from(["task"], "", 0.0)["token"]
    task = pool.x.Async.VM.pool_migrate(vm, pool.ref("host", "host1"), {})
    progress = []
    while pool.x.task.get_status(task) == "pending":
        pool.clock.advance(0.05)
        batch = pool.x.event_from(["task"], token, 0.0)
        token = batch["token"]
        progress += [
            e["snapshot"]["progress"]
            for e in batch["events"]
            if e["snapshot"]["status"] == "pending"
        ]
    assert 0.4 < max(progress) < 0.5
    assert pool.x.task.get_status(task) == "failure"


def test_heavily_loaded_vm_fails_live_migration(pool: Pool) -> None:
    """build01 (95 % CPU) fails live migration with xenopsd's emu-manager error."""
    vm = pool.ref("VM", "build01")
    record = pool.run(pool.x.Async.VM.pool_migrate(vm, pool.ref("host", "host3"), {}))
    assert record["error_info"] == ["INTERNAL_ERROR", EMU_MANAGER_FAILURE]
    assert pool.x.VM.get_resident_on(vm) == pool.ref("host", "host2")
    pool.sim.load[vm] = 0.3
    record = pool.run(pool.x.Async.VM.pool_migrate(vm, pool.ref("host", "host3"), {}))
    assert record["status"] == "success"


def _stuck_migration(pool: Pool) -> tuple[str, str]:
    """vm01 to host2, live, leaving its operation behind; (the VM, the migration's task)."""
    vm, host2, nfs1 = pool.ref("VM", "vm01"), pool.ref("host", "host2"), pool.ref("SR", "nfs1")
    pool.sim.faults.stick_next_migration(vm)
    task = pool.x.Async.VM.migrate_send(
        vm, pool.receive(host2), True, {d: nfs1 for d in pool.disks(vm)}, {}, {}
    )
    assert pool.run(task, step=10)["status"] == "success"
    assert pool.x.VM.get_current_operations(vm) == {task: "migrate_send"}
    assert pool.x.host.get_current_operations(host2) == {task: "vm_migrate"}
    assert pool.x.VM.get_allowed_operations(vm) == []
    return vm, task


def _restart(pool: Pool, host: str) -> XenAPI.Session:
    pool.x.host.restart_agent(host)
    pool.clock.advance(pool.sim.timing.agent_down_s + 1)
    return pool.login()  # a master's restart ends every session


def test_a_stuck_operation_blocks_the_vm(pool: Pool) -> None:
    """The VM keeps 'migrate_send' after its task ended: the next operation waits, fails."""
    vm, task = _stuck_migration(pool)
    pool.sim.timing.lock_wait_s = 5
    blocked = pool.run(pool.x.Async.VM.clean_shutdown(vm))
    assert blocked["error_info"] == ["OTHER_OPERATION_IN_PROGRESS", "VM", vm, "migrate_send", task]


def test_a_members_restart_clears_a_leftover_whose_task_is_gone(pool: Pool) -> None:
    """The task was destroyed (as the bot does): restarting host3, which has nothing to do
    with it, scrubs the leftover pool-wide (xapi's Pool.hello); the master is untouched."""
    vm, task = _stuck_migration(pool)
    pool.x.task.destroy(task)
    master = pool.ref("host", "host1")
    started = float(pool.x.host.get_other_config(master)["agent_start_time"])
    x = _restart(pool, pool.ref("host", "host3")).xenapi
    assert x.VM.get_current_operations(vm) == {}
    assert x.host.get_current_operations(pool.ref("host", "host2")) == {}
    assert float(x.host.get_other_config(master)["agent_start_time"]) == started


def test_a_leftover_whose_task_record_exists_needs_the_masters_restart(pool: Pool) -> None:
    """The finished task was not destroyed: a member's restart leaves the leftover; the
    master's, which loses every task, clears it and restarts the master's agent."""
    vm, task = _stuck_migration(pool)
    x = _restart(pool, pool.ref("host", "host3")).xenapi
    assert x.VM.get_current_operations(vm) == {task: "migrate_send"}
    master = pool.ref("host", "host1")
    started = float(x.host.get_other_config(master)["agent_start_time"])
    pool.x.host.restart_agent(master)
    with pytest.raises((ConnectionError, OSError)):
        pool.x.VM.get_current_operations(vm)  # the agent is down
    pool.clock.advance(pool.sim.timing.agent_down_s + 1)
    again = pool.login().xenapi
    assert again.VM.get_current_operations(vm) == {}
    assert again.host.get_current_operations(pool.ref("host", "host2")) == {}
    assert float(again.host.get_other_config(master)["agent_start_time"]) > started
    assert again.host.get_enabled(master) is True


def test_a_members_restart_ends_the_tasks_resident_on_it(pool: Pool) -> None:
    """A live move of vm02 runs on its host (host2, as xapi forwards it): host2's restart
    ends that task; host3's restart would not have."""
    vm, host2 = pool.ref("VM", "vm02"), pool.ref("host", "host2")
    pool.sim.timing.memory_bytes_per_s = 1e7  # minutes: it outlasts the restarts
    task = pool.x.Async.VM.pool_migrate(vm, pool.ref("host", "host3"), {})
    assert pool.x.task.get_resident_on(task) == host2
    x = _restart(pool, pool.ref("host", "host3")).xenapi
    assert x.task.get_status(task) == "pending"
    x = _restart(pool, host2).xenapi
    with pytest.raises(XenAPI.Failure) as failure:
        x.task.get_status(task)
    assert failure.value.details[0] == "HANDLE_INVALID"
    assert x.VM.get_current_operations(vm) == {}


def test_master_agent_restart_ends_sessions_and_tasks(pool: Pool) -> None:
    """After the master's agent restarts, old tasks are HANDLE_INVALID and sessions invalid."""
    vm = pool.ref("VM", "vm02")
    task = pool.x.Async.VM.pool_migrate(vm, pool.ref("host", "host3"), {})
    proxy = pool.raw()
    session = proxy.session.login_with_password("root", "secret")["Value"]
    pool.x.host.restart_agent(pool.ref("host", "host1"))
    pool.clock.advance(pool.sim.timing.agent_down_s + 1)
    assert proxy.pool.get_all(session)["ErrorDescription"][0] == "SESSION_INVALID"
    fresh = pool.login()
    with pytest.raises(XenAPI.Failure) as failure:
        fresh.xenapi.task.get_status(task)
    assert failure.value.details == ["HANDLE_INVALID", "task", task]
    assert fresh.xenapi.VM.get_current_operations(vm) == {}


def test_master_moves_host_is_slave(pool: Pool) -> None:
    """After the master moves, the old master answers HOST_IS_SLAVE with the new address."""
    from bot.simulator.control import control

    control(pool.sim, {"fault": "move_master", "host": "host2"})
    old = XenAPI.Session(pool.server.url)
    pool.opened.append(old)
    with pytest.raises(XenAPI.Failure) as failure:
        old.xenapi.login_with_password("root", "secret", "1.0", "tests")
    assert failure.value.details == ["HOST_IS_SLAVE", "127.0.0.2"]
    new = pool.login(f"http://{failure.value.details[1]}:{pool.server.port}")
    master = new.xenapi.pool.get_master(new.xenapi.pool.get_all()[0])
    assert new.xenapi.host.get_name_label(master) == "host2"
    with pytest.raises(XenAPI.Failure) as failure:
        pool.x.VM.get_all()  # the old session re-logs in and meets HOST_IS_SLAVE
    assert failure.value.details[0] == "HOST_IS_SLAVE"


def test_hanging_connection_until_client_timeout(pool: Pool) -> None:
    """In hang mode the server never answers; a client with a timeout gives up."""
    import xmlrpc.client

    class Timeout(xmlrpc.client.Transport):
        def make_connection(self, host):  # type: ignore[no-untyped-def]
            connection = super().make_connection(host)
            connection.timeout = 0.3
            return connection

    pool.sim.faults.drop_mode = "hang"
    pool.sim.faults.drop_until = pool.clock.now() + 60
    session = XenAPI.Session(pool.server.url, transport=Timeout())
    pool.opened.append(session)
    with pytest.raises(TimeoutError):
        session.xenapi.login_with_password("root", "secret", "1.0", "tests")
    pool.clock.advance(61)


def test_latency_is_added_to_every_call(pool: Pool) -> None:
    """A per-call latency slows each call by about that much (real time, for benchmarks)."""
    pool.sim.faults.latency_s = 0.05
    started = time.perf_counter()
    for _ in range(4):
        pool.x.pool.get_all()
    assert time.perf_counter() - started >= 0.2


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)


def test_control_endpoint_over_http(pool: Pool) -> None:
    """Faults can be set from another process; the call log is readable over HTTP."""
    assert _post(pool.server.url + "/control", {"fault": "set_load", "vm": "vm02", "cpu": 0.97})
    assert pool.x.VM.query_data_source(pool.ref("VM", "vm02"), "cpu_usage") == 0.97
    _post(pool.server.url + "/control", {"fault": "stick_next_migration", "vm": "vm02"})
    assert [r.vm for r in pool.sim.faults.stick_rules] == [pool.ref("VM", "vm02")]
    with urllib.request.urlopen(pool.server.url + "/control/calls", timeout=5) as answer:
        calls = json.load(answer)
    assert calls["counts"]["VM.query_data_source"] == 1
    request = urllib.request.Request(
        pool.server.url + "/control", data=b'{"fault": "meteor"}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    error.value.close()
    assert error.value.code == 400


def test_cli_serves_the_demo_pool() -> None:
    """`migrate-bot simulator` prints the URL first; XenAPI can log in and list VMs there."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "simulator",
            "--scenario",
            "demo",
            "--port",
            "0",
            "--username",
            "root",
            "--password",
            "s3cret",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:")
        session = XenAPI.Session(url)
        session.xenapi.login_with_password("root", "s3cret", "1.0", "tests")
        names = {session.xenapi.VM.get_name_label(v) for v in session.xenapi.VM.get_all()}
        assert {"vm01", "archive01", "bigdb", "web"} <= names
        session.xenapi.session.logout()
        session("close")()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()  # type: ignore[union-attr]
    assert process.returncode == 0
