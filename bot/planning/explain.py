"""XAPI's ErrorDescription -> what happened, in plain words, and what the operator does next.

Pure and total: whatever list xapi (or a broken proxy) sends, `explain` returns an
Explanation, because it runs exactly when something already went wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.models import PoolFacts, VMFacts
from bot.planning.resolve import disk_label, join_or
from bot.planning.units import format_duration, format_size


@dataclass(frozen=True)
class Explanation:
    code: str
    sentence: str  # what happened
    next_step: str  # what the operator does about it
    retry_offline: bool = False  # a failed live run an offline run usually gets through

    def __str__(self) -> str:
        return f"{self.sentence} {self.next_step}"


@dataclass(frozen=True)
class _Rule:
    """Templates over the params: {p1} raw, {n1} name, {s1} size, {d1} duration,
    {o1} 'a or b' list, {q1} ' (detail)' or nothing, {num} the code's number."""

    sentence: str
    next_step: str  # for a live run of an `offline_helps` rule, "Retry offline" comes first
    offline_helps: bool = False  # a live failure that an offline run usually gets through


_RECHECK = "then Re-check."
_LOGS = "Look at xensource.log on the pool master (and SMlog for storage), then retry once."
_RETRY_OFFLINE = "Retry offline: shut down, move and start the VM, which avoids the live copy."

