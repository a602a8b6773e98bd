"""Intra-pool migration: `VM.pool_migrate`, `host.migrate_receive` + `VM.migrate_send`,
and the pre-checks `VM.assert_can_migrate` / `VM.assert_can_boot_here`.

Transfer time = bytes to copy / `Timing.storage_bytes_per_s` (moving disks and their
snapshot disks) then memory / `Timing.memory_bytes_per_s` for a running VM; progress is
bytes-weighted across both phases, as xapi weights its disk copies. A moved disk becomes a
new VDI on its destination SR (`storage.move_disks`); room on that SR is found out by the
copy, not by `assert_can_migrate` (xapi's pre-check does not look at free space).
Simplification: cross-pool migration is not simulated.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from bot.simulator import rules, storage
from bot.simulator.faults import EMU_MANAGER_FAILURE
from bot.simulator.pool import Call, Simulator, Wait, xapi
from bot.simulator.wire import NULL_REF, XapiError

Proc = Generator[Wait, None, object]
TRUE = ("true", "on", "1")


def _forced(options: dict[str, Any]) -> bool:
    return str(options.get("force", "false")).lower() in TRUE


def _mobility(sim: Simulator, vm: str, options: dict[str, Any]) -> None:
    """Checks xapi makes for a running VM whose memory moves (at the run only)."""
    error = rules.feature_error(sim, vm, "pool_migrate", forced=_forced(options))
    if error is not None:
        raise error


def _check_migrate_send(
    sim: Simulator, vm: str, dest: Any, vdi_map: Any, vif_map: Any, options: Any
) -> str:
    """assert_can_migrate's rules; returns the destination host. Like xapi's, they leave
    out guest tools, nomigrate, PCI/USB/vGPU and blocked operations (`xapi_vm_lifecycle.ml`
    `check_op_for_feature` runs with the operation itself)."""
    if not isinstance(dest, dict) or "host" not in dest:
        raise XapiError("INTERNAL_ERROR", "migrate_send: destination map lacks 'host'")
    host = dest["host"]
    sim.db.get("host", host)
    rules.assert_operable(sim, vm, "migrate_send", blocked=False)
    if vif_map:
        raise XapiError(
            "OPERATION_NOT_ALLOWED",
            "VIF mapping is not allowed for intra-pool migration -all VIFs must be on the same "
            "network",
        )
    if str(options.get("copy", "false")).lower() in TRUE:
        raise XapiError(
            "OPERATION_NOT_ALLOWED", "Copy mode is disallowed on intra pool storage migration"
        )
    for _, vdi in rules.disks(sim, vm):
        if vdi not in vdi_map:
            raise XapiError("VDI_NOT_IN_MAP", vdi)
    for vdi, sr in vdi_map.items():
        record = sim.db.get("VDI", vdi)
        sim.db.get("SR", sr)
        if not rules.sr_visible(sim, sr, host):
            raise XapiError("VM_REQUIRES_SR", vm, sr)
        if record["SR"] != sr and record["cbt_enabled"]:
            raise XapiError("VDI_CBT_ENABLED", vdi)
    rules.assert_host_usable(sim, host)
    rules.assert_memory(sim, vm, host)
    return host


def _moving(sim: Simulator, vdi_map: dict[str, str]) -> dict[str, str]:
    """VDIs whose SR changes, with the snapshot disks that follow their parent."""
    moving = {vdi: sr for vdi, sr in vdi_map.items() if sim.db.get("VDI", vdi)["SR"] != sr}
    for vdi, sr in list(moving.items()):
        for snap in sim.db.get("VDI", vdi)["snapshots"]:
            moving.setdefault(snap, sr)
    return moving


def _migration(
    sim: Simulator,
    task: str,
    vm: str,
    host: str,
    op: str,
    moving: dict[str, str],
    options: dict[str, Any],
) -> Proc:
    """The body both migration calls share: reserve, copy disks, copy memory, land.

    Returns the new VDI of each disk that moved (old ref -> new ref).
    """
    running = rules.vm(sim, vm)["power_state"] == "Running"
    copy = sum(int(sim.db.get("VDI", v)["virtual_size"]) for v in moving)
    memory = int(rules.vm(sim, vm)["memory_static_max"]) if running else 0
    total = max(1, copy + memory)
    fail_at, error = _copy_failure(sim, moving, copy / total)
    rule = sim.faults.take_fail_rule(vm)
    if rule and (fail_at is None or rule.at < fail_at):
        fail_at, error = rule.at, rule.error
    if running and sim.load.get(vm, 0.0) > sim.faults.live_fail_load and fail_at is None:
        fail_at = (copy + 0.6 * memory) / total
        error = ["INTERNAL_ERROR", EMU_MANAGER_FAILURE]
    stuck = sim.faults.take_stick_rule(vm)
    if stuck and stuck.error and (fail_at is None or stuck.at < fail_at):
        fail_at, error = stuck.at, stuck.error
    yield from rules.with_vm_operation(sim, task, vm, op)
    renamed: dict[str, str] = {}
    try:
        if running:
            sim.db.update("VM", vm, scheduled_to_be_resident_on=host)
            rules.set_operation(sim, "host", host, task, "vm_migrate")
        seconds = copy / sim.timing.storage_bytes_per_s
        yield from rules.progress(sim, task, 0, copy / total, seconds, fail_at, error)
        if op == "migrate_send":
            rules.not_cancellable(sim, task)
        seconds = memory / sim.timing.memory_bytes_per_s
        yield from rules.progress(sim, task, copy / total, 1.0, seconds, fail_at, error)
        renamed = storage.move_disks(sim, moving)
        if running:
            rules.place(sim, vm, host, "Running")
    finally:
        if rules.vm(sim, vm)["scheduled_to_be_resident_on"] == host:
            sim.db.update("VM", vm, scheduled_to_be_resident_on=NULL_REF)
            rules.refresh_host_metrics(sim, host)
        if not stuck:
            rules.clear_operation(sim, "VM", vm, task)
            rules.clear_operation(sim, "host", host, task)
    return renamed


def _copy_failure(
    sim: Simulator, moving: dict[str, str], copy_share: float
) -> tuple[float | None, list[str] | None]:
    """Where the disk copy fails by itself: a destination that takes no new VDI fails at
    once; one without room fails when that disk's turn comes."""
    sr = storage.unwritable(sim, moving)
    if sr is not None:
        return 0.0, ["SR_OPERATION_NOT_SUPPORTED", sr]
    at = storage.out_of_space(sim, moving)
    return (None, None) if at is None else (at * copy_share, list(storage.NO_SPACE))


