"""The rules xapi enforces before and around an operation, shared by every operation.

Power state per operation, one operation at a time (a busy VM makes the caller wait,
then fail, as xapi's `with_vm_operation` does), memory on the destination, SR visibility,
guest-tools features. Error parameters follow xapi's wire form (xapi-notes §3, §7).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager

from bot.simulator.pool import Simulator, Wait
from bot.simulator.wire import NULL_REF, XapiError, wire_int

ALLOWED_POWER = {
    "pool_migrate": ("Running",),
    "clean_shutdown": ("Running",),
    "hard_shutdown": ("Running", "Paused", "Suspended"),
    "shutdown": ("Running", "Paused", "Suspended"),
    "start": ("Halted",),
    "start_on": ("Halted",),
    "migrate_send": ("Halted", "Suspended", "Running"),
    "destroy": ("Halted", "Suspended"),
    "snapshot": ("Halted", "Running", "Paused", "Suspended"),
}
RUNNING_STATES = ("Running", "Paused")


def vm(sim: Simulator, ref: str) -> dict:
    return sim.db.get("VM", ref)


def assert_operable(sim: Simulator, ref: str, op: str, blocked: bool = True) -> None:
    """Template, snapshot, power state and (with `blocked`) blocked-operation checks."""
    record = vm(sim, ref)
    if record["is_a_template"] and op != "destroy":
        raise XapiError("VM_IS_TEMPLATE", ref, op)
    if record["is_a_snapshot"] and op != "destroy":
        raise XapiError("VM_IS_SNAPSHOT", ref, op)
    if blocked and op in record["blocked_operations"]:
        raise XapiError("OPERATION_BLOCKED", ref, record["blocked_operations"][op])
    allowed = ALLOWED_POWER[op]
    if record["power_state"] not in allowed and not (op == "destroy" and record["is_a_snapshot"]):
        raise XapiError(
            "VM_BAD_POWER_STATE",
            ref,
            ", ".join(s.lower() for s in allowed),
            record["power_state"].lower(),
        )


def has_tools(sim: Simulator, ref: str) -> bool:
    """xapi's feature check (`xapi_vm_lifecycle.ml` check_op_for_feature): PV drivers
    detected or reporting a numeric version (`xapi_pv_driver_version.ml`, older tools), a
    guest advertising suspend, or a PV guest, which needs none."""
    record = vm(sim, ref)
    metrics = record["metrics"]
    if sim.db.exists("VM_metrics", metrics) and not sim.db.get("VM_metrics", metrics)["hvm"]:
        return True
    if not sim.db.exists("VM_guest_metrics", record["guest_metrics"]):
        return False
    guest = sim.db.get("VM_guest_metrics", record["guest_metrics"])
    version = guest["PV_drivers_version"]
    numeric = all(str(version.get(part, "")).isdigit() for part in ("major", "minor"))
    return guest["PV_drivers_detected"] or numeric or guest["other"].get("feature-suspend") == "1"


def with_vm_operation(sim: Simulator, task: str, ref: str, op: str) -> Generator[Wait, None, None]:
    """Wait (up to the lock wait) until the VM is idle, then mark `op` in current_operations."""
    deadline = sim.now() + sim.timing.lock_wait_s
    while vm(sim, ref)["current_operations"]:
        if sim.now() >= deadline:
            current = vm(sim, ref)["current_operations"]
            other_task, other_op = next(iter(current.items()))
            raise XapiError("OTHER_OPERATION_IN_PROGRESS", "VM", ref, other_op, other_task)
        yield Wait(until=deadline, when=lambda: not vm(sim, ref)["current_operations"])
    set_operation(sim, "VM", ref, task, op)


def set_operation(sim: Simulator, cls: str, ref: str, task: str, op: str) -> None:
    record = sim.db.get(cls, ref)
    sim.db.update(cls, ref, current_operations={**record["current_operations"], task: op})
    refresh_allowed(sim, cls, ref)


def clear_operation(sim: Simulator, cls: str, ref: str, task: str) -> None:
    if not sim.db.exists(cls, ref):
        return
    ops = dict(sim.db.get(cls, ref)["current_operations"])
    if ops.pop(task, None) is not None:
        sim.db.update(cls, ref, current_operations=ops)
        refresh_allowed(sim, cls, ref)


MOVES = ("pool_migrate", "migrate_send")
TRUE = ("true", "on", "1")


def feature_error(sim: Simulator, ref: str, op: str, forced: bool = False) -> XapiError | None:
    """What the operation itself refuses for a running VM, and xapi's pre-check does not
    look at (`xapi_vm_lifecycle.ml`, `check_op_for_feature`): an immobile VM, a PCI device,
    no guest tools for a move or a clean shutdown."""
    record = vm(sim, ref)
    if record["power_state"] != "Running":
        return None
    if op in MOVES and record["platform"].get("nomigrate") in TRUE:
        return XapiError("VM_IS_IMMOBILE", ref)
    if op in MOVES and record["attached_PCIs"]:
        return XapiError("VM_HAS_PCI_ATTACHED", ref)
    needs_tools = op == "clean_shutdown" or (op in MOVES and not forced)
    if needs_tools and not has_tools(sim, ref):
        return XapiError("VM_LACKS_FEATURE", ref)
    return None


# A host's operations (`ocaml/xapi/xapi_host_helpers.ml`, `all_operations`; newer xapi
# adds `apply_updates` and `enable`, not modelled). Some bring VMs in, some take them away.
HOST_OPERATIONS = (
    "provision",
    "evacuate",
    "reboot",
    "shutdown",
    "vm_start",
    "vm_resume",
    "vm_migrate",
    "power_on",
)
HOST_CREATING = ("provision", "vm_resume", "vm_migrate")
HOST_REMOVING = ("evacuate", "reboot", "shutdown")


def host_allowed(sim: Simulator, host: str) -> list[str]:
    """`xapi_host_helpers.ml` `valid_operations`: an operation that brings VMs in is not
    allowed while one that takes them away runs, and the reverse; reboot and shutdown only
    once the host is disabled (`HOST_NOT_DISABLED`) and not both; one provision at a time;
    no power_on for a live host (nor without a power-on mode, which no simulated host has).
    So an enabled idle host allows provision, evacuate, vm_start, vm_resume and vm_migrate;
    a disabled one reboot and shutdown too."""
    record = sim.db.get("host", host)
    current = list(record["current_operations"].values())
    creating = any(op in HOST_CREATING for op in current)
    removing = any(op in HOST_REMOVING for op in current)
    blocked = {"power_on"}
    for op in HOST_OPERATIONS:
        if (op in HOST_CREATING and removing) or (op in HOST_REMOVING and creating):
            blocked.add(op)
    if "reboot" in current:
        blocked.add("shutdown")
    if "shutdown" in current:
        blocked.add("reboot")
    if "provision" in current:
        blocked.add("provision")
    if record["enabled"]:
        blocked |= {"reboot", "shutdown"}
    return [op for op in HOST_OPERATIONS if op not in blocked]


def refresh_allowed(sim: Simulator, cls: str, ref: str) -> None:
    """xapi's advisory allowed_operations: for a VM, empty while busy, else what the power
    state, the blocked operations and the guest's features allow; for a host, what
    `host_allowed` says."""
    if cls == "host" and sim.db.exists("host", ref):
        allowed = host_allowed(sim, ref)
        if sim.db.get("host", ref)["allowed_operations"] != allowed:
            sim.db.update("host", ref, allowed_operations=allowed)
        return
    if cls != "VM":
        return
    record = vm(sim, ref)
    allowed = (
        []
        if record["current_operations"]
        else [
            op
            for op, states in ALLOWED_POWER.items()
            if record["power_state"] in states
            and op not in record["blocked_operations"]
            and feature_error(sim, ref, op) is None
        ]
    )
    if record["allowed_operations"] != allowed:
        sim.db.update("VM", ref, allowed_operations=allowed)


@contextmanager
def operation(sim: Simulator, task: str, cls: str, ref: str, op: str) -> Iterator[None]:
    """Keep `op` in the object's current_operations while the body runs."""
    set_operation(sim, cls, ref, task, op)
    try:
        yield
    finally:
        clear_operation(sim, cls, ref, task)