_RULES: dict[str, _Rule] = {
    # Power state and concurrency
    "VM_BAD_POWER_STATE": _Rule(
        "{n0} is {o2}, but this operation needs it {o1}.",
        "Live needs a running VM, offline a running or halted one; fix the power state, "
        + _RECHECK,
    ),
    "OTHER_OPERATION_IN_PROGRESS": _Rule(
        "{p0} {n1} is busy with another operation ({p2}); xapi waited for it and gave up.",
        "Wait for that operation to end (if it never does, it is a stuck migration: restart "
        "the toolstack), " + _RECHECK,
    ),
    "OPERATION_BLOCKED": _Rule(
        "Someone blocked this operation on {n0}{q1}.",
        "Remove the block (the VM's blocked_operations) if its reason no longer holds, " + _RECHECK,
    ),
    "OPERATION_NOT_ALLOWED": _Rule(
        "xapi does not allow this operation{q0}.", "Adjust the request, " + _RECHECK
    ),
    "TASK_CANCELLED": _Rule(
        "The operation was cancelled and xapi rolled it back.",
        "Check where the VM is in the thread; file the request again when ready.",
    ),
    "TOO_MANY_STORAGE_MIGRATES": _Rule(
        "xapi already runs {p0} storage migrations, its limit.",
        "Nothing to do: the bot waits for a free slot and retries.",
    ),
    "TOO_MANY_PENDING_TASKS": _Rule(
        "xapi has too many tasks pending to take another one.",
        "Wait a few minutes for the pool to calm down, then retry.",
    ),
    # Destination host
    "HOST_NOT_ENOUGH_FREE_MEMORY": _Rule(
        "The destination host has {s1} free, but the VM needs {s0}.",
        "Pick another host or free memory on this one (move or stop other VMs), " + _RECHECK,
    ),
    "HOST_NOT_ENOUGH_PCPUS": _Rule(
        "The VM has {p0} vCPUs, more than the {p1} physical CPUs of the destination host.",
        "Pick a bigger host or lower the VM's vCPU count, " + _RECHECK,
    ),
    "HOST_DISABLED": _Rule(
        "Host {n0} is disabled (maintenance mode, or its toolstack is restarting).",
        "Wait until it is enabled again or pick another host, " + _RECHECK,
    ),
    "HOST_OFFLINE": _Rule(
        "Host {n0} is offline: the pool master cannot reach it.",
        "Check that host; pick another one meanwhile.",
    ),
    "HOST_NOT_LIVE": _Rule(
        "The destination host is not live: the pool sees it as down.",
        "Check that host; pick another one meanwhile.",
    ),
    "HOST_STILL_BOOTING": _Rule(
        "The host is still booting.", "Wait a minute for its toolstack to come up, then retry."
    ),
    "HOST_EVACUATE_IN_PROGRESS": _Rule(
        "Host {n0} is being evacuated (all VMs are leaving it).",
        "Pick another host, " + _RECHECK,
    ),
    "HOST_CANNOT_ATTACH_NETWORK": _Rule(
        "Host {n0} cannot attach network {n1}, which the migration uses.",
        "Check that host's network interfaces (PIFs), or pick another host.",
    ),
    "VM_REQUIRES_NETWORK": _Rule(
        "The destination host is not on network {n1}, which {n0} uses.",
        "Pick a host on that network, or connect this one, " + _RECHECK,
    ),
    "VM_REQUIRES_SR": _Rule(
        "The destination host cannot reach SR {n1}, which holds a disk of {n0}.",
        "Move that disk to an SR the destination host sees (sr= or disk:<n>=), "
        "or pick another host.",
    ),
    "VM_INCOMPATIBLE_WITH_THIS_HOST": _Rule(
        "{n0} cannot run on {n1}{q2}.",
        "Pick a host with the same CPU features.",
        offline_helps=True,
    ),
    "VM_HOST_INCOMPATIBLE_VERSION": _Rule(
        "Host {n0} runs an older XAPI version than the VM's host.",
        "Move VMs only to hosts with the same or a newer version (update the pool first).",
    ),
    "NOT_SUPPORTED_DURING_UPGRADE": _Rule(
        "The pool is in the middle of a rolling upgrade.", "Finish the upgrade, then retry."
    ),
    "NO_HOSTS_AVAILABLE": _Rule(
        "No host in the pool can run the VM now (memory, storage or network).",
        "Free memory on a host or attach the VM's SRs and networks there, then start the VM.",
    ),
    "HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN": _Rule(
        "The move would break the pool's HA failover plan: too little spare capacity would be "
        "left to restart protected VMs if a host fails.",
        "Free capacity, pick another host, or lower the HA host-failures-to-tolerate, " + _RECHECK,
    ),
    # The VM itself
    "VM_LACKS_FEATURE": _Rule(
        "{n0} has no guest tools (PV drivers), so xapi cannot migrate it live.",
        "Without tools it needs shutdown=hard; or install the guest tools.",
        offline_helps=True,
    ),
    "VM_MISSING_PV_DRIVERS": _Rule(
        "{n0} has no guest tools (PV drivers).",
        "Without tools it needs shutdown=hard; or install the guest tools.",
        offline_helps=True,
    ),
    "VM_OLD_PV_DRIVERS": _Rule(
        "{n0}'s guest tools are too old ({p1}.{p2}).",
        "Update the guest tools.",
        offline_helps=True,
    ),
    "VM_IS_IMMOBILE": _Rule(
        "{n0} is marked as not migratable while running (nomigrate or nested virtualisation).",
        "",
        offline_helps=True,
    ),
    "VM_NON_SUSPENDABLE": _Rule(
        "{n0} cannot be paused for a live move{q1}.", "", offline_helps=True
    ),
    "VM_HAS_PCI_ATTACHED": _Rule(
        "{n0} has a PCI device passed through, which cannot move live.",
        "Move it offline if the destination host has the same device, or detach it first.",
    ),
    "VM_HAS_VGPU": _Rule(
        "{n0} has a virtual GPU, which this pool cannot move live.",
        "Move it offline if the destination host has a matching GPU, or remove the vGPU first.",
    ),
    "VM_HAS_VUSBS": _Rule(
        "{n0} has USB devices passed through, which cannot move live.",
        "Detach them, or move it offline if the destination host has the same devices.",
    ),
    "VM_IS_TEMPLATE": _Rule("{n0} is a template, not a VM.", "Templates are not migrated."),
    "VM_IS_SNAPSHOT": _Rule("{n0} is a snapshot, not a VM.", "Snapshots move with their VM."),
    "VM_SHUTDOWN_TIMEOUT": _Rule(
        "{n0} did not shut down within {d1}.",
        "Retry with shutdown=hard, or look at the guest's console first.",
    ),
    "VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT": _Rule(
        "{n0} did not acknowledge the request to shut down.",
        "Retry with shutdown=hard, or look at the guest's console first.",
    ),
    "BALLOONING_TIMEOUT_BEFORE_MIGRATION": _Rule(
        "{n0} did not release memory in time for the migration.",
        "A later retry may also work.",
        offline_helps=True,
    ),
    "VMS_FAILED_TO_COOPERATE": _Rule(
        "Guests on the host did not release memory when asked.",
        "Free memory on the destination host or pick another one, " + _RECHECK,
    ),
    # The live copy
    "VM_MIGRATE_FAILED": _Rule(
        "The live migration of {n0} from {n1} to {n2} failed{q3}.",
        "",
        offline_helps=True,
    ),
    "INTERNAL_ERROR:emu-manager": _Rule(
        "The live copy of the VM's memory failed in emu-manager{q0}.",
        "If the VM still shows as migrating, restart the toolstack.",
        offline_helps=True,
    ),
    "VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED": _Rule(
        "The source host could not reach the destination's migration service.",
        "Check the network between the hosts, then retry.",
    ),
    "CANNOT_CONTACT_HOST": _Rule(
        "xapi could not contact host {n0}.", "Check the network to that host, then retry."
    ),
    # Storage
    "VDI_CBT_ENABLED": _Rule(
        "Disk {n0} has changed-block tracking (CBT) on, which storage migration refuses.",
        "Disable CBT on that disk (its next delta backup becomes a full one), " + _RECHECK,
    ),
    "VDI_IS_ENCRYPTED": _Rule(
        "Disk {n0} is encrypted, and xapi cannot migrate encrypted disks.",
        "Leave it on an SR the destination host reaches, " + _RECHECK,
    ),
    "VDI_NOT_IN_MAP": _Rule(
        "The bot's disk map missed disk {n0} (a bot bug).",
        "Re-check to refresh the VM's disks and retry; report it if it repeats.",
    ),
    "VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION": _Rule(
        "A disk{q0} resets on boot (on-boot=reset), which migration does not support.",
        "Set the disk's on-boot mode to persist, " + _RECHECK,
    ),
    "VDI_IN_USE": _Rule(
        "Disk {n0} is in use by another operation.", "Wait for it to finish, " + _RECHECK
    ),
    "VDI_MISSING": _Rule(
        "Disk {n1} is missing from SR {n0}.", "Rescan the SR and check the disk, " + _RECHECK
    ),
    "VDI_IO_ERROR": _Rule(
        "A disk read or write failed during the copy{q0}.",
        "Check the SRs and the hosts' storage logs (SMlog), then retry.",
    ),
    "MIRROR_FAILED": _Rule(
        "Mirroring disk {n0} to the destination SR failed while the VM was running.",
        "If it fails again, check both SRs' health.",
        offline_helps=True,
    ),
    "SR_OPERATION_NOT_SUPPORTED": _Rule(
        "SR {n0} cannot take a new disk (an ISO library, removable media or read-only).",
        "Choose another SR for the disks (sr= or disk:<n>=), " + _RECHECK,
    ),
    "SR_DOES_NOT_SUPPORT_MIGRATION": _Rule(
        "SR {n0} does not support storage migration.",
        "Choose another destination SR for its disks, " + _RECHECK,
    ),
    "SR_SOURCE_SPACE_INSUFFICIENT": _Rule(
        "SR {n0}, where the disks are now, has no room for the snapshot the copy needs.",
        "Free space on it (delete old snapshots or unused disks), " + _RECHECK,
    ),
    "SR_BACKEND_FAILURE_44": _Rule(
        "The storage ran out of space during the copy{q1}.",
        "Free space on the destination SR or choose another one, " + _RECHECK,
    ),
    "SR_BACKEND_FAILURE_109": _Rule(
        "The disk's snapshot chain is too long{q1}.",
        "Delete snapshots and let the SR coalesce (it can take a while), " + _RECHECK,
    ),
    "SR_BACKEND_FAILURE_n": _Rule("The storage backend failed with error {num}{q1}.", _LOGS),
    "SR_BACKEND_FAILURE": _Rule("The storage backend failed{q2}.", _LOGS),
    "SUSPEND_IMAGE_NOT_ACCESSIBLE": _Rule(
        "The VM's suspend image {n0} is on an SR the destination cannot reach.",
        "Resume or shut down the VM first, " + _RECHECK,
    ),
    "UNIMPLEMENTED_IN_SM_BACKEND": _Rule(
        "The storage backend cannot do this{q0}.", "Choose another SR type for the move."
    ),
    "LICENCE_RESTRICTION": _Rule(
        "The pool's licence does not allow this{q0}.",
        "Check the pool's licence; an offline move may still be allowed.",
    ),
    # Sessions and the connection
    "SESSION_AUTHENTICATION_FAILED": _Rule(
        "xapi refused the bot's login{q0}.", "Check XEN_USERNAME and XEN_PASSWORD."
    ),
    "SESSION_AUTHORIZATION_FAILED": _Rule(
        "User {p0} may not log in to the pool{q1}.", "Give the bot's account a pool role."
    ),
    "PERMISSION_DENIED": _Rule(
        "The bot's account may not do this{q0}.", "Give it the pool-admin role."
    ),
    "RBAC_PERMISSION_DENIED": _Rule(
        "The bot's account lacks the permission {p0}.", "Give it the pool-admin role."
    ),
    "SESSION_INVALID": _Rule(
        "The bot's XAPI session expired or was ended (e.g. by a toolstack restart).",
        "The bot logs in again by itself; retry if the step did not resume.",
    ),
    "HOST_IS_SLAVE": _Rule(
        "The bot talked to a pool member; the pool master is now {p0}.",
        "The bot reconnects to the master by itself; if it repeats, point XEN_URL at {p0}.",
    ),
    "HANDLE_INVALID": _Rule(
        "The {p0} the bot referred to no longer exists.", "Re-check to refresh the facts."
    ),
    "UUID_INVALID": _Rule("No {p0} has UUID {p1}.", "Re-check to refresh the facts."),
    "INTERNAL_ERROR": _Rule("xapi hit an internal error{q0}.", _LOGS),
    # The bot's own words for what it saw, in the same shape as xapi's.
    "TASK_VANISHED": _Rule(
        "The step's task disappeared (the toolstack restarted) and the VM did not end "
        "where it was going.",
        "Check where the VM is now, then file the request again.",
    ),
    "CHECKLIST_BLOCKED": _Rule(
        "The checklist has a blocker now: {p0}",
        "Fix it, then press Re-check to file the request again.",
    ),
    "PLAN_CHANGED": _Rule(
        "{p0}, so the approved move was not run (the bot never runs another kind of move "
        "than the one approved).",
        "Press Re-check to file it again with a fresh checklist; it needs approval again.",
    ),
    "RUN_REFUSED": _Rule(
        "The run stopped: {p0}", "Check where the VM is now, then file the request again."
    ),
    "POOL_UNREACHABLE": _Rule(
        "The pool master stopped answering during the run ({p0}).",
        "Check the pool master and the network; then look at where the VM is before "
        "filing the request again.",
    ),
}

