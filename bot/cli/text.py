"""Plain-text renderings for the terminal (`migrate-bot check`, the demo): pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.engine import events as ev
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
    for check in summary["checks"]:
        line = f"  {ICONS[check['severity']]} {check['title']}: {check['reason']}"
        if check["severity"] != "pass" and check["fix"]:
            line += f" — {check['fix']}"
        lines.append(line)
    return "\n".join(lines)


def _call(call: str) -> str:
    return {
        "pool_migrate": "VM.pool_migrate",
        "migrate_send": "VM.migrate_send with storage motion",
        "none": "no data to move",
    }[call]


def event_line(event: ev.Event) -> str | None:
    """One terminal line per engine event (progress is drawn separately)."""
    match event:
        case ev.StateChanged(text=text):
            return f"#{event.request_id} {text}"
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
