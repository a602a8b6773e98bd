"""The XAPI calls a migration makes. Long ones are `Async.*` and return the task ref.

Each function takes the `xenapi` proxy of one session (run it inside `Xapi.call`), so a
step's few calls share a session and none of this module holds state.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import XenAPI

from bot.models import Plan

NULL = "OpaqueRef:NULL"


def migration_network(x: Any, host: str) -> str:
    """The destination's management network (what XenCenter passes to migrate_receive)."""
    for pif in x.host.get_PIFs(host):
        if x.PIF.get_management(pif):
            return x.PIF.get_network(pif)
    return x.network.get_all()[0]


def start_migration(x: Any, plan: Plan) -> str:
    """pool_migrate when no disk moves, else migrate_receive + migrate_send (every disk)."""
    vm, host = plan.vm.ref, plan.dest_host_ref
    if plan.call == "pool_migrate":
        return x.Async.VM.pool_migrate(vm, host, {})
    token = x.host.migrate_receive(host, migration_network(x, host), {})
    live = plan.vm.power_state == "Running"
    return x.Async.VM.migrate_send(vm, token, live, plan.vdi_map, {}, {})


def assert_can_migrate(x: Any, plan: Plan) -> list[str] | None:
    """xapi's own opinion of the plan: None when it agrees, else its ErrorDescription."""
    vm, host = plan.vm.ref, plan.dest_host_ref
    try:
        if plan.call == "migrate_send":
            token = x.host.migrate_receive(host, migration_network(x, host), {})
            live = plan.vm.power_state == "Running"
            x.VM.assert_can_migrate(vm, token, live, plan.vdi_map, {}, {})
        elif plan.vm.power_state == "Halted" or plan.call == "pool_migrate":
            x.VM.assert_can_boot_here(vm, host)
    except XenAPI.Failure as failure:
        return [str(part) for part in failure.details]
    return None


def start_shutdown(x: Any, vm: str, hard: bool) -> str:
    return x.Async.VM.hard_shutdown(vm) if hard else x.Async.VM.clean_shutdown(vm)


def start_on(x: Any, vm: str, host: str) -> str:
    return x.Async.VM.start_on(vm, host, False, False)


def set_affinity(x: Any, vm: str, host: str) -> None:
    x.VM.set_affinity(vm, host)


def add_tag(x: Any, vm: str, tag: str) -> None:
    x.VM.add_tags(vm, tag)


def remove_tag(x: Any, vm: str, tag: str) -> None:
    x.VM.remove_tags(vm, tag)


def delete_snapshot(x: Any, snapshot: str, vdis: tuple[str, ...]) -> None:
    """VM.destroy keeps the disks (as XenCenter knows), so destroy each VDI after it."""
    x.VM.destroy(snapshot)
    for vdi in vdis:
        x.VDI.destroy(vdi)


def restart_agent(x: Any, host: str) -> None:
    x.host.restart_agent(host)


def agent_start_time(x: Any, host: str) -> float:
    return float(x.host.get_other_config(host).get("agent_start_time", "0") or 0)


def host_enabled(x: Any, host: str) -> bool:
    return bool(x.host.get_enabled(host))


def cancel_task(x: Any, task: str) -> None:
    x.task.cancel(task)


def destroy_task(x: Any, task: str) -> None:
    try:
        x.task.destroy(task)
    except XenAPI.Failure as failure:
        if failure.details[0] != "HANDLE_INVALID":
            raise


def task_record(x: Any, task: str) -> dict[str, Any] | None:
    """The task's record, or None when it no longer exists (finished and collected, or lost)."""
    try:
        return x.task.get_record(task)
    except XenAPI.Failure as failure:
        if failure.details[0] == "HANDLE_INVALID":
            return None
        raise


def pending_tasks(x: Any) -> list[str]:
    """Names of the tasks xapi is running now (what a toolstack restart would abort)."""
    return [
        record["name_label"]
        for record in x.task.get_all_records().values()
        if record["status"] == "pending"
    ]


def vm_record(x: Any, vm: str) -> dict[str, Any]:
    return x.VM.get_record(vm)


def vdi_srs(x: Any, vdis: list[str]) -> dict[str, str]:
    return {vdi: x.VDI.get_SR(vdi) for vdi in vdis}


def task_result_ref(result: str) -> str:
    """A task's `result` is an XML-RPC fragment (`<value>OpaqueRef:…</value>`)."""
    if not result:
        return ""
    (value,), _ = xmlrpc.client.loads(
        f'<?xml version="1.0"?><methodResponse><params><param>{result}</param></params>'
        "</methodResponse>"
    )
    return str(value)
