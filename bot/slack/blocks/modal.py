"""The "Migrate VM" modal and the option lists its external selects load.

Everything here is plain text (labels, options), which Slack never parses: no escaping,
only clipping. The block_id/action_id pairs are what the view_submission handler reads:
`vm`, `host`, `sr`, `disk_<userdevice>` (action `disk`), `mode`, `shutdown`, `at`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.slack.blocks.kit import (
    MODAL_BLOCKS,
    MODAL_TITLE,
    OPTION_TEXT,
    OPTION_VALUE,
    OPTIONS,
    clip,
    context,
    plain,
)

MODAL_ID = "migrate_modal"
FIXED_BLOCKS = 7  # vm, host, sr, mode, shutdown, at, and room for the "more disks" note
MODES = [("Automatic", "auto"), ("Live", "live"), ("Offline", "offline")]
SHUTDOWNS = [("Clean", "clean"), ("Hard", "hard")]


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_TEXT), "value": clip(value, OPTION_VALUE)}


def options(items: list[tuple[str, str]]) -> dict[str, Any]:
    """A block_suggestion reply: at most 100 (text, value) options."""
    return {"options": [option(text, value) for text, value in items[:OPTIONS]]}


def migrate_modal(
    channel_id: str,
    vm: dict[str, str] | None = None,
    disks: Sequence[Mapping[str, Any]] = (),
    sr_options: Sequence[Mapping[str, str]] = (),
    mode: str | None = None,
) -> dict[str, Any]:
    """The form behind a bare `/migrate`; choosing a VM rebuilds it with that VM's disks.

    `vm` is {"text", "value"}; each disk is {"userdevice", "device", "size", "sr"} (names
    as shown); `sr_options` are {"text", "value"} for the per-disk selects.
    """
    srs = [option(o["text"], o["value"]) for o in sr_options[:OPTIONS]]
    vm_select = _select("external_select", "vm", "Choose a VM", 1)
    if vm:
        vm_select["initial_option"] = option(vm["text"], vm["value"])
    blocks = [
        _input("vm", "VM", vm_select, dispatch=True),
        _input("host", "Destination host", _select("external_select", "host", "Choose a host", 0)),
        _input(
            "sr",
            "Primary storage (SR)",
            _select("external_select", "sr", "Keep disks where they are", 0),
            optional=True,
        ),
    ]
    room = MODAL_BLOCKS - FIXED_BLOCKS
    if srs:
        blocks += [_disk(disk, srs) for disk in disks[:room]]
    chosen = next((o for o in MODES if o[1] == mode), MODES[0])
    blocks += [
        _input("mode", "Mode", _radio("mode", MODES, chosen)),
        _input("shutdown", "Shutdown (offline)", _radio("shutdown", SHUTDOWNS, SHUTDOWNS[0])),
        _input(
            "at",
            "When (optional)",
            {
                "type": "plain_text_input",
                "action_id": "at",
                "placeholder": plain("02:00 or 2026-11-26T02:00", 150),
            },
            optional=True,
        ),
    ]
    if srs and len(disks) > room:
        blocks.append(context(f"The other {len(disks) - room} disks follow the primary SR."))
    return {
        "type": "modal",
        "callback_id": MODAL_ID,
        "title": plain("Migrate VM", MODAL_TITLE),
        "submit": plain("Check", MODAL_TITLE),
        "close": plain("Cancel", MODAL_TITLE),
        "private_metadata": json.dumps({"channel": channel_id}),
        "blocks": blocks,
    }


def _disk(disk: Mapping[str, Any], srs: list[dict[str, Any]]) -> dict[str, Any]:
    device = f"{disk['device']}, " if disk.get("device") else ""
    label = f"Disk {disk['userdevice']} ({device}{disk['size']}) on {disk['sr']}"
    select = _select("static_select", "disk", "Follow the primary SR")
    select["options"] = srs
    return _input(f"disk_{disk['userdevice']}", label, select, optional=True)


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    optional: bool = False,
    dispatch: bool = False,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": clip(block_id, 255),
        "label": plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if dispatch:
        block["dispatch_action"] = True
    return block


def _select(
    kind: str, action_id: str, placeholder: str, min_query: int | None = None
) -> dict[str, Any]:
    """A select; external ones load options as the user types `min_query` characters."""
    element = {"type": kind, "action_id": action_id, "placeholder": plain(placeholder, 150)}
    if min_query is not None:
        element["min_query_length"] = min_query
    return element


def _radio(
    action_id: str, choices: list[tuple[str, str]], initial: tuple[str, str]
) -> dict[str, Any]:
    return {
        "type": "radio_buttons",
        "action_id": action_id,
        "options": [option(text, value) for text, value in choices],
        "initial_option": option(*initial),
    }
