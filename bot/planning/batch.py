"""A batch: many moves under one approval, what its message shows and what it stores. Pure.

The checklist of a batch is grouped for people who approve it: the blockers first, one
line per VM, then each warning once with the VMs it concerns ("7 VMs have snapshots"),
so 200 VMs read as a few lines, and a fix button acts on every VM its line names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.models import Check, Fix, PoolFacts, Severity
from bot.planning.command import BatchCommand, MigrateCommand, render
from bot.planning.placement import makespan
from bot.planning.preview import Preview
from bot.planning.units import format_duration, format_size

SHOWN_NAMES = 5  # VM names a grouped line lists before "and N more"

# How a warning reads for several VMs: "{n} VMs have snapshots".
PLURAL = {
    "snapshots": "have snapshots",
    "backup": "are not excluded from backup",
    "load": "are heavily loaded for a live move",
    "guest_tools": "have no guest tools",
    "space": "may not grow to their full disk size there",
    "memory": "would not fit to start on their new host",
}


@dataclass(frozen=True)
class Group:
    """One line of a batch's checklist: a check and the VMs it concerns."""

    severity: Severity
    title: str
    reason: str
    fix: str
    action: Fix | None
    vms: tuple[str, ...]
    count: int = 0  # what the fix acts on ("Delete 12 snapshots"); the VMs by default

    def as_json(self) -> dict[str, Any]:
        return {
            "severity": str(self.severity),
            "title": self.title,
            "reason": self.reason,
            "fix": self.fix,
            "action": str(self.action) if self.action else None,
            "vms": list(self.vms),
            "count": self.count or len(self.vms),
        }


@dataclass(frozen=True)
class Aside:
    """A VM of the batch that does not move, and why; `blocks` when the batch cannot go
    ahead so (a VM that fits nowhere, one that no longer exists)."""

    vm: str
    why: str
    blocks: bool


@dataclass(frozen=True)
class BatchPreview:
    """The moves of a batch in run order (largest estimate first, so the slots finish
    together), the VMs left out and why, and the pool it was planned against."""

    command: BatchCommand
    subject: str  # "evacuate host1", "tag web", "3 VMs"
    pool: PoolFacts
    items: tuple[Preview, ...]
    left: tuple[Aside, ...]
    slots: int
    evacuate: str = ""  # the ref of the host being emptied
    targets: tuple[str, ...] = field(default=())  # host refs the VMs may go to

    @property
    def blocked(self) -> bool:
        return any(item.blocked for item in self.items) or any(x.blocks for x in self.left)

    @property
    def estimate_seconds(self) -> float:
        return makespan((item.plan.estimate_seconds for item in self.items), self.slots)

    def groups(self) -> tuple[Group, ...]:
        return group_checks(self.items, self.left)

    def moves(self) -> list[dict[str, Any]]:
        """A row per move: what the request's table shows and a child request is made of."""
        return [_move(item, self.command) for item in self.items]

    def summary(self) -> dict[str, Any]:
        """What the batch's messages show, kept with the request."""
        evacuated = self.pool.hosts.get(self.evacuate)
        targets = [self.pool.hosts[ref].name for ref in self.targets if ref in self.pool.hosts]
        copy = sum(item.intent().copy_bytes for item in self.items)
        return {
            "kind": "batch",
            "subject": self.subject,
            "evacuate": evacuated.name if evacuated else None,
            "targets": sorted(targets, key=str.lower),
            "estimate": format_duration(self.estimate_seconds),
            "slots": self.slots,
            "copy": format_size(copy),
            "moves": [
                {key: row[key] for key in ("vm", "dest", "srs", "mode", "estimate")}
                for row in self.moves()
            ],
            "left": [
                {"vm": aside.vm, "why": aside.why, "blocks": aside.blocks} for aside in self.left
            ],
            "groups": [group.as_json() for group in self.groups()],
        }

    def stored(self) -> dict[str, Any]:
        """The batch request's `plan` column: each move's command and intent, and the
        summary; the evacuated host by uuid, to disable and re-enable it."""
        evacuated = self.pool.hosts.get(self.evacuate)
        return {
            "batch": {
                "evacuate": evacuated.uuid if evacuated else None,
                "targets": [self.pool.hosts[ref].uuid for ref in self.targets],
                "rows": [
                    {key: row[key] for key in ("vm", "command", "intent", "snapshots")}
                    for row in self.moves()
                ],
            },
            "summary": self.summary(),
        }


