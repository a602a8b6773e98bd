"""The buttons of a request, per state, and the value every button carries.

Confirm-dialog rule: every button that changes a VM or decides a request sits behind a
confirm dialog stating the consequence (Approve, Reject, Start, every fix, Retry offline,
Restart toolstack, and Cancel while the run is underway). Two buttons have none: Re-check
(it only reads the pool) and Cancel before the run (pending, approved, scheduled, queued:
the VM has not been touched and the request can be filed again).

Labels are the words people and scripts look for (design.md, "Button labels").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.models import Fix
from bot.slack.actions import Action
from bot.slack.blocks.card import Card
from bot.slack.blocks.kit import button, clip, confirm
from bot.states import State

_VALUE = re.compile(r"([0-9]{1,18}):([0-9]{1,18})")

Element = dict[str, Any]


def button_value(request_id: int, revision: int) -> str:
    """`42:3`: a press on a message older than the request's revision is refused."""
    return f"{request_id}:{revision}"


def parse_button_value(value: object) -> tuple[int, int] | None:
    """(id, revision), or None for anything malformed: clients can edit payloads."""
    match = _VALUE.fullmatch(value) if isinstance(value, str) else None
    return (int(match[1]), int(match[2])) if match else None


def request_buttons(card: Card) -> list[Element]:
    """What the request message offers in its state; empty for a finished request."""
    state = card.state
    if state == State.PENDING:
        decide: list[Element] = []
        if not card.blocked:
            decide = [approve(card), reject(card)] if card.require_approval else [start(card)]
        return [*decide, cancel(card), recheck(card), *fixes(card)]
    if state in (State.APPROVED, State.SCHEDULED, State.QUEUED, State.RUNNING):
        return [cancel(card)]
    if state == State.STUCK and card.stuck_host:
        return [restart_toolstack(card)]
    if state == State.FAILED and card.retry_offline:
        return [retry_offline(card)]
    if state == State.FAILED and card.refile:
        return [refile(card)]
    return []


def batch_buttons(card: Card) -> list[Element]:
    """A batch's request message: decide, cancel, re-check and the grouped fixes while
    pending; Cancel while it runs; nothing once it ended (its outcome offers Re-enable)."""
    if card.state in (State.APPROVED, State.SCHEDULED, State.QUEUED, State.RUNNING):
        return [_cancel_batch(card)]
    return request_buttons(card) if card.state == State.PENDING else []


def reenable(card: Card, host: str) -> Element:
    text = f"host.enable on {_short(host)}: new VMs and migrations may land on it again."
    dialog = confirm(f"Re-enable {_short(host)}?", text, "Re-enable")
    return button(f"Re-enable {host}", Action.REENABLE_HOST, _value(card), "primary", dialog)


def _cancel_batch(card: Card) -> Element:
    """Moves not started are dropped; running ones finish (each has its own Cancel)."""
    if card.state != State.RUNNING:
        return button("Cancel", Action.CANCEL, _value(card))
    text = (
        "The moves that have not started will not run; the running ones finish. Pressed "
        "again, it asks xapi to cancel the running ones too (as for one VM)."
    )
    dialog = confirm(f"Cancel #{card.id}?", text, "Cancel the rest", "Let it run")
    return button("Cancel", Action.CANCEL, _value(card), dialog=dialog)


def _moves(card: Card) -> str:
    """`vm01 moves host1 → host3 (offline, downtime about 4 min)`; a batch's moves."""
    if card.is_batch:
        s = card.summary
        count = len(s.get("moves", []))
        targets = _short(", ".join(s.get("targets", [])))
        return (
            f"{count} VM(s) move onto {targets}, {s.get('slots', 1)} at a time "
            f"(estimate {s.get('estimate', '?')}); each live move keeps its VM running, "
            "each offline one shuts it down while it moves."
        )
    source, dest = card.route
    mode, downtime = card.summary.get("mode", "?"), card.summary.get("downtime", "?")
    impact = "the VM keeps running" if downtime == "0 s" else f"downtime about {downtime}"
    return f"{_short(card.vm)} moves {_short(source)} → {_short(dest)} ({mode}, {impact})"


def approve(card: Card) -> Element:
    dialog = confirm(f"Approve #{card.id}?", _moves(card), "Approve")
    return button("Approve", Action.APPROVE, _value(card), "primary", dialog)


def reject(card: Card) -> Element:
    text = f"The request ends and {_short(card.vm)} stays where it is; it can be filed again."
    dialog = confirm(f"Reject #{card.id}?", text, "Reject")
    return button("Reject", Action.REJECT, _value(card), "danger", dialog)


def start(card: Card) -> Element:
    dialog = confirm(f"Start #{card.id}?", _moves(card), "Start")
    return button("Start", Action.START, _value(card), "primary", dialog)


def cancel(card: Card, running: bool | None = None) -> Element:
    """Confirmed only while running: before the run the VM has not been touched."""
    if not (card.state == State.RUNNING if running is None else running):
        return button("Cancel", Action.CANCEL, _value(card))
    text = (
        "Asks xapi to cancel the running step; late phases of a migration cannot be "
        f"cancelled. If {_short(card.vm)} was shut down, the bot starts it again where it was."
    )
    dialog = confirm(f"Cancel #{card.id}?", text, "Cancel the run", "Let it run")
    return button("Cancel", Action.CANCEL, _value(card), dialog=dialog)


def recheck(card: Card) -> Element:
    return button("Re-check", Action.RECHECK, _value(card))


