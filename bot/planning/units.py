"""How numbers and states read, in Slack and on a terminal alike: pure formatting."""

from __future__ import annotations

ICONS = {"pass": "✅", "warning": "⚠️ ", "blocker": "⛔"}  # checklist severities


def format_duration(seconds: float) -> str:
    """'45 s', '6 min 12 s', '1 h 3 min': precise enough for an estimate, short for Slack."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(round(whole / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_size(size: float) -> str:
    """'512 MiB', '40 GiB', '1.5 TiB': binary units as XO and XenCenter show disk sizes."""
    value = float(max(0, size))
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    step = 0
    while round(value, 1) >= 1024 and step < len(units) - 1:
        value /= 1024
        step += 1
    text = f"{value:.0f}" if step == 0 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {units[step]}"


def progress_bar(fraction: float, width: int = 24) -> str:
    """`[██████░░░░░░]  42%`: what the thread's running step shows."""
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    return f"[{'█' * filled}{'░' * (width - filled)}] {fraction * 100:3.0f}%"