def memory_needed(sim: Simulator, ref: str) -> int:
    record = vm(sim, ref)
    return int(record["memory_static_max"]) + int(record["memory_overhead"])


def free_memory(sim: Simulator, host: str) -> int:
    """Host memory less its overhead and every VM resident or scheduled there."""
    record = sim.db.get("host", host)
    total = int(sim.db.get("host_metrics", record["metrics"])["memory_total"])
    used = int(record["memory_overhead"])
    for ref, other in sim.db.tables["VM"].items():
        placed = other["resident_on"] == host and other["power_state"] in RUNNING_STATES
        if placed or other["scheduled_to_be_resident_on"] == host:
            used += memory_needed(sim, ref)
    return max(0, total - used)


def refresh_host_metrics(sim: Simulator, *hosts: str) -> None:
    for host in hosts:
        if sim.db.exists("host", host):
            metrics = sim.db.get("host", host)["metrics"]
            sim.db.update("host_metrics", metrics, memory_free=wire_int(free_memory(sim, host)))


def assert_host_usable(sim: Simulator, host: str) -> None:
    record = sim.db.get("host", host)
    if not record["enabled"] or host in sim.agent_down_until:
        raise XapiError("HOST_DISABLED", host)
    if not sim.db.get("host_metrics", record["metrics"])["live"]:
        raise XapiError("HOST_NOT_LIVE")


def assert_memory(sim: Simulator, ref: str, host: str) -> None:
    needed, available = memory_needed(sim, ref), free_memory(sim, host)
    if vm(sim, ref)["resident_on"] == host and vm(sim, ref)["power_state"] in RUNNING_STATES:
        return
    if needed > available:
        raise XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", needed, available)