@xapi("VM.pool_migrate")
def pool_migrate(sim: Simulator, call: Call, vm: str, host: str, options: dict) -> Proc:
    rules.assert_operable(sim, vm, "pool_migrate")
    _mobility(sim, vm, options)
    rules.assert_can_boot_here(sim, vm, host)
    yield from _migration(sim, call.task, vm, host, "pool_migrate", {}, options)
    return ""


def _storage_migrations(sim: Simulator) -> int:
    return sum(
        1
        for record in sim.db.tables["VM"].values()
        for op in record["current_operations"].values()
        if op == "migrate_send"
    )


@xapi("VM.migrate_send")
def migrate_send(
    sim: Simulator,
    call: Call,
    vm: str,
    dest: dict,
    live: bool,
    vdi_map: dict,
    vif_map: dict,
    options: dict,
    vgpu_map: dict | None = None,
    vdi_format_map: dict | None = None,
) -> Proc:
    host = _check_migrate_send(sim, vm, dest, vdi_map, vif_map, options)
    rules.assert_operable(sim, vm, "migrate_send")  # blocked operations: found at the run
    if rules.vm(sim, vm)["power_state"] == "Running":
        _mobility(sim, vm, options)  # found at the run: xapi's assert_can_migrate skips it
    if _storage_migrations(sim) >= sim.timing.max_storage_migrations:
        raise XapiError("TOO_MANY_STORAGE_MIGRATES", sim.timing.max_storage_migrations)
    moving = _moving(sim, vdi_map)
    yield from _migration(sim, call.task, vm, host, "migrate_send", moving, options)
    return vm


@xapi("VM.assert_can_migrate")
def assert_can_migrate(
    sim: Simulator,
    call: Call,
    vm: str,
    dest: dict,
    live: bool,
    vdi_map: dict,
    vif_map: dict,
    options: dict,
    vgpu_map: dict | None = None,
) -> Proc:
    _check_migrate_send(sim, vm, dest, vdi_map, vif_map, options)
    return ""
    yield  # a process, so that Async.VM.assert_can_migrate works as in xapi


@xapi("VDI.pool_migrate")
def vdi_pool_migrate(sim: Simulator, call: Call, vdi: str, sr: str, options: dict) -> Proc:
    """One disk of a VM to another SR: the VM's migrate_send with its other disks in place.

    Returns the disk's *new* VDI (`xapi_vm_migrate.ml`, `vdi_pool_migrate`).
    """
    record = sim.db.get("VDI", vdi)
    sim.db.get("SR", sr)
    owners = [
        sim.db.get("VBD", v)["VM"]
        for v in record["VBDs"]
        if not rules.vm(sim, sim.db.get("VBD", v)["VM"])["is_a_snapshot"]
    ]
    if not owners:
        raise XapiError("VDI_NEEDS_VM_FOR_MIGRATE", vdi)
    if record["cbt_enabled"]:
        raise XapiError("VDI_CBT_ENABLED", vdi)
    vm = owners[0]
    host = rules.vm(sim, vm)["resident_on"]
    host = host if sim.db.exists("host", host) else sim.master
    vdi_map = {v: sim.db.get("VDI", v)["SR"] for _, v in rules.disks(sim, vm)} | {vdi: sr}
    check = _check_migrate_send(sim, vm, {"host": host}, vdi_map, {}, options)
    renamed = yield from _migration(
        sim, call.task, vm, check, "migrate_send", _moving(sim, vdi_map), options
    )
    return renamed.get(vdi, vdi)


@xapi("VM.assert_can_boot_here")
def assert_can_boot_here(sim: Simulator, call: Call, vm: str, host: str) -> str:
    rules.assert_can_boot_here(sim, vm, host)
    return ""


@xapi("host.migrate_receive")
def migrate_receive(sim: Simulator, call: Call, host: str, network: str, options: dict) -> Proc:
    """The token migrate_send takes: URLs on the destination and a session for it."""
    address = sim.db.get("host", host)["address"]
    sim.db.get("network", network)
    session = sim.open_session("migrate_receive")
    master = sim.db.get("host", sim.master)["address"]
    return {
        "SM": f"http://{address}/services/SM?session_id={session}",
        "host": host,
        "xenops": f"http://{address}/services/xenops?session_id={session}",
        "session_id": session,
        "master": f"http://{master}",
    }
    yield
