"""What a request message shows, button-free: header, plan, disks, window, checklist, status.

The request message, its dry run and `/migrate status` share these blocks, so the three
always read alike. Every `summary` string is plain text (names from users and XAPI) and
is escaped here; `Card.approvers` and `Card.status` are mrkdwn from the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.planning.units import ICONS
from bot.slack.blocks.kit import (
    clip,
    context,
    date_token,
    escape,
    fit,
    header,
    mention,
    name,
    section,
)
from bot.states import State

# How much of the message each part may take, so 16 disks, 20 checks and 300-character
# names still fit Slack's ~12,000 characters per message with the buttons.
DISK_BUDGET = 1500
DISK_LINES = 10
CHECK_BUDGET = 2600
STATUS_BUDGET = 700

CALLS = {
    "pool_migrate": "VM.pool_migrate (memory only)",
    "migrate_send": "VM.migrate_send (storage motion)",
    "none": "nothing to copy",
}

STATE_WORDS = {
    State.PENDING: "awaiting approval",
    State.APPROVED: "approved",
    State.SCHEDULED: "scheduled",
    State.QUEUED: "queued: waiting for a free slot",
    State.RUNNING: "running",
    State.STUCK: "stuck: a migrate operation is left on the VM",
    State.SUCCEEDED: "succeeded",
    State.FAILED: "failed",
    State.CANCELLED: "cancelled",
    State.REJECTED: "rejected",
    State.EXPIRED: "expired: nobody approved it in time",
    State.MISSED: "missed: its window passed while the bot was down",
}

_SEVERITY_ORDER = {"blocker": 0, "warning": 1, "pass": 2}


@dataclass(frozen=True)
class Card:
    """A request as its messages show it; `bot.slack.from_store.card` makes it of a record."""

    id: int  # shown as #42
    revision: int  # goes into every button value: f"{id}:{revision}"
    state: str  # a bot.states.State value
    requester: str  # Slack user id
    summary: Mapping[str, Any]  # planning.Preview.summary()
    shutdown: str = "clean"  # "clean" | "hard"
    require_approval: bool = True
    approvers: str = ""  # mrkdwn mentioning the approvers, e.g. "<!subteam^S1>"
    status: str = ""  # mrkdwn status line, e.g. "approved by <@U2>"; "" -> from state
    run_at: float | None = None  # the at= window (epoch seconds)
    stuck_host: str | None = None  # the host whose toolstack restart clears a stuck VM
    retry_offline: bool = False  # a failed live run: offer Retry offline
    refile: bool = False  # a run refused before its first step: offer Re-check (file again)
    parent_id: int | None = None  # "retry of #41"
    pool: str | None = None  # the request's pool, shown when the bot serves several

    @property
    def vm(self) -> str:
        return str(self.summary.get("vm", "?"))

    @property
    def route(self) -> tuple[str, str]:
        return str(self.summary.get("source", "?")), str(self.summary.get("dest", "?"))

    @property
    def is_batch(self) -> bool:
        return self.summary.get("kind") == "batch"

    @property
    def subject(self) -> str:
        """What the request moves: `migrate vm01`, or a batch's `evacuate host1`."""
        return str(self.summary.get("subject", "?")) if self.is_batch else f"migrate {self.vm}"

    @property
    def checks(self) -> list[Mapping[str, Any]]:
        """The checklist; a batch's is grouped (`bot.planning.batch.Group`), same shape."""
        return list(self.summary.get("groups" if self.is_batch else "checks", []))

    @property
    def blocked(self) -> bool:
        return any(c.get("severity") == "blocker" for c in self.checks)


def title(card: Card, tag: str | None = None) -> str:
    """`#42 · migrate vm01` (plain text: a header is never parsed)."""
    return f"{tag or f'#{card.id}'} · {card.subject}"


def fallback(card: Card, tag: str | None = None) -> str:
    """The notification line: escaped, since Slack parses a message's `text`."""
    source, dest = card.route
    return escape(f"{title(card, tag)}: {source} → {dest} · {state_words(card)}")