# For a run that was already offline, these codes mean something else.
_OFFLINE_RULES: dict[str, _Rule] = {
    "VM_LACKS_FEATURE": _Rule(
        "{n0} has no guest tools (PV drivers), so it cannot shut itself down cleanly.",
        "Retry with shutdown=hard (the guest is powered off without warning).",
    ),
    "MIRROR_FAILED": _Rule(
        "Copying disk {n0} to the destination SR failed.",
        "Check both SRs' health and SMlog, then retry.",
    ),
}

_EMU_MANAGER = re.compile(r"emu[-_]manager", re.IGNORECASE)
_BACKEND_FAILURE = re.compile(r"SR_BACKEND_FAILURE_(\d+)")


def explain(
    error: Sequence[str] | None,
    *,
    live: bool = True,
    names: Mapping[str, str] | None = None,
) -> Explanation:
    """Translate `[code, *params]`; `live` says whether the failed run was a live one.

    `names` maps refs/UUIDs to names (see `names_for`) so sentences say "vm01", not a ref.
    Unknown codes get a generic sentence quoting the code and its params.
    """
    parts = _as_strings(error)
    code, params = (parts[0], parts[1:]) if parts else ("", [])
    rule = _rule_for(code, params, live)
    if rule is None:
        return Explanation(code, _unknown_sentence(code, params), _LOGS)
    fields = _Fields(params, names or {}, code)
    retry_offline = live and rule.offline_helps
    return Explanation(
        code=code,
        sentence=rule.sentence.format_map(fields),
        next_step=_next_step(rule, retry_offline).format_map(fields),
        retry_offline=retry_offline,
    )


