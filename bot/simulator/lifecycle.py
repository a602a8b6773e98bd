"""VM lifecycle operations an offline migration and snapshot clean-up need.

`VM.destroy` of a snapshot removes its VBDs but not its VDIs, exactly as xapi does, so
callers must `VDI.destroy` the disks themselves (`storage.destroy_vdi`: an ISO too, if asked).
Simplification: `VM.start` picks the affinity host when it can, else the first host that
can boot it (xapi's placement is smarter).
"""

from __future__ import annotations

from collections.abc import Generator

from bot.simulator import rules, storage
from bot.simulator.pool import Call, Simulator, Wait, xapi
from bot.simulator.wire import NULL_REF, XapiError

Proc = Generator[Wait, None, object]


def _shutdown(sim: Simulator, task: str, vm: str, op: str, hard: bool) -> Proc:
    rules.assert_operable(sim, vm, op)
    if not hard and not rules.has_tools(sim, vm):
        raise XapiError("VM_LACKS_FEATURE", vm)
    yield from rules.with_vm_operation(sim, task, vm, op)
    try:
        if not hard and vm in sim.faults.refuse_clean_shutdown:
            yield from rules.progress(sim, task, 0, 0.5, sim.timing.clean_shutdown_s)
            raise XapiError("VM_SHUTDOWN_TIMEOUT", vm, "1200.")
        seconds = sim.timing.hard_shutdown_s if hard else sim.timing.clean_shutdown_s
        yield from rules.progress(sim, task, 0, 1, seconds)
        rules.place(sim, vm, NULL_REF, "Halted")
    finally:
        rules.clear_operation(sim, "VM", vm, task)
    return ""


@xapi("VM.clean_shutdown")
def clean_shutdown(sim: Simulator, call: Call, vm: str) -> Proc:
    return (yield from _shutdown(sim, call.task, vm, "clean_shutdown", hard=False))


@xapi("VM.hard_shutdown")
def hard_shutdown(sim: Simulator, call: Call, vm: str) -> Proc:
    return (yield from _shutdown(sim, call.task, vm, "hard_shutdown", hard=True))


@xapi("VM.shutdown")
def shutdown(sim: Simulator, call: Call, vm: str) -> Proc:
    """Clean first, hard if the guest does not cooperate (xapi since Clearwater)."""
    task = call.task
    try:
        return (yield from _shutdown(sim, task, vm, "shutdown", hard=False))
    except XapiError as error:
        if error.code not in ("VM_LACKS_FEATURE", "VM_SHUTDOWN_TIMEOUT"):
            raise
    return (yield from _shutdown(sim, task, vm, "shutdown", hard=True))


def _start(sim: Simulator, task: str, vm: str, host: str, op: str) -> Proc:
    rules.assert_operable(sim, vm, op)
    rules.assert_can_boot_here(sim, vm, host)
    yield from rules.with_vm_operation(sim, task, vm, op)
    try:
        sim.db.update("VM", vm, scheduled_to_be_resident_on=host)
        failure = sim.faults.take_start_failure(vm)
        with rules.operation(sim, task, "host", host, "vm_start"):
            yield from rules.progress(
                sim, task, 0, 1, sim.timing.start_s, 0.5 if failure else None, failure
            )
        rules.place(sim, vm, host, "Running")
    finally:
        if rules.vm(sim, vm)["scheduled_to_be_resident_on"] == host:
            sim.db.update("VM", vm, scheduled_to_be_resident_on=NULL_REF)
        rules.clear_operation(sim, "VM", vm, task)
    return ""


@xapi("VM.start_on")
def start_on(
    sim: Simulator, call: Call, vm: str, host: str, start_paused: bool, force: bool
) -> Proc:
    sim.db.get("host", host)
    return (yield from _start(sim, call.task, vm, host, "start_on"))


