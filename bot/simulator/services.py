"""Sessions, events, tasks and host services: the calls around the operations.

`host.restart_agent` simplification: the agent goes down as soon as the call has been
answered (xapi waits about a second) and stays down `Timing.agent_down_s`. On the master
every session and task of the pool vanishes; on a member, the tasks resident on it. When
it is back, the host enables itself again (even after a `host.disable`, as xapi does,
unless `stays_disabled`) and every current operation in the pool whose task no longer
exists is scrubbed (`finish_agent_restart`).
"""

from __future__ import annotations

from collections.abc import Generator

from bot.simulator import rules
from bot.simulator.db import parse_classes
from bot.simulator.pool import Call, Simulator, Wait, xapi
from bot.simulator.wire import XapiError, wire_int

SESSIONS_PER_ORIGINATOR = 500
Proc = Generator[Wait, None, object]


@xapi("session.login_with_password")
def login(
    sim: Simulator, call: Call, uname: str, pwd: str, version: str = "1.1", originator: str = ""
) -> str:
    if (uname, pwd) != sim.credentials:
        raise XapiError("SESSION_AUTHENTICATION_FAILED", uname, "Authentication failure")
    mine = [r for r, s in sim.db.tables["session"].items() if s["originator"] == originator]
    for oldest in mine[: max(0, len(mine) - SESSIONS_PER_ORIGINATOR + 1)]:
        sim.db.delete("session", oldest)
    return sim.open_session(originator)


@xapi("session.logout")
def logout(sim: Simulator, call: Call) -> str:
    sim.db.delete("session", call.session)
    return ""


@xapi("session.local_logout")
def local_logout(sim: Simulator, call: Call) -> str:
    return logout(sim, call)


@xapi("event.from")
def event_from(sim: Simulator, call: Call, classes: list, token: str, timeout: float) -> dict:
    """Block until something in `classes` changed after `token`, or `timeout` passes."""
    subscribed = parse_classes(classes)
    if not isinstance(timeout, float):
        raise XapiError("INTERNAL_ERROR", f"Expected float, got '{timeout!r}'")
    since = _parse_token(token)
    deadline = sim.now() + timeout
    while True:
        events = sim.db.events_since(since, subscribed)
        if token == "":
            events = [e for e in events if e["operation"] != "del"]
        if sim.faults.unreported_task_deletes:
            events = [e for e in events if (e["class"], e["operation"]) != ("task", "del")]
        if events or sim.now() >= deadline:
            break
        sim.db.changed.wait(sim.timing.tick_s)
        sim.check_session(call.session)
    return {
        "events": events,
        "valid_ref_counts": sim.db.ref_counts(),
        "token": f"{sim.db.generation:020d},{0:020d}",
    }


def _parse_token(token: object) -> int:
    if token == "":
        return 0
    try:
        generation, _, _messages = str(token).partition(",")
        return int(generation)
    except ValueError:
        raise XapiError("EVENT_FROM_TOKEN_PARSE_FAILURE", token) from None


@xapi("event.inject")
def event_inject(sim: Simulator, call: Call, cls: str, ref: str) -> str:
    from bot.simulator.schema import BY_LOWER

    name = BY_LOWER.get(str(cls).lower())
    if name is None or not sim.db.exists(name, ref):
        raise XapiError("HANDLE_INVALID", cls, ref)
    sim.db.touch(name, ref)
    return f"{sim.db.generation - 1:020d},{0:020d}"


@xapi("event.get_current_id")
def event_get_current_id(sim: Simulator, call: Call) -> str:
    return wire_int(sim.db.generation)


@xapi("task.cancel")
def task_cancel(sim: Simulator, call: Call, task: str) -> str:
    """Ask the task to stop; ignored silently once it is past its cancellable phase."""
    sim.request_cancel(task)
    return ""


