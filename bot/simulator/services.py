"""Sessions, events, tasks and host services: the calls around the operations.

`host.restart_agent` simplification: the agent goes down as soon as the call has been
answered (xapi waits about a second) and stays down `Timing.agent_down_s`. On the master
every session and task of the pool vanishes; on a member, the tasks resident on it. When
it is back, every current operation in the pool whose task no longer exists is scrubbed
(`finish_agent_restart`).
"""

from __future__ import annotations

from bot.simulator import rules
from bot.simulator.db import parse_classes
from bot.simulator.pool import Call, Simulator, xapi
from bot.simulator.wire import XapiError, wire_int

SESSIONS_PER_ORIGINATOR = 500


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


@xapi("host.disable")
def host_disable(sim: Simulator, call: Call, host: str) -> str:
    """Nothing new starts or lands on the host (maintenance mode's first step)."""
    sim.db.get("host", host)
    sim.db.update("host", host, enabled=False)
    return ""


@xapi("host.enable")
def host_enable(sim: Simulator, call: Call, host: str) -> str:
    sim.db.get("host", host)
    sim.db.update("host", host, enabled=True)
    return ""


@xapi("host.restart_agent")
def restart_agent(sim: Simulator, call: Call, host: str) -> str:
    """Answer, then the host's agent is down for a while (the toolstack restarts)."""
    sim.db.get("host", host)
    sim.agent_down_until[host] = sim.now() + sim.timing.agent_down_s
    sim.db.update("host", host, enabled=False)
    if host == sim.master:
        sim.kill_tasks(lambda task: True)
        for session in list(sim.db.tables["session"]):
            sim.db.delete("session", session)
    else:
        sim.kill_tasks(lambda task: sim.db.get("task", task)["resident_on"] == host)
    return ""


def finish_agent_restart(sim: Simulator, host: str) -> None:
    """The agent is back: host enabled, start time moved, stale operations scrubbed.

    Whichever host restarted (the master at its start-up, a member through `Pool.hello`),
    the master drops, pool-wide, every current operation whose task no longer exists:
    `ocaml/xapi/cancel_tasks.ml` (`cancel_tasks_on_host`), `xapi_pool.ml` (`hello`),
    `dbsync_master.ml`. So a leftover whose task is gone is cleared by any restart; one
    whose task record still exists only by the master's, which loses every task.
    """
    other = dict(sim.db.get("host", host)["other_config"])
    other["agent_start_time"] = f"{sim.now():.0f}."
    sim.db.update("host", host, enabled=True, other_config=other)
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