def sr_visible(sim: Simulator, sr: str, host: str) -> bool:
    return any(
        pbd["host"] == host and pbd["SR"] == sr and pbd["currently_attached"]
        for pbd in sim.db.tables["PBD"].values()
    )


def disks(sim: Simulator, ref: str) -> list[tuple[str, str]]:
    """(VBD, VDI) pairs of the VM's non-CD, non-empty disks."""
    pairs = []
    for vbd in vm(sim, ref)["VBDs"]:
        record = sim.db.get("VBD", vbd)
        if record["type"] != "CD" and not record["empty"] and record["VDI"] != NULL_REF:
            pairs.append((vbd, record["VDI"]))
    return pairs


def assert_can_boot_here(sim: Simulator, ref: str, host: str) -> None:
    """Host usable, the VM's SRs and networks there, memory: `xapi_vm_helpers.ml`
    (`assert_can_boot_here`, `assert_can_see_networks`)."""
    assert_host_usable(sim, host)
    for _, vdi in disks(sim, ref):
        sr = sim.db.get("VDI", vdi)["SR"]
        if not sr_visible(sim, sr, host):
            raise XapiError("VM_REQUIRES_SR", ref, sr)
    for network in networks_missing(sim, ref, host):
        raise XapiError("VM_REQUIRES_NETWORK", ref, network)
    assert_memory(sim, ref, host)


def networks_missing(sim: Simulator, ref: str, host: str) -> list[str]:
    """The VM's networks that have PIFs in the pool but none on `host` (a network without
    PIFs, internal to the pool, is everywhere)."""
    missing = []
    for vif in vm(sim, ref)["VIFs"]:
        network = sim.db.get("VIF", vif)["network"]
        hosts = {sim.db.get("PIF", p)["host"] for p in sim.db.get("network", network)["PIFs"]}
        if hosts and host not in hosts and network not in missing:
            missing.append(network)
    return missing


def place(sim: Simulator, ref: str, host: str, power_state: str) -> None:
    """Set where a VM runs (or NULL when halted) and keep hosts' lists and metrics in step."""
    record = vm(sim, ref)
    old = record["resident_on"]
    sim.db.update(
        "VM",
        ref,
        resident_on=host,
        power_state=power_state,
        scheduled_to_be_resident_on=NULL_REF,
        domid="-1" if host == NULL_REF else str(1 + len(sim.db.tables["VM"]) % 4000),
    )
    for h in {old, host} - {NULL_REF}:
        if sim.db.exists("host", h):
            resident = [
                v
                for v, r in sim.db.tables["VM"].items()
                if r["resident_on"] == h and r["power_state"] in RUNNING_STATES
            ]
            sim.db.update("host", h, resident_VMs=resident)
    refresh_allowed(sim, "VM", ref)
    refresh_host_metrics(sim, *({old, host} - {NULL_REF}))
    if old != host:
        _agent_away(sim, ref, running=power_state == "Running")


def _agent_away(sim: Simulator, ref: str, running: bool) -> None:
    """The guest agent goes quiet when its VM stops, starts or moves; a running guest's
    reports again after `Timing.guest_agent_s`."""
    metrics = vm(sim, ref)["guest_metrics"]
    if sim.db.exists("VM_guest_metrics", metrics):
        sim.db.update("VM_guest_metrics", metrics, live=False)
    sim.guest_agent_due.pop(ref, None)
    if running:
        sim.guest_agent_due[ref] = sim.now() + sim.timing.guest_agent_s


def progress(
    sim: Simulator,
    task: str,
    start: float,
    end: float,
    seconds: float,
    fail_at: float | None = None,
    error: list[str] | None = None,
) -> Generator[Wait, None, None]:
    """Move the task's progress from `start` to `end` over `seconds` of simulator time.

    With `fail_at`, raise `error` when the progress reaches that fraction.
    """
    began = sim.now()
    step = max(seconds / 50, sim.timing.tick_s)
    while True:
        fraction = 1.0 if seconds <= 0 else min(1.0, (sim.now() - began) / seconds)
        value = round(start + (end - start) * fraction, 4)
        if fail_at is not None and value >= fail_at:
            set_progress(sim, task, fail_at)
            raise XapiError(*(error or ["INTERNAL_ERROR", "injected failure"]))
        set_progress(sim, task, value)
        if fraction >= 1.0:
            return
        yield Wait(until=min(began + seconds, sim.now() + step))


def set_progress(sim: Simulator, task: str, value: float) -> None:
    if sim.db.exists("task", task) and sim.db.get("task", task)["progress"] < value:
        sim.db.update("task", task, progress=value)


def not_cancellable(sim: Simulator, task: str) -> None:
    """After this point xapi disables cancellation (the late phase of a migration)."""
    if sim.db.exists("task", task):
        sim.db.update("task", task, allowed_operations=[])
