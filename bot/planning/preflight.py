"""Pre-flight checklist: plan + facts -> every check as pass, warning or blocker, with its fix.

Severity is design.md's rule: a blocker is what xapi would refuse or what could lose data
(no Approve button until fixed and re-checked); a warning is what the operators' guide
recommends but does not require. Every check the mode applies to is returned, passes
included, under a stable key, so the request message shows the whole list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.models import Check, DiskMove, Fix, Mode, Plan, PoolFacts, Severity, VMFacts
from bot.planning.explain import explain, names_for
from bot.planning.plan import format_sr_choices, full_size, reachable_srs, space_needed, with_mode
from bot.planning.resolve import disk_label, join_or
from bot.planning.units import format_duration, format_size

TITLES: dict[str, str] = {
    "power_state": "Power state",
    "busy": "Other operations",
    "operations": "Allowed operations",
    "host": "Destination host",
    "memory": "Memory",
    "sr_reach": "Storage reach",
    "networks": "Networks",
    "space": "Free space",
    "guest_tools": "Guest tools",
    "devices": "Devices",
    "cbt": "Changed-block tracking",
    "xapi": "xapi pre-check",
    "load": "CPU load",
    "snapshots": "Snapshots",
    "backup": "Backups",
}
KEYS = tuple(TITLES)  # the order the checklist is shown in

_RANK = {Severity.PASS: 0, Severity.WARNING: 1, Severity.BLOCKER: 2}


def checklist(
    plan: Plan,
    pool: PoolFacts,
    *,
    backup_tag: str,
    cpu_threshold: float,
    assert_error: Sequence[str] | None,
) -> tuple[Check, ...]:
    """Every check for `plan`, in KEYS order; `assert_error` is xapi's own pre-check verdict.

    `assert_error` is the ErrorDescription of VM.assert_can_migrate (assert_can_boot_here
    for pool_migrate), None when it passed or was not run.
    """
    found = (
        _power_state(plan, pool),
        _busy(plan.vm),
        _operations(plan),
        _host(plan, pool),
        _memory(plan, pool),
        _reach(plan, pool),
        _networks(plan, pool),
        _space(plan, pool),
        _guest_tools(plan),
        _devices(plan, pool),
        _cbt(plan),
        _xapi(plan, pool, assert_error),
        _load(plan, cpu_threshold),
        _snapshots(plan.vm),
        _backup(plan.vm, backup_tag),
    )
    return tuple(check for check in found if check is not None)


def blocking(checks: Iterable[Check]) -> bool:
    """True while any check blocks: the request message then has no Approve button."""
    return any(check.severity is Severity.BLOCKER for check in checks)


def recommended_mode(vm: VMFacts, *, cpu_threshold: float) -> Mode:
    """Live only for a running VM with guest tools that is not heavily loaded."""
    loaded = vm.cpu_usage is not None and vm.cpu_usage > cpu_threshold
    if vm.power_state != "Running" or not vm.has_guest_tools or loaded:
        return "offline"
    return "live"


def is_excluded_from_backup(tags: Iterable[str], backup_tag: str) -> bool:
    """Xen Orchestra skips VMs tagged `xo:no-bak` or `xo:no-bak=<reason>`."""
    return any(t == backup_tag or t.startswith(backup_tag + "=") for t in tags)


def _check(
    key: str, severity: Severity, reason: str, fix: str = "", action: Fix | None = None
) -> Check:
    return Check(key, severity, TITLES[key], reason, fix, action)


def _host_name(pool: PoolFacts, ref: str) -> str:
    host = pool.hosts.get(ref)
    return host.name if host else ref


def _sr_name(pool: PoolFacts, ref: str) -> str:
    sr = pool.srs.get(ref)
    return sr.shown if sr else ref


def _power_state(plan: Plan, pool: PoolFacts) -> Check:
    vm, dest = plan.vm, _host_name(pool, plan.dest_host_ref)
    if vm.power_state in ("Suspended", "Paused"):
        undo = "resume" if vm.power_state == "Suspended" else "unpause"
        return _check(
            "power_state",
            Severity.BLOCKER,
            f"{vm.name} is {vm.power_state.lower()}; only running or halted VMs can move",
            f"{undo} it or shut it down, then Re-check",
        )
    if plan.mode == "live" and vm.power_state != "Running":
        return _check(
            "power_state",
            Severity.BLOCKER,
            f"{vm.name} is halted; a live migration needs a running VM",
            "Switch to offline: a halted VM moves without being started",
            Fix.SWITCH_TO_OFFLINE,
        )
    if vm.power_state == "Halted":
        reason = f"{vm.name} is halted and stays halted; its next start lands on {dest}"
    elif plan.mode == "live":
        reason = f"{vm.name} is running and moves while it runs"
    else:
        reason = f"{vm.name} is running; it is shut down, moved and started on {dest}"
    return _check("power_state", Severity.PASS, reason)


def _busy(vm: VMFacts) -> Check:
    ops = sorted(set(vm.current_operations.values()))
    if not ops:
        return _check("busy", Severity.PASS, f"no other operation is running on {vm.name}")
    return _check(
        "busy",
        Severity.BLOCKER,
        f"{vm.name} is busy: {', '.join(ops)} in progress (xapi would queue the move for hours)",
        "wait for it to end, then Re-check; an entry that never goes away is a stuck "
        "migration (restart the toolstack)",
    )


def _host(plan: Plan, pool: PoolFacts) -> Check:
    host = pool.hosts.get(plan.dest_host_ref)
    if host is None:
        return _check(
            "host",
            Severity.BLOCKER,
            "the destination host is no longer in the pool",
            "pick another host",
        )
    problems = [
        *([] if host.enabled else ["disabled (maintenance mode or a toolstack restart)"]),
        *([] if host.live else ["not live (the pool sees it as down)"]),
    ]
    if not problems:
        return _check("host", Severity.PASS, f"{host.name} is enabled and live")
    return _check(
        "host",
        Severity.BLOCKER,
        f"{host.name} is {' and '.join(problems)}",
        f"pick another host, or bring {host.name} back, then Re-check",
    )


def _memory(plan: Plan, pool: PoolFacts) -> Check | None:
    host, vm = pool.hosts.get(plan.dest_host_ref), plan.vm
    if host is None:
        return None  # the host check blocks already
    need = vm.memory_needed
    frees_own = (
        plan.mode == "offline"
        and vm.power_state == "Running"
        and vm.resident_on == plan.dest_host_ref
    )
    available = host.free_memory + (need if frees_own else 0)
    found = f"{host.name} has {format_size(host.free_memory)} free" + (
        f" plus what {vm.name} frees when it shuts down" if frees_own else ""
    )
    if need <= available:
        return _check("memory", Severity.PASS, f"{found}; {vm.name} needs {format_size(need)}")
    if vm.power_state == "Halted" and plan.call == "none":
        return _check(
            "memory",
            Severity.WARNING,
            f"{found}; {vm.name} needs {format_size(need)} to start there",
            f"free {format_size(need - available)} on {host.name} before starting {vm.name}, "
            "or pick another host",
        )
    return _check(
        "memory",
        Severity.BLOCKER,
        f"{found}; {vm.name} needs {format_size(need)}",
        f"pick another host or free {format_size(need - available)} on {host.name} "
        "(move or stop other VMs), then Re-check",
    )


def _reach(plan: Plan, pool: PoolFacts) -> Check:
    dest = _host_name(pool, plan.dest_host_ref)
    unreachable = [m for m in plan.disks if not _reaches(pool, plan.dest_host_ref, m)]
    if not unreachable:
        targets = sorted({_sr_name(pool, m.dest_sr_ref) for m in plan.disks})
        reason = f"{dest} reaches {join_or(targets)}" if targets else f"{plan.vm.name} has no disks"
        return _check("sr_reach", Severity.PASS, reason)
    srs = sorted({_sr_name(pool, m.dest_sr_ref) for m in unreachable})
    disks = ", ".join(disk_label(m.disk) for m in unreachable)
    need = sum(space_needed(plan.vm, m.disk) for m in unreachable)
    full = sum(full_size(plan.vm, m.disk) for m in unreachable)
    fits = reachable_srs(pool, plan.dest_host_ref, need, full)
    fix = (
        f"choose sr=<sr> or disk:<n>=<sr> from the SRs {dest} reaches with room: "
        f"{format_sr_choices(fits)}"
        if fits
        else f"no SR that {dest} reaches has {format_size(need)} free; pick another host"
    )
    return _check(
        "sr_reach", Severity.BLOCKER, f"{dest} cannot reach {join_or(srs)} (disk {disks})", fix
    )


def _reaches(pool: PoolFacts, host_ref: str, move: DiskMove) -> bool:
    sr = pool.srs.get(move.dest_sr_ref)
    return sr is not None and host_ref in sr.hosts


def _space(plan: Plan, pool: PoolFacts) -> Check:
    """Per destination SR: room for what the moving disks will take there (their full size
    on a thick SR), and for their full size."""
    needs: dict[str, tuple[int, int]] = {}
    for move in plan.disks:
        if move.moves and move.dest_sr_ref in pool.srs:
            used, full = needs.get(move.dest_sr_ref, (0, 0))
            needs[move.dest_sr_ref] = (
                used + space_needed(plan.vm, move.disk, pool.srs[move.dest_sr_ref]),
                full + full_size(plan.vm, move.disk),
            )
    if not needs:
        return _check("space", Severity.PASS, "no disk changes SR")
    graded = [
        (_space_grade(pool, ref, used, full), ref, used, full)
        for ref, (used, full) in needs.items()
    ]
    worst = max((grade for grade, *_ in graded), key=_RANK.__getitem__)
    short = [(ref, used, full) for grade, ref, used, full in graded if grade is worst]
    return _SPACE_TEXT[worst](plan, pool, short)


def _space_grade(pool: PoolFacts, sr_ref: str, used: int, full: int) -> Severity:
    free = pool.srs[sr_ref].free
    if used > free:
        return Severity.BLOCKER
    return Severity.WARNING if full > free else Severity.PASS


def _space_pass(plan: Plan, pool: PoolFacts, srs: list[tuple[str, int, int]]) -> Check:
    found = "; ".join(
        f"{pool.srs[ref].shown} has {format_size(pool.srs[ref].free)} free for {format_size(full)}"
        for ref, _used, full in srs
    )
    return _check("space", Severity.PASS, found)


def _space_warning(plan: Plan, pool: PoolFacts, srs: list[tuple[str, int, int]]) -> Check:
    found = "; ".join(
        f"{pool.srs[ref].shown} has {format_size(pool.srs[ref].free)} free: room for the "
        f"{format_size(used)} the disks use now, not for their full {format_size(full)}"
        for ref, used, full in srs
    )
    full = max(full for _ref, _used, full in srs)
    fits = reachable_srs(pool, plan.dest_host_ref, full, full)
    fix = "the copy fits, but the disks cannot grow to their full size there"
    if fits:
        fix += f"; SRs with room for {format_size(full)}: {format_sr_choices(fits)}"
    return _check("space", Severity.WARNING, found, fix)


def _space_blocker(plan: Plan, pool: PoolFacts, srs: list[tuple[str, int, int]]) -> Check:
    found = "; ".join(
        f"{pool.srs[ref].shown} has {format_size(pool.srs[ref].free)} free, the disks moving "
        + (
            f"there take their full {format_size(used)} (a thick, LVM-based SR)"
            if pool.srs[ref].thick
            else f"there use {format_size(used)}"
        )
        for ref, used, _full in srs
    )
    need = max(used for _ref, used, _full in srs)
    fits = reachable_srs(pool, plan.dest_host_ref, need, max(f for _r, _u, f in srs))
    fix = "free space there or choose another SR (sr= or disk:<n>=)"
    if fits:
        fix += f": {format_sr_choices(fits)}"
    return _check("space", Severity.BLOCKER, found, fix + ", then Re-check")


_SPACE_TEXT = {
    Severity.PASS: _space_pass,
    Severity.WARNING: _space_warning,
    Severity.BLOCKER: _space_blocker,
}


def _operations(plan: Plan) -> Check | None:
    """The operations the plan needs, against xapi's `allowed_operations` (what it offers
    in the VM's state now) and `blocked_operations` (what someone blocked): its pre-check
    looks at neither; the operation itself fails on them."""
    vm = plan.vm
    now, later = _needed_operations(plan)
    blocked = [op for op in (*now, *later) if op in vm.blocked_operations]
    if blocked:
        op = blocked[0]
        why = vm.blocked_operations[op]
        return _check(
            "operations",
            Severity.BLOCKER,
            f"someone blocked {op} on {vm.name}" + (f" ({why})" if why else ""),
            f"remove the block if its reason no longer holds (xe vm-param-remove "
            f"uuid={vm.uuid} param-name=blocked-operations param-key={op}), then Re-check",
        )
    if vm.allowed_operations is None or vm.current_operations or not now:
        return None  # unknown, or busy (said by "Other operations"), or nothing asked now
    explained = (
        {"pool_migrate", "migrate_send", "clean_shutdown"} if not vm.has_guest_tools else set()
    )
    missing = [op for op in now if op not in vm.allowed_operations and op not in explained]
    if missing:
        return _check(
            "operations",
            Severity.BLOCKER,
            f"xapi does not allow {join_or(missing)} on {vm.name} now (its allowed_operations)",
            "look at the VM in XenCenter or Xen Orchestra for what holds it, then Re-check",
        )
    return _check("operations", Severity.PASS, f"xapi allows {', '.join(now)} on {vm.name}")


def _needed_operations(plan: Plan) -> tuple[list[str], list[str]]:
    """(operations asked of the VM as it is now, operations asked after its shutdown)."""
    running = plan.vm.power_state == "Running"
    if plan.mode == "live":
        return ([plan.call] if plan.call != "none" else []), []
    if not running:
        return (["migrate_send"] if plan.call == "migrate_send" else []), []
    shutdown = "hard_shutdown" if plan.shutdown == "hard" else "clean_shutdown"
    later = ["migrate_send"] if plan.call == "migrate_send" else []
    return [shutdown], [*later, "start_on"]


def _networks(plan: Plan, pool: PoolFacts) -> Check | None:
    """A VM starts only where each of its networks has a PIF (xapi's assert_can_boot_here,
    VM_REQUIRES_NETWORK); internal networks without PIFs are everywhere."""
    nets = [pool.networks[n] for n in plan.vm.networks if n in pool.networks]
    if not nets:
        return None
    dest = _host_name(pool, plan.dest_host_ref)
    missing = [n.name for n in nets if n.hosts and plan.dest_host_ref not in n.hosts]
    if not missing:
        return _check("networks", Severity.PASS, f"{dest} has {join_or([n.name for n in nets])}")
    found = f"{dest} has no PIF on network {join_or(missing)}: {plan.vm.name} cannot start there"
    fix = "pick a host with those networks, or add a PIF on them to the host"
    if plan.vm.power_state != "Running":
        return _check("networks", Severity.WARNING, found + " (it stays halted now)", fix)
    return _check("networks", Severity.BLOCKER, found, fix + ", then Re-check")


def _devices(plan: Plan, pool: PoolFacts) -> Check | None:
    """Passed-through hardware (PCI, vGPU, USB) is not moved live by xapi, and offline the
    destination must have the same device for the VM to start."""
    devices = plan.vm.devices
    if not devices or plan.vm.power_state != "Running":
        return None
    dest = _host_name(pool, plan.dest_host_ref)
    found = f"{plan.vm.name} has a {join_or(list(devices))} passed through"
    if plan.mode == "live":
        return _check(
            "devices",
            Severity.BLOCKER,
            f"{found}: xapi does not migrate it live",
            f"Switch to offline, after checking {dest} has the same device",
            Fix.SWITCH_TO_OFFLINE,
        )
    return _check(
        "devices",
        Severity.WARNING,
        f"{found}: it starts on {dest} only if {dest} has the same device",
        f"check {dest}'s devices before approving",
    )


def _guest_tools(plan: Plan) -> Check | None:
    vm = plan.vm
    if vm.power_state != "Running":
        return None  # nothing to shut down or copy live
    if vm.has_guest_tools:
        return _check("guest_tools", Severity.PASS, "guest tools (PV drivers) are running")
    if plan.mode == "live":
        return _check(
            "guest_tools",
            Severity.BLOCKER,
            "no guest tools (PV drivers): xapi refuses to migrate the VM live",
            "install the guest tools, or Switch to offline (with shutdown=hard)",
            Fix.SWITCH_TO_OFFLINE,
        )
    if plan.shutdown == "hard":
        return _check("guest_tools", Severity.PASS, "no guest tools; shutdown=hard powers it off")
    return _check(
        "guest_tools",
        Severity.WARNING,
        "no guest tools (PV drivers): a clean shutdown would fail",
        "use shutdown=hard: the guest is powered off without warning, like pulling the plug",
        Fix.HARD_SHUTDOWN,
    )


def _cbt(plan: Plan) -> Check:
    """xapi refuses migrate_send for a VM with any CBT disk; pool_migrate does not care."""
    with_cbt = [disk_label(m.disk) for m in plan.disks if m.disk.cbt_enabled]
    if not with_cbt:
        return _check("cbt", Severity.PASS, "no disk has CBT on")
    disks = ", ".join(with_cbt)
    if plan.call != "migrate_send":
        return _check("cbt", Severity.PASS, f"CBT is on for disk {disks}; no disk changes SR")
    return _check(
        "cbt",
        Severity.BLOCKER,
        f"CBT is on for disk {disks}; xapi refuses to move the storage of such a VM",
        "disable CBT on those disks (the next delta backup becomes a full one), then Re-check",
    )


def _xapi(plan: Plan, pool: PoolFacts, assert_error: Sequence[str] | None) -> Check | None:
    if assert_error is None:
        if plan.call == "none":
            return None  # nothing for xapi to pre-check
        call = "assert_can_migrate" if plan.call == "migrate_send" else "assert_can_boot_here"
        return _check("xapi", Severity.PASS, f"xapi accepts the move (VM.{call})")
    why = explain(assert_error, live=plan.mode == "live", names=names_for(pool, plan.vm))
    action = Fix.SWITCH_TO_OFFLINE if why.retry_offline else None
    return _check("xapi", Severity.BLOCKER, why.sentence, why.next_step, action)


def _load(plan: Plan, cpu_threshold: float) -> Check | None:
    cpu = plan.vm.cpu_usage
    if plan.mode != "live" or plan.vm.power_state != "Running":
        return None
    if cpu is None:
        return _check("load", Severity.PASS, "CPU load unknown (xapi had no figure); not judged")
    found = f"CPU at {cpu:.0%} (warning above {cpu_threshold:.0%})"
    if cpu <= cpu_threshold:
        return _check("load", Severity.PASS, found)
    return _check(
        "load",
        Severity.WARNING,
        f"{found}: heavily loaded live migrations tend to fail and can wedge the VM until the "
        "toolstack is restarted",
        f"Switch to offline{_offline_downtime(plan)}",
        Fix.SWITCH_TO_OFFLINE,
    )


def _offline_downtime(plan: Plan) -> str:
    if plan.throughput_mbps <= 0:
        return ": the VM is down while it moves"
    offline = with_mode(plan, "offline")
    return f": about {format_duration(offline.downtime_seconds)} of downtime"


def _snapshots(vm: VMFacts) -> Check:
    count = len(vm.snapshots)
    if not count:
        return _check("snapshots", Severity.PASS, "no snapshots")
    plural = "s" if count > 1 else ""
    shown = ", ".join(f"'{s.name}'" for s in vm.snapshots[:3])
    more = f" and {count - 3} more" if count > 3 else ""
    return _check(
        "snapshots",
        Severity.WARNING,
        f"{count} snapshot{plural} ({shown}{more}); the guide deletes snapshots before a move",
        f"Delete {count} snapshot{plural}: the incremental backup chain is lost, so the next "
        "backup is a full one; the backups themselves stay",
        Fix.DELETE_SNAPSHOTS,
    )


def _backup(vm: VMFacts, backup_tag: str) -> Check:
    tags = [t for t in vm.tags if is_excluded_from_backup([t], backup_tag)]
    if tags:
        return _check("backup", Severity.PASS, f"excluded from backups (tag '{tags[0]}')")
    return _check(
        "backup",
        Severity.WARNING,
        f"{vm.name} is not excluded from backups: a backup could start during the move",
        f"Exclude from backup: tag the VM '{backup_tag}' until the move succeeds "
        "(the bot removes the tag afterwards)",
        Fix.EXCLUDE_FROM_BACKUP,
    )
