"""bot/xen under real faults: failed re-logins, tasks lost without a word, a dead master,
a task xapi will not let us destroy. Through the real XenAPI client, over XML-RPC."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import XenAPI

from bot.errors import XapiFailure, XapiUnavailable
from bot.simulator.services import move_master
from bot.slackdouble.driver import until
from bot.xen import ops
from bot.xen.connection import Xapi, XenConfig
from bot.xen.gateway import Xen
from bot.xen.watch import TaskWatcher
from tests.support.pool import Pool, Ticker

MASTER, HOST2, HOST3 = "127.0.0.1", "127.0.0.2", "127.0.0.3"


@pytest.fixture
def xapi(pool: Pool) -> Iterator[Xapi]:
    gateway = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=5))
    yield gateway
    gateway.close()


@pytest.fixture
def watcher(xapi: Xapi) -> Iterator[TaskWatcher]:
    started = TaskWatcher(xapi, poll_seconds=1.0, retry_seconds=0.05, batch_pause=0.01).start()
    yield started
    started.stop()


def _for(seconds: float) -> Callable[[], bool]:
    """keep_waiting for a real-time bound, so a regression fails instead of hanging."""
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() < deadline


def _migrate_vm02(xapi: Xapi, pool: Pool) -> str:
    vm, host = pool.ref("VM", "vm02"), pool.ref("host", "host3")
    return xapi.call(lambda x: x.Async.VM.pool_migrate(vm, host, {}))


def _bot_sessions(pool: Pool) -> int:
    sessions = pool.sim.db.tables["session"].values()
    return sum(1 for s in sessions if s["originator"] == "migrate-bot")


def _post_control(pool: Pool, fault: dict[str, object]) -> None:
    request = urllib.request.Request(
        pool.server.url + "/control",
        json.dumps(fault).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.load(answer)["ok"]


# -- the event watcher ------------------------------------------------------------------


def test_watcher_survives_failed_relogins_and_logs_out(
    pool: Pool, xapi: Xapi, watcher: TaskWatcher
) -> None:
    """Sessions die at once, so XenAPI gives up (`Fault 500 Tried 3 times`): the watcher
    reconnects, sees the next task to its end, and leaves no session of its own behind."""
    until(lambda: watcher.connected, "the watcher to connect", timeout=10)
    pool.sim.faults.session_max_calls = 0
    until(lambda: not watcher.connected, "the watcher to lose its session", timeout=10)
    pool.sim.faults.session_max_calls = None

    task = _migrate_vm02(xapi, pool)
    with Ticker(pool.clock):
        record = watcher.wait_task(task, keep_waiting=_for(10))
    assert record is not None and record["status"] == "success"
    assert _bot_sessions(pool) <= 2  # the watcher's own and the pooled one


def test_watcher_learns_of_a_task_lost_without_a_del_event(
    pool: Pool, xapi: Xapi, watcher: TaskWatcher
) -> None:
    """A task vanishes and no event says so: valid_ref_counts gives it away, and the
    waiter hears "vanished" (None) at the next batch, not when it gives up."""
    pool.sim.faults.unreported_task_deletes = True
    task = _migrate_vm02(xapi, pool)
    until(lambda: watcher.task(task), "the watcher to see the task", timeout=10)
    with pool.sim.db.lock:
        pool.sim.kill_tasks(lambda ref: ref == task)
    keep_waiting = _for(10)
    with Ticker(pool.clock):
        assert watcher.wait_task(task, keep_waiting=keep_waiting) is None
    assert keep_waiting()
    assert pool.sim.calls.counts["task.get_record"] <= 2  # the waiter's probe, the re-read


# -- a dead master ----------------------------------------------------------------------


def test_a_down_host_refuses_connections_until_it_is_up(pool: Pool) -> None:
    """The simulator's `host_down`: the endpoint does not listen; `host_up` brings it back."""
    member = pool.server.url_for("host2")
    _post_control(pool, {"fault": "host_down", "host": "host2"})
    with pytest.raises(ConnectionRefusedError):
        pool.login(member)
    _post_control(pool, {"fault": "host_up", "host": "host2"})
    with pytest.raises(XenAPI.Failure) as failure:
        pool.login(member)
    assert failure.value.details == ["HOST_IS_SLAVE", MASTER]


def test_a_dead_master_nobody_replaced_is_said_in_plain_words(pool: Pool, xapi: Xapi) -> None:
    """The master refuses connections and the members still name it: say what a person
    must do, and do nothing of it."""
    xapi.call(lambda x: x.pool.get_all())
    pool.sim.faults.set_host_down(MASTER)
    pool.sim.calls.reset()
    with pytest.raises(XapiUnavailable) as unavailable:
        xapi.call(lambda x: x.pool.get_all())
    assert str(unavailable.value) == (
        f"the pool master host1 ({MASTER}) is down and no member took over: if it stays "
        "down, run `xe pool-emergency-transition-to-master` on a member"
    )
    assert pool.sim.calls.counts == {"session.login_with_password": 2}  # asked host2, host3
    assert pool.sim.master == pool.sim.db.find("host", name_label="host1")[0]