@xapi("task.destroy")
def task_destroy(sim: Simulator, call: Call, task: str) -> str:
    if sim.faults.deny_task_destroy:
        raise XapiError(
            "RBAC_PERMISSION_DENIED", "task.destroy/any", "No permission in user session"
        )
    sim.destroy_task(task)
    return ""


@xapi("host.compute_free_memory")
def compute_free_memory(sim: Simulator, call: Call, host: str) -> str:
    sim.db.get("host", host)
    return wire_int(rules.free_memory(sim, host))


@xapi("host.query_data_source")
def host_query_data_source(sim: Simulator, call: Call, host: str, name: str) -> float:
    record = sim.db.get("host", host)
    metrics = sim.db.get("host_metrics", record["metrics"])
    values = {
        "memory_total_kib": int(metrics["memory_total"]) / 1024,
        "memory_free_kib": rules.free_memory(sim, host) / 1024,
        "cpu_avg": min(1.0, sum(sim.load.get(v, 0.0) for v in record["resident_VMs"]) / 16),
    }
    if name not in values:
        raise XapiError("INTERNAL_ERROR", f"Rrd_interface.Rrdd_error(Datasource_missing {name})")
    return float(values[name])


AUTO_ENABLE_SINCE = (25, 31, 0)  # xen-api PR #6652 (September 2025)


def assert_reachable(sim: Simulator, host: str) -> None:
    """A call about a member runs on that member (`message_forwarding.ml` `do_op_on`):
    when its agent is down or the host does not answer, the master cannot forward it and
    says CANNOT_CONTACT_HOST [host]. (A master that is down answers nothing at all.)"""
    record = sim.db.get("host", host)
    if host == sim.master:
        return
    if host in sim.agent_down_until or record["address"] in sim.faults.down_hosts:
        raise XapiError("CANNOT_CONTACT_HOST", host)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise XapiError("INTERNAL_ERROR", f"Expected bool, got '{value!r}'")
    return value


@xapi("host.disable", added=(AUTO_ENABLE_SINCE, 1))
def host_disable(sim: Simulator, call: Call, host: str, auto_enable: object = True) -> Proc:
    """Nothing new starts or lands on the host (maintenance mode's first step).

    xapi (`message_forwarding.ml` Host.disable, `xapi_host.ml` disable): with HA on, first
    the failover plan must survive losing the host (HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN,
    simulated by `faults.ha_plan_breaks`); then the call is forwarded to the host, which
    sets `enabled` false if it was true. Nothing else is checked: the master may be
    disabled, a host busy with operations too, and disabling twice is not an error.

    Since xapi 25.31.0 (xen-api PR #6652) a second parameter `auto_enable` (default true)
    is written to the host's local database (`host_auto_enable`): false keeps the host
    disabled across toolstack restarts and reboots until `host.enable`. An older xapi
    answers two parameters with MESSAGE_PARAMETER_COUNT_MISMATCH.
    """
    auto = _bool(auto_enable)
    record = sim.db.get("host", host)
    if sim.db.get("pool", sim.pool_ref)["ha_enabled"] and sim.faults.ha_plan_breaks:
        raise XapiError("HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN")
    assert_reachable(sim, host)
    if record["enabled"]:
        sim.db.update("host", host, enabled=False)
        rules.refresh_allowed(sim, "host", host)
    if sim.xapi_version() >= AUTO_ENABLE_SINCE:
        sim.localdb.setdefault(host, {})["host_auto_enable"] = "true" if auto else "false"
    return ""
    yield  # a process: xapi has Async.host.disable