@xapi("VM.start")
def start(sim: Simulator, call: Call, vm: str, start_paused: bool, force: bool) -> Proc:
    affinity = rules.vm(sim, vm)["affinity"]
    candidates = [affinity] if sim.db.exists("host", affinity) else []
    candidates += [h for h in sim.db.tables["host"] if h != affinity]
    for host in candidates:
        try:
            rules.assert_can_boot_here(sim, vm, host)
        except XapiError:
            continue
        return (yield from _start(sim, call.task, vm, host, "start"))
    rules.assert_operable(sim, vm, "start")
    raise XapiError("NO_HOSTS_AVAILABLE")


@xapi("VM.snapshot")
def snapshot(
    sim: Simulator, call: Call, vm: str, new_name: str, ignore_vdis: list | None = None
) -> str:
    """A disk snapshot now (the CD drive keeps pointing at its ISO)."""
    rules.assert_operable(sim, vm, "snapshot")
    return storage.snapshot(sim, vm, new_name, sim.now())


@xapi("VM.destroy")
def destroy(sim: Simulator, call: Call, vm: str) -> str:
    """Remove the VM record, its VBDs, VIFs and metrics; its VDIs stay (as in xapi)."""
    rules.assert_operable(sim, vm, "destroy")
    record = rules.vm(sim, vm)
    if record["current_operations"]:
        task, op = next(iter(record["current_operations"].items()))
        raise XapiError("OTHER_OPERATION_IN_PROGRESS", "VM", vm, op, task)
    for vbd in record["VBDs"]:
        vdi = sim.db.get("VBD", vbd)["VDI"]
        if sim.db.exists("VDI", vdi):
            vbds = [v for v in sim.db.get("VDI", vdi)["VBDs"] if v != vbd]
            sim.db.update("VDI", vdi, VBDs=vbds)
        sim.db.delete("VBD", vbd)
    for vif in record["VIFs"]:
        sim.db.delete("VIF", vif)
    for cls, ref in (
        ("VM_metrics", record["metrics"]),
        ("VM_guest_metrics", record["guest_metrics"]),
    ):
        if sim.db.exists(cls, ref):
            sim.db.delete(cls, ref)
    parent = record["snapshot_of"]
    if sim.db.exists("VM", parent):
        snaps = [s for s in rules.vm(sim, parent)["snapshots"] if s != vm]
        sim.db.update("VM", parent, snapshots=snaps)
    sim.db.delete("VM", vm)
    sim.load.pop(vm, None)
    return ""


@xapi("VDI.destroy")
def vdi_destroy(sim: Simulator, call: Call, vdi: str) -> str:
    storage.destroy_vdi(sim, vdi)
    return ""


@xapi("VM.power_state_reset")
def power_state_reset(sim: Simulator, call: Call, vm: str) -> str:
    """Halted in the database only, and every operation forgotten (`xe vm-reset-powerstate`)."""
    sim.db.update("VM", vm, current_operations={})
    rules.place(sim, vm, NULL_REF, "Halted")
    return ""


@xapi("VM.query_data_source")
def query_data_source(sim: Simulator, call: Call, vm: str, name: str) -> float:
    """The VM's simulated load as `cpu_usage`, on hosts whose xapi has it (API 2.21 and
    later: xapi e89a35eb81, December 2023), and as `cpu0`..`cpu<VCPUs_max - 1>`, busiest
    first and averaging to the load (so a reader can tell the mean from one vCPU). Anything
    else, and every source of a VM that is not running, is missing."""
    record = rules.vm(sim, vm)
    missing = XapiError("INTERNAL_ERROR", f"Rrd_interface.Rrdd_error(Datasource_missing {name})")
    if record["power_state"] != "Running":
        raise missing
    load = sim.load.get(vm, 0.05)
    host = sim.db.get("host", record["resident_on"])
    api = (int(host["API_version_major"]), int(host["API_version_minor"]))
    if name == "cpu_usage" and api >= (2, 21):
        return float(load)
    vcpus = int(record["VCPUs_max"])
    if name not in {f"cpu{n}" for n in range(vcpus)}:
        raise missing
    rank = (vcpus - 1 - 2 * int(name[3:])) / max(vcpus - 1, 1)  # 1 for cpu0 .. -1 for the last
    return float(load + rank * min(load, 1 - load) / 2)