@pytest.mark.parametrize(
    ("new_master", "address"),
    [("host2", HOST2), ("host3", HOST3)],  # host2 logs us in; host2 names host3
)
def test_a_dead_master_is_replaced_by_the_one_members_name(
    pool: Pool, xapi: Xapi, new_master: str, address: str
) -> None:
    """After an emergency transition, the call that found the master dead goes to the
    member that took over, found by asking the members the login listed."""
    xapi.call(lambda x: x.pool.get_all())
    pool.sim.faults.set_host_down(MASTER)
    move_master(pool.sim, pool.sim.db.find("host", name_label=new_master)[0])
    master = xapi.call(lambda x: x.host.get_name_label(x.pool.get_master(x.pool.get_all()[0])))
    assert master == new_master
    assert xapi.url == f"http://{address}:{pool.server.port}"


def test_calls_in_flight_when_the_master_dies_all_reach_the_new_one(pool: Pool, xapi: Xapi) -> None:
    """Two calls hold sessions to the master as it dies; the first finds host3. The second,
    refused later, goes there too, and does not take host3 for the dead master."""
    holding = threading.Barrier(3)
    fault_set, first_done = threading.Event(), threading.Event()
    answers: dict[str, object] = {}

    def call(name: str, turn: threading.Event) -> None:
        waited: list[bool] = []

        def read_master(x: Any) -> str:
            if not waited:  # the first try only: a retry runs at once
                waited.append(True)
                holding.wait(5)
                turn.wait(5)
            return x.host.get_name_label(x.pool.get_master(x.pool.get_all()[0]))

        try:
            answers[name] = xapi.call(read_master)
        except XapiUnavailable as error:
            answers[name] = error

    threads = {
        "first": threading.Thread(target=call, args=("first", fault_set)),
        "second": threading.Thread(target=call, args=("second", first_done)),
    }
    for thread in threads.values():
        thread.start()
    holding.wait(5)
    pool.sim.faults.set_host_down(MASTER)
    move_master(pool.sim, pool.sim.db.find("host", name_label="host3")[0])
    fault_set.set()
    threads["first"].join(10)
    first_done.set()
    threads["second"].join(10)
    assert answers == {"first": "host3", "second": "host3"}


def test_a_pool_that_does_not_answer_at_all_gets_no_advice(pool: Pool, xapi: Xapi) -> None:
    """No host answers (our network, not the master): no emergency advice."""
    xapi.call(lambda x: x.pool.get_all())
    for address in (MASTER, HOST2, HOST3):
        pool.sim.faults.set_host_down(address)
    with pytest.raises(XapiUnavailable, match="XAPI did not answer: ConnectionRefusedError"):
        xapi.call(lambda x: x.pool.get_all())


# -- task.destroy -----------------------------------------------------------------------


def test_a_task_xapi_will_not_destroy_is_left_to_xapi(
    pool: Pool, xapi: Xapi, caplog: pytest.LogCaptureFixture
) -> None:
    """RBAC_PERMISSION_DENIED on task.destroy (task.destroy/any) is a warning, not a
    failed migration: xapi collects the finished task itself."""
    task = _migrate_vm02(xapi, pool)
    assert pool.run(task)["status"] == "success"
    pool.sim.faults.deny_task_destroy = True
    with caplog.at_level(logging.WARNING, logger="bot.xen.ops"):
        xapi.call(lambda x: ops.destroy_task(x, task))
    assert "RBAC_PERMISSION_DENIED task.destroy/any" in caplog.text
    assert pool.x.task.get_status(task) == "success"


def test_a_vm_is_looked_up_once_and_a_gone_one_fails_as_the_lookup_does(
    pool: Pool, xapi: Xapi, watcher: TaskWatcher
) -> None:
    """A run asks about its VM at every step: its ref is kept (a VM keeps it as it moves);
    once the VM is destroyed the kept ref is not trusted: the lookup's UUID_INVALID."""
    xen = Xen(xapi, watcher)
    vm = pool.ref("VM", "dns01")
    uuid = pool.x.VM.get_uuid(vm)
    before = pool.sim.calls.counts.get("VM.get_by_uuid", 0)
    assert xen.vm_state(uuid).power_state == "Running"
    assert xen.vm_state(uuid).power_state == "Running"
    assert pool.sim.calls.counts["VM.get_by_uuid"] == before + 1
    pool.run(pool.x.Async.VM.hard_shutdown(vm))
    pool.x.VM.destroy(vm)
    with pytest.raises(XapiFailure) as gone:
        xen.vm_state(uuid)
    assert gone.value.code == "UUID_INVALID"