@xapi("host.enable")
def host_enable(sim: Simulator, call: Call, host: str) -> Proc:
    """The host takes new VMs again (`xapi_host.ml` enable, forwarded to the host). Its
    `assert_safe_to_reenable` refuses while the host's xapi is still starting
    (HOST_STILL_BOOTING: here the agent is down, so the master cannot reach it) or after a
    `host.shutdown`/`reboot` that did not happen (HOST_DISABLED_UNTIL_REBOOT, not
    simulated). It clears a persistent disable (`host_auto_enable`, xapi 25.31.0)."""
    record = sim.db.get("host", host)
    assert_reachable(sim, host)
    if not record["enabled"]:
        sim.db.update("host", host, enabled=True)
        rules.refresh_allowed(sim, "host", host)
    sim.localdb.get(host, {}).pop("host_auto_enable", None)
    return ""
    yield  # a process: xapi has Async.host.enable


@xapi("host.restart_agent")
def restart_agent(sim: Simulator, call: Call, host: str) -> str:
    """Answer, then the host's agent is down for a while (the toolstack restarts); on its
    way down xapi marks the host disabled. Forwarded to the host (CANNOT_CONTACT_HOST for
    a member that does not answer)."""
    sim.db.get("host", host)
    assert_reachable(sim, host)
    sim.agent_down_until[host] = sim.now() + sim.timing.agent_down_s
    sim.db.update("host", host, enabled=False)
    rules.refresh_allowed(sim, "host", host)
    if host == sim.master:
        sim.kill_tasks(lambda task: True)
        for session in list(sim.db.tables["session"]):
            sim.db.delete("session", session)
    else:
        sim.kill_tasks(lambda task: sim.db.get("task", task)["resident_on"] == host)
    return ""


def stays_disabled(sim: Simulator, host: str) -> bool:
    """Whether a host whose agent comes back leaves itself disabled
    (`xapi_host_helpers.ml` `consider_enabling_host_nolock`). A `host.disable` lives in the
    host's xapi process only (`user_requested_host_disable`), so a restart forgets it and
    re-enables the host, unless: the host was disabled with `auto_enable` false (xapi
    25.31.0, localdb `host_auto_enable`), or HA is on and one of the host's PBDs is not
    plugged. (`host_disabled_until_reboot`, left by a shutdown that did not happen, is not
    simulated.)"""
    if sim.localdb.get(host, {}).get("host_auto_enable") == "false":
        return True
    if sim.db.get("pool", sim.pool_ref)["ha_enabled"]:
        pbds = sim.db.get("host", host)["PBDs"]
        return not all(sim.db.get("PBD", pbd)["currently_attached"] for pbd in pbds)
    return False


def finish_agent_restart(sim: Simulator, host: str) -> None:
    """The agent is back: host enabled (unless `stays_disabled`), start time moved, stale
    operations scrubbed.

    Whichever host restarted (the master at its start-up, a member through `Pool.hello`),
    the master drops, pool-wide, every current operation whose task no longer exists:
    `ocaml/xapi/cancel_tasks.ml` (`cancel_tasks_on_host`), `xapi_pool.ml` (`hello`),
    `dbsync_master.ml`. So a leftover whose task is gone is cleared by any restart; one
    whose task record still exists only by the master's, which loses every task.
    """
    other = dict(sim.db.get("host", host)["other_config"])
    other["agent_start_time"] = f"{sim.now():.0f}."
    sim.db.update("host", host, enabled=not stays_disabled(sim, host), other_config=other)
    rules.refresh_allowed(sim, "host", host)
    for cls in ("VM", "host"):
        for ref, record in list(sim.db.tables[cls].items()):
            for task in list(record["current_operations"]):
                if not sim.db.exists("task", task):
                    rules.clear_operation(sim, cls, ref, task)


@xapi("pool.designate_new_master")
def designate_new_master(sim: Simulator, call: Call, host: str) -> str:
    move_master(sim, host)
    return ""


def move_master(sim: Simulator, host: str) -> None:
    """The pool master moves: the old master answers HOST_IS_SLAVE, sessions end."""
    sim.db.get("host", host)
    sim.db.update("pool", sim.pool_ref, master=host)
    for session in list(sim.db.tables["session"]):
        sim.db.delete("session", session)
