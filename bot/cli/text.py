"""Plain-text renderings for the terminal (`migrate-bot check`, the demo): pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.engine import events as ev
from bot.planning.batch import SHOWN_NAMES
from bot.planning.units import ICONS, format_duration


def plan_text(summary: Mapping[str, Any]) -> str:
    """The plan and the checklist, as the request message shows them."""
    lines = [
        f"{summary['vm']}: {summary['source']} → {summary['dest']}, {summary['mode']} "
        f"({_call(summary['call'])})",
        f"estimate {summary['estimate']}, downtime {summary['downtime']}",
        "disks:",
    ]
    for disk in summary["disks"]:
        move = "stays" if disk["from"] == disk["to"] else f"{disk['from']} → {disk['to']}"
        lines.append(f"  {disk['label']}  {disk['size']}  {move}")
    lines.append("checklist:")
    lines += [_check_line(check) for check in summary["checks"]]
    return "\n".join(lines)


def batch_text(summary: Mapping[str, Any]) -> str:
    """A batch's plan in full, where the request message summarises: a terminal has room for
    every move, every VM left out with its reason, and every VM a checklist line names. The
    checklist leaves out its lines about VMs left out: the section above says it all."""
    moves, targets = summary["moves"], summary["targets"]
    lines = [
        f"{summary['subject']}: {_moves(len(moves))}"
        + (f" to {', '.join(targets)}" if targets else ""),
        f"estimate {summary['estimate']} with {summary['slots']} at a time, "
        f"{summary['copy']} to copy",
        "moves:" if moves else "moves: none",
    ]
    rows = [(m["vm"], m["dest"], m["srs"], m["mode"], m["estimate"]) for m in moves]
    lines += _table(("VM", "HOST", "SR", "MODE", "ESTIMATE"), rows) if rows else []
    if summary["left"]:
        lines.append("left out:")
    for aside in summary["left"]:
        icon = ICONS["blocker" if aside["blocks"] else "warning"]
        lines.append(f"  {icon} {aside['vm']}: {aside['why']}")
    left = {aside["vm"] for aside in summary["left"]}
    groups = [group for group in summary["groups"] if not set(group["vms"]) <= left]
    if groups or moves:
        lines.append("checklist:" if groups else f"checklist: {ICONS['pass']} every move passes")
    for group in groups:
        lines.append(_check_line(group))
        if len(group["vms"]) > SHOWN_NAMES:  # the line itself names the first few
            lines.append(f"     all {len(group['vms'])}: {', '.join(group['vms'])}")
    return "\n".join(lines)


def local_time(epoch: float, zone: tzinfo | None = None) -> str:
    """`2026-11-26 02:00 CET`: a terminal's reader lives in its zone (Slack's each in their own)."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _check_line(check: Mapping[str, Any]) -> str:
    line = f"  {ICONS[check['severity']]} {check['title']}: {check['reason']}"
    if check["severity"] != "pass" and check["fix"]:
        line += f" — {check['fix']}"
    return line


def _moves(n: int) -> str:
    return "1 move" if n == 1 else f"{n} moves"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Columns padded to their widest cell, indented under their section."""
    widths = [max(map(len, column)) for column in zip(header, *rows, strict=True)]
    padded = (map(str.ljust, row, widths) for row in (header, *rows))
    return [("  " + "  ".join(cells)).rstrip() for cells in padded]


def _call(call: str) -> str:
    return {
        "pool_migrate": "VM.pool_migrate",
        "migrate_send": "VM.migrate_send with storage motion",
        "none": "no data to move",
    }[call]


def event_line(event: ev.Event, zone: tzinfo | None = None) -> str | None:
    """One terminal line per engine event (progress is drawn separately); times in `zone`,
    the machine's own when None."""
    match event:
        case ev.StateChanged(text=text, window=window):
            when = f": {local_time(window, zone)}" if window is not None else ""
            return f"#{event.request_id} {text}{when}"
        case ev.StepStarted(text=text):
            return f"→ {text}"
        case ev.StepDone(step=step, seconds=seconds):
            return f"✓ {step} done in {format_duration(seconds)}"
        case ev.StepStalled(step=step, seconds=seconds):
            return f"… {step}: no progress for {format_duration(seconds)}"
        case ev.Succeeded(text=text):
            return f"✅ {text}"
        case ev.Failed(text=text, next_step=next_step):
            return f"❌ {text}\n   next: {next_step}"
        case ev.Stuck(text=text):
            return f"⚠️  {text}"
        case ev.Cleared(text=text):
            return f"✅ {text}"
    return None