def state_words(card: Card) -> str:
    if card.state == State.PENDING:
        if card.blocked:
            return "blocked: fix the blockers, then Re-check"
        if not card.require_approval:
            return "awaiting Start"
    return STATE_WORDS.get(card.state, card.state)


def content(card: Card, tag: str | None = None) -> list[dict[str, Any]]:
    """Header, plan, disks, window and checklist: every message about the request."""
    blocks = [header(title(card, tag)), section(plan_text(card))]
    disks = disks_text(card.summary.get("disks", []))
    if disks:
        blocks.append(section(disks))
    return [*blocks, *window_and_checklist(card)]


def window_and_checklist(card: Card) -> list[dict[str, Any]]:
    """The end of every message about a request, one VM or a batch."""
    blocks = []
    if card.run_at is not None:
        blocks.append(context(f"🕑 window: {date_token(card.run_at)}"))
    if card.checks:
        blocks.append(section(checklist_text(card.checks)))
    return blocks


def plan_text(card: Card) -> str:
    s = card.summary
    source, dest = card.route
    mode = str(s.get("mode", "?"))
    if card.shutdown == "hard":
        mode += ", hard shutdown"
    call = CALLS.get(str(s.get("call")), str(s.get("call", "?")))
    return "\n".join(
        [
            f"*{name(source, 200)} → {name(dest, 200)}*",
            f"mode: {name(mode)} · estimate {name(str(s.get('estimate', '?')))}"
            f" · downtime {name(str(s.get('downtime', '?')))}",
            f"call: {escape(call)}",
        ]
    )


def disks_text(disks: list[Mapping[str, Any]]) -> str:
    """One line per disk, the first few only: `/migrate status` and the thread have room."""
    if not disks:
        return ""
    lines = [
        f"{name(str(d['label']), 120)} {name(str(d['size']), 20)}: "
        + (
            f"stays on {name(str(d['to']))}"
            if d["from"] == d["to"]
            else f"{name(str(d['from']))} → {name(str(d['to']))}"
        )
        for d in disks
    ]
    return "\n".join(["*Disks*", *fit(lines, DISK_BUDGET, DISK_LINES)])


def check_line(check: Mapping[str, Any]) -> str:
    """`⚠️ *Snapshots*: 2 snapshots … _Delete 2 snapshots: …_`."""
    severity = str(check.get("severity", "pass"))
    icon = ICONS.get(severity, "•").strip()
    line = (
        f"{icon} *{name(str(check.get('title', '')))}*: {name(str(check.get('reason', '')), 240)}"
    )
    if severity != "pass" and check.get("fix"):
        line += f" — _{name(str(check['fix']), 200)}_"
    return line


def checklist_text(checks: list[Mapping[str, Any]]) -> str:
    """Blockers first, then warnings, then passes; what does not fit is counted."""
    ordered = sorted(checks, key=lambda c: _SEVERITY_ORDER.get(str(c.get("severity")), 3))
    lines = [check_line(c) for c in ordered]
    return "\n".join(["*Checklist*", *fit(lines, CHECK_BUDGET, more="… and {} more checks")])


def status_line(card: Card) -> str:
    """State in words, the caller's status, who asked, whom it waits for, what it retries."""
    parts = [f"*{escape(state_words(card))}*"]
    if card.status:
        parts.append(card.status)
    parts.append(f"requested by {mention(card.requester)}")
    if card.pool is not None:
        parts.append(f"pool *{escape(card.pool)}*")
    if card.state == State.PENDING:
        # Mention the approvers even while blocked: an edit never notifies, the post does.
        if card.require_approval and card.approvers:
            parts.append(f"{'approvers:' if card.blocked else 'waiting for'} {card.approvers}")
        elif not card.require_approval and not card.blocked:
            parts.append(f"waiting for {mention(card.requester)} to Start")
    if card.parent_id is not None:
        parts.append(f"retry of #{card.parent_id}")
    return clip(" · ".join(parts), STATUS_BUDGET)
