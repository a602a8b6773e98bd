"""The "Migrate VM" modal's submitted values -> the same command `/migrate` would parse.

Pure. Selects carry UUIDs (names may repeat), which the planner accepts like names.
"""

from __future__ import annotations

import json
from typing import Any

from bot.command import MigrateCommand, UsageError, usage_error

Values = dict[str, dict[str, dict[str, Any]]]  # view.state.values: block -> action -> value


def channel_of(view: dict[str, Any]) -> str:
    """The channel where `/migrate` was typed (kept in the modal's private_metadata)."""
    try:
        return str(json.loads(view.get("private_metadata") or "{}").get("channel", ""))
    except (ValueError, AttributeError):
        return ""


def command_from(values: Values) -> MigrateCommand | UsageError:
    vm, host = _selected(values, "vm"), _selected(values, "host")
    if not vm or not host:
        return usage_error("choose a VM and a destination host")
    mode = _selected(values, "mode")
    disks = tuple(
        (block.removeprefix("disk_"), sr)
        for block in sorted(values)
        if block.startswith("disk_") and (sr := _selected(values, block))
    )
    at = (values.get("at", {}).get("at", {}) or {}).get("value")
    return MigrateCommand(
        vm=vm,
        host=host,
        sr=_selected(values, "sr"),
        disks=disks,
        mode=mode if mode in ("live", "offline") else None,
        shutdown="hard" if _selected(values, "shutdown") == "hard" else "clean",
        at=at.strip() if isinstance(at, str) and at.strip() else None,
    )


def _selected(values: Values, block: str) -> str | None:
    for element in values.get(block, {}).values():
        option = (element or {}).get("selected_option") or {}
        value = option.get("value")
        if isinstance(value, str) and value:
            return value
    return None