def _move(item: Preview, command: BatchCommand) -> dict[str, Any]:
    plan = item.plan
    srs = sorted({item.sr_name(m.dest_sr_ref) for m in plan.disks}, key=str.lower)
    single = MigrateCommand(
        vm=plan.vm.uuid,
        host=item.dest_name,
        sr=item.sr_name(plan.disks[0].dest_sr_ref) if command.sr and plan.disks else None,
        mode=plan.mode,
        shutdown=plan.shutdown,
    )
    return {
        "vm": plan.vm.name,
        "dest": item.dest_name,
        "srs": ", ".join(srs) or "no disks",
        "mode": plan.mode,
        "estimate": format_duration(plan.estimate_seconds),
        "command": render(single),
        "intent": item.intent().as_json(),
        "snapshots": [snap.uuid for snap in plan.vm.snapshots],  # what Delete N snapshots may go
    }


def group_checks(items: Sequence[Preview], left: Sequence[Aside]) -> tuple[Group, ...]:
    """Blockers, one per VM and check; then each kind of warning once, with its VMs."""
    blockers = [
        Group(Severity.BLOCKER, "Placement", x.why, "", None, (x.vm,)) for x in left if x.blocks
    ]
    warnings: dict[str, list[tuple[str, Check, Preview]]] = {}
    for item in items:
        for check in item.checks:
            if check.severity is Severity.BLOCKER:
                blockers.append(_one(item, check))
            elif check.severity is Severity.WARNING:
                warnings.setdefault(check.key, []).append((item.plan.vm.name, check, item))
    grouped = [_many(key, found) for key, found in warnings.items()]
    staying = [x for x in left if not x.blocks]
    if staying:
        names = tuple(x.vm for x in staying)
        reason = f"{_count(len(names))} {'stays' if len(names) == 1 else 'stay'} where "
        reason += f"{'it is' if len(names) == 1 else 'they are'}: " + "; ".join(
            x.why for x in staying[:SHOWN_NAMES]
        )
        if len(staying) > SHOWN_NAMES:
            reason += f"; and {len(staying) - SHOWN_NAMES} more"
        grouped.append(Group(Severity.WARNING, "Left in place", reason, "", None, names))
    return (*blockers, *grouped)


def _one(item: Preview, check: Check) -> Group:
    vm = item.plan.vm.name
    reason = check.reason if vm in check.reason else f"{vm}: {check.reason}"
    return Group(check.severity, check.title, reason, check.fix, check.action, (vm,))


def _many(key: str, found: list[tuple[str, Check, Preview]]) -> Group:
    names = tuple(name for name, _, _ in found)
    _, first, _ = found[0]
    if len(found) == 1:
        return _one(found[0][2], first)
    reason = f"{_count(len(names))} {PLURAL.get(key, first.title.lower())}: {shown(names)}"
    fixes = {check.fix for _, check, _ in found}
    fix = first.fix if len(fixes) == 1 else ""
    count = 0
    if first.action is Fix.DELETE_SNAPSHOTS:
        count = sum(len(item.plan.vm.snapshots) for _, _, item in found)
    return Group(Severity.WARNING, first.title, reason, fix, first.action, names, count)


def _count(n: int) -> str:
    return f"{n} VM" if n == 1 else f"{n} VMs"


def shown(names: Sequence[str]) -> str:
    """'vm01, vm02, vm03, vm04, vm05 and 7 more'."""
    if len(names) <= SHOWN_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[:SHOWN_NAMES])} and {len(names) - SHOWN_NAMES} more"
