"""The "Migrate VM" modal's submitted values -> the same command `/migrate` would parse.

Pure. Selects carry UUIDs (names may repeat), which the planner accepts like names.
"""

from __future__ import annotations

import json
from typing import Any

from bot.planning.command import BadCommand, MigrateCommand, usage_error


def channel_of(view: dict[str, Any]) -> str:
    """The channel where `/migrate` was typed (kept in the modal's private_metadata)."""
    try:
        return str(json.loads(view.get("private_metadata") or "{}").get("channel", ""))
    except (ValueError, AttributeError):
        return ""


def command_from(values: object) -> MigrateCommand | BadCommand:
    """Never raises: a payload of any shape is a command or a usage error."""
    fields = values if isinstance(values, dict) else {}
    vm, host = _selected(fields, "vm"), _selected(fields, "host")
    if not vm or not host:
        return usage_error("choose a VM and a destination host")
    mode = _selected(fields, "mode")
    disks = tuple(
        (str(block).removeprefix("disk_"), sr)
        for block in sorted(map(str, fields))
        if block.startswith("disk_") and (sr := _selected(fields, block))
    )
    at = _element(fields, "at").get("value")
    return MigrateCommand(
        vm=vm,
        host=host,
        sr=_selected(fields, "sr"),
        disks=disks,
        mode=mode if mode in ("live", "offline") else None,
        shutdown="hard" if _selected(fields, "shutdown") == "hard" else "clean",
        at=at.strip() if isinstance(at, str) and at.strip() else None,
    )


def _element(values: dict[str, Any], block: str) -> dict[str, Any]:
    """The block's first element state, or {} when the payload has another shape."""
    elements = values.get(block)
    if isinstance(elements, dict):
        for element in elements.values():
            if isinstance(element, dict):
                return element
    return {}


def _selected(values: dict[str, Any], block: str) -> str | None:
    option = _element(values, block).get("selected_option")
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) and value else None