def retry_offline(card: Card) -> Element:
    dest = card.route[1]
    again = "; it needs approval again" if card.require_approval else ""
    text = (
        f"Files a new request: {_short(card.vm)} is shut down, moved to {_short(dest)} and "
        f"started there; it is down for about the whole move (estimate "
        f"{card.summary.get('estimate', '?')}){again}."
    )
    dialog = confirm(f"Retry #{card.id} offline?", text, "Retry offline")
    return button("Retry offline", Action.RETRY_OFFLINE, _value(card), "primary", dialog)


def refile(card: Card) -> Element:
    """Re-check a request whose run never started: files it again with a fresh checklist."""
    again = "; it needs approval again" if card.require_approval else ""
    text = f"Files #{card.id}'s command again with a fresh checklist, in this thread{again}."
    dialog = confirm(f"Re-check #{card.id}?", text, "Re-check")
    return button("Re-check", Action.REFILE, _value(card), dialog=dialog)


def restart_toolstack(card: Card, other_tasks: list[str] | tuple[str, ...] = ()) -> Element:
    """Aborts every task on the host (on the master: in the pool), so it says which."""
    host = card.stuck_host or "the pool master"
    text = (
        "Every task on it is aborted (backups, exports, other migrations); on the pool "
        "master every session in the pool ends."
    )
    if other_tasks:
        text += " Also aborts: " + ", ".join(other_tasks)
    dialog = confirm(f"Restart the toolstack on {host}?", text, "Restart toolstack")
    return button(
        f"Restart toolstack on {host}", Action.RESTART_TOOLSTACK, _value(card), "danger", dialog
    )


def fixes(card: Card) -> list[Element]:
    """One button per remedy a non-pass check offers, each remedy once; a batch's acts on
    every VM of the lines that offer it."""
    seen: dict[str, Mapping[str, Any]] = {}
    for check in card.checks:
        action = check.get("action")
        if action and check.get("severity") != "pass" and action in _FIXES:
            seen.setdefault(str(action), check)
    return [_FIXES[action](card, check) for action, check in seen.items()]


def _named(card: Card, action: Fix) -> int:
    """How many VMs a batch's fix acts on (every line that offers it)."""
    return len({vm for c in card.checks if c.get("action") == action for vm in c.get("vms", [])})


def _switch_offline(card: Card, check: Mapping[str, Any]) -> Element:
    label, whom = "Switch to offline", "the VM is"
    if card.is_batch:
        count = _named(card, Fix.SWITCH_TO_OFFLINE)
        label, whom = f"Switch {count} to offline", f"these {count} VMs are"
    text = (
        f"Re-plans #{card.id} as an offline move; {whom} down while moving. {check.get('fix', '')}"
    )
    dialog = confirm(f"{label} (#{card.id})?", text, label)
    return button(label, Action.FIX_SWITCH_TO_OFFLINE, _value(card), dialog=dialog)


def _delete_snapshots(card: Card, check: Mapping[str, Any]) -> Element:
    count = int(card.summary.get("snapshots") or 0)
    if card.is_batch:  # each line counts the snapshots of its VMs
        found = [c for c in card.checks if c.get("action") == Fix.DELETE_SNAPSHOTS]
        count = sum(int(c.get("count") or 0) for c in found)
    label = f"Delete {count} snapshot{'s' if count != 1 else ''}" if count else "Delete snapshots"
    text = (
        "The snapshots and their disks are destroyed; the incremental backup chain is lost "
        "and the next backup is a full one; the backups themselves stay."
    )
    owner = f"{_named(card, Fix.DELETE_SNAPSHOTS)} VMs" if card.is_batch else card.vm
    dialog = confirm(f"{label} of {_short(owner)}?", text, label)
    return button(label, Action.FIX_DELETE_SNAPSHOTS, _value(card), "danger", dialog)


def _exclude_backup(card: Card, check: Mapping[str, Any]) -> Element:
    fix = str(check.get("fix", ""))
    text = fix.removeprefix("Exclude from backup: ") or "Tags the VM so backups skip it"
    label, whom = "Exclude from backup", _short(card.vm)
    if card.is_batch:
        count = _named(card, Fix.EXCLUDE_FROM_BACKUP)
        label, whom = f"Exclude {count} from backup", f"{count} VMs"
    dialog = confirm(f"Exclude {whom} from backup?", text[:1].upper() + text[1:], "Exclude")
    return button(label, Action.FIX_EXCLUDE_FROM_BACKUP, _value(card), dialog=dialog)


def _hard_shutdown(card: Card, check: Mapping[str, Any]) -> Element:
    label, whom = "Use hard shutdown", f"{_short(card.vm)} is"
    if card.is_batch:
        count = _named(card, Fix.HARD_SHUTDOWN)
        label, whom = f"Use hard shutdown for {count}", f"Each of these {count} VMs is"
    text = (
        f"{whom} powered off without warning, like pulling the plug; "
        "whatever the guest has not written to disk is lost."
    )
    dialog = confirm("Use a hard shutdown?", text, label)
    return button(label, Action.FIX_HARD_SHUTDOWN, _value(card), "danger", dialog)


_FIXES = {
    Fix.SWITCH_TO_OFFLINE: _switch_offline,
    Fix.DELETE_SNAPSHOTS: _delete_snapshots,
    Fix.EXCLUDE_FROM_BACKUP: _exclude_backup,
    Fix.HARD_SHUTDOWN: _hard_shutdown,
}


def _value(card: Card) -> str:
    return button_value(card.id, card.revision)


def _short(text: str) -> str:
    """Names inside a 100/300-character dialog: long ones would push the consequence out."""
    return clip(text, 40)
