"""The "Migrate VM" modal's submitted values -> the same command `/migrate` would parse.

Pure. Selects carry UUIDs (names may repeat), which the planner accepts like names. The
command is read back through the grammar before it is filed: its text is stored and parsed
again at a re-check or a retry, so the form can file nothing the command could not.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from bot.models import Mode, ShutdownKind
from bot.planning.command import (
    BadCommand,
    BatchCommand,
    MigrateCommand,
    parse,
    render,
    usage_error,
)
from bot.slack.blocks.modal import EVACUATE, FIRST_FIELD, ONE, SEVERAL


def channel_of(view: dict[str, Any]) -> str:
    """The channel the request goes to: where `/migrate` was typed (kept in the modal's
    private_metadata), or the one chosen in a form that asks (the shortcut's)."""
    if not asks_channel(view):
        return str(_metadata(view).get("channel", ""))
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if isinstance(values, dict) and "channel" in values:  # as the person left it
        return _conversation(_element(values, "channel").get("selected_conversation"))
    block = next((b for b in view.get("blocks") or [] if _block_id(b) == "channel"), {})
    element = block.get("element")
    return _conversation(element.get("initial_conversation") if isinstance(element, dict) else "")


def asks_channel(view: dict[str, Any]) -> bool:
    """The form asks where to post (opened by the shortcut, which has no channel)."""
    return _metadata(view).get("ask_channel") is True


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        found = json.loads(view.get("private_metadata") or "{}")
    except (ValueError, AttributeError):
        return {}
    return found if isinstance(found, dict) else {}


def _block_id(block: object) -> object:
    return block.get("block_id") if isinstance(block, dict) else None


def _conversation(value: object) -> str:
    return value if isinstance(value, str) else ""


def command_from(values: object) -> MigrateCommand | BatchCommand | BadCommand:
    """Never raises: a payload of any shape is a command or a usage error."""
    fields = values if isinstance(values, dict) else {}
    form = {SEVERAL: _several, EVACUATE: _evacuate}.get(_what(fields), _one)
    command = form(fields)
    return command if isinstance(command, BadCommand) else _as_typed(command)


def error_block(values: object) -> str:
    """The block a refusal of the submitted form shows under: its first field."""
    return FIRST_FIELD[_what(values if isinstance(values, dict) else {})]


def _what(fields: dict[str, Any]) -> str:
    """Which form was submitted; one VM when the payload does not say."""
    what = _selected(fields, "what")
    return what if what in FIRST_FIELD else ONE


def _one(fields: dict[str, Any]) -> MigrateCommand | BadCommand:
    vm, host = _selected(fields, "vm"), _selected(fields, "host")
    if not vm or not host:
        return usage_error("choose a VM and a destination host")
    disks = tuple(
        (str(block).removeprefix("disk_"), sr)
        for block in sorted(map(str, fields))
        if block.startswith("disk_") and (sr := _selected(fields, block))
    )
    return MigrateCommand(vm=vm, host=host, sr=_selected(fields, "sr"), disks=disks, **_how(fields))


def _several(fields: dict[str, Any]) -> BatchCommand | BadCommand:
    vms, tag = _chosen(fields, "vms"), _text(fields, "tag")
    if tag is not None:  # typed as on the command line: `tag:web`
        tag = tag.removeprefix("tag:").strip() or None
    if vms and tag:
        return usage_error("choose VMs or a tag, not both")
    if not vms and not tag:
        return usage_error("choose VMs or give a tag")
    if len(vms) == 1:  # a list of one reads as no list at all
        return usage_error("choose two VMs or more: for one VM, choose One VM")
    return BatchCommand(
        vms=vms, tag=tag, to=_chosen(fields, "to"), sr=_selected(fields, "sr"), **_how(fields)
    )


def _evacuate(fields: dict[str, Any]) -> BatchCommand | BadCommand:
    host = _selected(fields, "evacuate")
    if not host:
        return usage_error("choose the host to empty")
    return BatchCommand(evacuate=host, to=_chosen(fields, "to"), **_how(fields))


class _How(TypedDict):
    mode: Mode | None
    shutdown: ShutdownKind
    at: str | None


def _how(fields: dict[str, Any]) -> _How:
    """Mode, shutdown and time: the same fields in every form."""
    mode = _selected(fields, "mode")
    return {
        "mode": mode if mode in ("live", "offline") else None,
        "shutdown": "hard" if _selected(fields, "shutdown") == "hard" else "clean",
        "at": _text(fields, "at"),
    }


def _as_typed(command: MigrateCommand | BatchCommand) -> MigrateCommand | BatchCommand | BadCommand:
    """`command` if `/migrate` reads its text back the same; else the grammar's refusal (a
    control character, too long, shutdown=hard with mode=live) or one of its own."""
    again = parse(render(command))
    if isinstance(again, BadCommand):
        return again
    if again != command:  # curly quotes, which the grammar reads as quotes
        return usage_error("a tag or time in the form would read back otherwise: drop its quotes")
    return command


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


def _chosen(values: dict[str, Any], block: str) -> tuple[str, ...]:
    """A multi-select's values, each once, in the order chosen."""
    chosen = _element(values, block).get("selected_options")
    found = (
        [o.get("value") for o in chosen if isinstance(o, dict)] if isinstance(chosen, list) else []
    )
    return tuple(dict.fromkeys(v for v in found if isinstance(v, str) and v))


def _text(values: dict[str, Any], block: str) -> str | None:
    value = _element(values, block).get("value")
    return value.strip() if isinstance(value, str) and value.strip() else None
