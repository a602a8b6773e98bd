"""The XAPI calls a migration makes. Long ones are `Async.*` and return the task ref.

Each function takes the `xenapi` proxy of one session (run it inside `Xapi.call`), so a
step's few calls share a session and none of this module holds state.
"""

from __future__ import annotations

import logging
import xmlrpc.client
from datetime import UTC, datetime
from typing import Any

import XenAPI

from bot.models import BootOption, GuestAgent, HostLoad, Leftover, Plan, VMState

log = logging.getLogger(__name__)
NULL = "OpaqueRef:NULL"
MIGRATE_OPS = frozenset({"migrate_send", "pool_migrate"})


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
            live = plan.mode == "live"
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


def destroy_vm(x: Any, vm: str) -> None:
    """VM.destroy keeps the disks (as XenCenter knows): destroy the VDIs that are its own
    after it, one by one (`destroy_vdi`)."""
    x.VM.destroy(vm)


def destroy_vdi(x: Any, vdi: str) -> None:
    x.VDI.destroy(vdi)


def restart_agent(x: Any, host_uuid: str) -> None:
    x.host.restart_agent(x.host.get_by_uuid(host_uuid))


def agent_start_time(x: Any, host_uuid: str) -> float:
    host = x.host.get_by_uuid(host_uuid)
    return float(x.host.get_other_config(host).get("agent_start_time", "0") or 0)


def agent_back(x: Any, host_uuid: str, before: float) -> bool:
    """The host's agent started after `before` and the host takes work again."""
    host = x.host.get_by_uuid(host_uuid)
    return agent_start_time(x, host_uuid) > before and bool(x.host.get_enabled(host))


def ha_enabled(x: Any) -> bool:
    return bool(x.pool.get_ha_enabled(x.pool.get_all()[0]))


def cancel_task(x: Any, task: str) -> None:
    x.task.cancel(task)


def destroy_task(x: Any, task: str) -> None:
    """Best effort: the task's work is done either way, and xapi collects finished tasks
    after 65 min. A task whose session logged out takes task.destroy/any (pool-operator)."""
    try:
        x.task.destroy(task)
    except XenAPI.Failure as failure:
        if failure.details[0] != "HANDLE_INVALID":
            reason = " ".join(str(part) for part in failure.details)
            log.warning("task %s left for xapi to collect: %s", task, reason)


def task_record(x: Any, task: str) -> dict[str, Any] | None:
    """The task's record, or None when it no longer exists (finished and collected, or lost)."""
    try:
        return x.task.get_record(task)
    except XenAPI.Failure as failure:
        if failure.details[0] == "HANDLE_INVALID":
            return None
        raise


def leftovers(x: Any, vm: str, host_uuids: list[str], own_tasks: set[str]) -> list[Leftover]:
    """Migrate operations on the VM (its ref), and `vm_migrate` entries of the request's own
    tasks on its hosts (another VM's leftover there is that request's business), with the
    state of each task."""
    entries = [
        (task, op, "the VM")
        for task, op in x.VM.get_current_operations(vm).items()
        if op in MIGRATE_OPS
    ]
    for uuid in dict.fromkeys(u for u in host_uuids if u):
        host = x.host.get_by_uuid(uuid)
        name = x.host.get_name_label(host)
        entries += [
            (task, op, name)
            for task, op in x.host.get_current_operations(host).items()
            if op == "vm_migrate" and task in own_tasks
        ]
    found = []
    for task, op, holder in entries:
        record = task_record(x, task)
        state = (
            "gone" if record is None else "pending" if record["status"] == "pending" else "ended"
        )
        found.append(Leftover(task, op, holder, state))
    return found


def task_host_name(x: Any, task: str) -> str:
    """The host a task runs on (xapi forwards a VM's operation to the VM's host): which
    toolstack a restart of which would end it; "" once the task is gone."""
    record = task_record(x, task)
    if record is None or record["resident_on"] == NULL:
        return ""
    return x.host.get_name_label(record["resident_on"])