def names_for(pool: PoolFacts, vm: VMFacts | None = None) -> dict[str, str]:
    """Refs and UUIDs of the pool's hosts and SRs (and the VM and its disks) -> names."""
    names: dict[str, str] = {}
    for obj in (*pool.hosts.values(), *pool.srs.values(), *((vm,) if vm else ())):
        names[obj.ref] = names[obj.uuid] = obj.name
    for disk in vm.disks if vm else ():
        names[disk.vdi_ref] = names[disk.vdi_uuid] = disk_label(disk)
    return names


def _as_strings(error: object) -> list[str]:
    """Whatever arrived, as a list of strings (a bare code string counts as a one-item list)."""
    if error is None:
        return []
    if isinstance(error, str) or not isinstance(error, Iterable):
        return [str(error)]
    return [str(part) for part in error]


def _rule_for(code: str, params: Sequence[str], live: bool) -> _Rule | None:
    if not live and code in _OFFLINE_RULES:
        return _OFFLINE_RULES[code]
    if code == "INTERNAL_ERROR" and any(_EMU_MANAGER.search(p) for p in params):
        return _RULES["INTERNAL_ERROR:emu-manager"]
    if code not in _RULES and _BACKEND_FAILURE.fullmatch(code):
        return _RULES["SR_BACKEND_FAILURE_n"]
    return _RULES.get(code)