def host_loads(x: Any) -> list[HostLoad]:
    """Every host, whether it is the master, and the tasks pending on it."""
    master = x.pool.get_master(x.pool.get_all()[0])
    pending: dict[str, list[str]] = {}
    for record in x.task.get_all_records().values():
        if record["status"] == "pending":
            pending.setdefault(record["resident_on"], []).append(record["name_label"])
    return [
        HostLoad(ref, h["uuid"], h["name_label"], ref == master, tuple(pending.get(ref, ())))
        for ref, h in x.host.get_all_records().items()
    ]


def vm_state(x: Any, vm: str) -> VMState:
    """Power state, host and disks' SRs now, read through VBD.VDI -> VDI.SR: a moved disk
    is a new VDI, so nothing here trusts a VDI ref or uuid from before the move."""
    record = x.VM.get_record(vm)
    host = record["resident_on"]
    disks: dict[str, str] = {}
    for vbd in record["VBDs"]:
        vbd_record = x.VBD.get_record(vbd)
        if vbd_record["type"] == "Disk" and vbd_record["VDI"] != NULL:
            disks[vbd_record["userdevice"]] = x.SR.get_uuid(x.VDI.get_SR(vbd_record["VDI"]))
    return VMState(
        power_state=record["power_state"],
        host_uuid=x.host.get_uuid(host) if host != NULL else "",
        operations=dict(record["current_operations"]),
        disk_srs=disks,
    )


def boot_options(x: Any, vm: str, preferred: list[str]) -> list[BootOption]:
    """Every host, the `preferred` uuids first, with xapi's verdict on booting the VM there
    as it is now (`VM.assert_can_boot_here`: host enabled, SRs, networks, memory)."""
    hosts = x.host.get_all_records()
    rank = {uuid: index for index, uuid in enumerate(preferred)}
    ordered = sorted(
        hosts.items(), key=lambda h: (rank.get(h[1]["uuid"], len(rank)), h[1]["name_label"])
    )
    options = []
    for ref, host in ordered:
        try:
            x.VM.assert_can_boot_here(vm, ref)
            refusal = None
        except XenAPI.Failure as failure:
            refusal = tuple(str(part) for part in failure.details)
        options.append(BootOption(ref, host["uuid"], host["name_label"], refusal))
    return options


def guest_agent(x: Any, vm: str) -> GuestAgent:
    """The VM's (ref) guest metrics as a typed record: `live`, the addresses in `networks`
    ("0/ip", "0/ipv6/0", ...) and `last_updated`, an XML-RPC DateTime in UTC."""
    metrics = x.VM.get_guest_metrics(vm)
    if metrics == NULL:
        return GuestAgent(False, (), None)
    try:
        record = x.VM_guest_metrics.get_record(metrics)
    except XenAPI.Failure:
        return GuestAgent(False, (), None)  # gone between the two reads
    return agent_of(record)


def agent_of(record: dict[str, Any] | None) -> GuestAgent:
    """A VM_guest_metrics record as a typed GuestAgent (None: the VM has none)."""
    if record is None:
        return GuestAgent(False, (), None)
    stamp = str(getattr(record.get("last_updated"), "value", record.get("last_updated", "")))
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        when = None
    addresses = tuple(sorted(set(record.get("networks", {}).values())))
    return GuestAgent(bool(record.get("live")), addresses, when if when and when > 0 else None)


def set_host_enabled(x: Any, host: str, enabled: bool) -> None:
    """host.enable / host.disable: a disabled host takes no new VM (maintenance mode's first
    step); the VMs on it keep running."""
    if enabled:
        x.host.enable(host)
    else:
        x.host.disable(host)


def host_enabled(x: Any, host: str) -> bool:
    return bool(x.host.get_enabled(host))


def host_ref(x: Any, uuid: str) -> str:
    return x.host.get_by_uuid(uuid)


def vm_ref(x: Any, uuid: str) -> str:
    return x.VM.get_by_uuid(uuid)


def task_result_ref(result: str) -> str:
    """A task's `result` is an XML-RPC fragment (`<value>OpaqueRef:…</value>`)."""
    if not result:
        return ""
    (value,), _ = xmlrpc.client.loads(
        f'<?xml version="1.0"?><methodResponse><params><param>{result}</param></params>'
        "</methodResponse>"
    )
    return str(value)