def _next_step(rule: _Rule, retry_offline: bool) -> str:
    """Live failures an offline run avoids lead with Retry offline; without it, the rule's own
    step, or the logs when it has none."""
    if retry_offline:
        return f"{_RETRY_OFFLINE} {rule.next_step}".strip()
    return rule.next_step or _LOGS


def _unknown_sentence(code: str, params: Sequence[str]) -> str:
    if not code:
        return "xapi reported a failure without an error code."
    shown = f" ({', '.join(repr(p) for p in params)})" if params else ""
    return f"xapi refused with {code}{shown}."


class _Fields(dict[str, str]):
    """format_map source that computes `{<kind><index>}` on demand and never raises."""

    def __init__(self, params: Sequence[str], names: Mapping[str, str], code: str) -> None:
        super().__init__(num=code.rsplit("_", 1)[-1])
        self.params = params
        self.names = names

    def __missing__(self, key: str) -> str:
        kind, index = key[:1], key[1:]
        raw = self.params[int(index)] if index.isdigit() and int(index) < len(self.params) else ""
        render = _RENDER.get(kind)
        return render(raw, self.names) if render else "?"


def _name(raw: str, names: Mapping[str, str]) -> str:
    return names.get(raw, raw) or "?"


def _number(raw: str) -> float | None:
    """xapi's 64-bit ints and floats travel as strings ("8589934592", "1200.")."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _size(raw: str, names: Mapping[str, str]) -> str:
    value = _number(raw)
    return format_size(value) if value is not None else (raw or "?")


def _duration(raw: str, names: Mapping[str, str]) -> str:
    value = _number(raw)
    return format_duration(value) if value is not None else (raw or "?")


def _either(raw: str, names: Mapping[str, str]) -> str:
    """xapi joins power states with ', ' or ';': 'running, halted' -> 'running or halted'."""
    states = [s.strip().lower() for s in re.split(r"[,;]", raw) if s.strip()]
    return join_or(states) or "?"


def _detail(raw: str, names: Mapping[str, str]) -> str:
    text = raw.strip()
    return f" ({_name(text, names)})" if text else ""


_RENDER = {
    "p": lambda raw, names: raw or "?",
    "n": _name,
    "s": _size,
    "d": _duration,
    "o": _either,
    "q": _detail,
}
