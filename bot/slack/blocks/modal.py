"""The "Migrate VM" modal and the option lists its external selects load.

Everything here is plain text (labels, options), which Slack never parses: no escaping,
only clipping. The radio `what` at the top picks the form, as the command's grammar does:
one VM, several (a list or a tag), or a host to empty. The block_id/action_id pairs are what
the view_submission handler reads: `what`; one VM: `vm`, `host`, `sr`, `disk_<userdevice>`
(action `disk`); several: `vms`, `tag`, `to` (action `hosts`), `sr`; a host: `evacuate`
(action `host`), `to`; every form: `mode`, `shutdown`, `at`. Opened from the "Migrate a
VM" shortcut, which has no channel, the form first asks where to post (`channel`).
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
SHORTCUT_ID = "migrate_shortcut"  # the global shortcut that opens the modal from anywhere
ONE, SEVERAL, EVACUATE = "one", "several", "evacuate"
WHATS = [("One VM", ONE), ("Several VMs", SEVERAL), ("Evacuate a host", EVACUATE)]
FIRST_FIELD = {ONE: "vm", SEVERAL: "vms", EVACUATE: "evacuate"}  # where a form's error shows
# What each searchable select lists (a kind `Desk.suggest` knows), by its action id.
SEARCHES = {"vm": "vm", "host": "host", "sr": "sr", "vms": "vm", "hosts": "host"}
# The form's command is read back through the grammar, whose 2,000 characters hold 40 VM
# and 10 host UUIDs with every option.
MOST_VMS, MOST_HOSTS = 40, 10
FIXED_BLOCKS = 8  # what, vm, host, sr, mode, shutdown, at, and room for the "more disks" note
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
    what: str = ONE,
    ask_channel: bool = False,
) -> dict[str, Any]:
    """The form behind a bare `/migrate`: `what` (one VM, several, a host to empty) picks
    its fields, and choosing another rebuilds it; choosing one VM rebuilds it with that
    VM's disks.

    `vm` is {"text", "value"}; each disk is {"userdevice", "device", "size", "sr"} (names
    as shown); `sr_options` are {"text", "value"} for the per-disk selects (one VM only).
    `ask_channel`: the form asks where to post, `channel_id` (may be "") chosen first.
    """
    chosen = next((w for w in WHATS if w[1] == what), WHATS[0])
    blocks = [_channel(channel_id)] if ask_channel else []
    blocks.append(_input("what", "What to move", _radio("what", WHATS, chosen), dispatch=True))
    srs: list[dict[str, Any]] = []
    if chosen[1] == SEVERAL:
        blocks += _several()
    elif chosen[1] == EVACUATE:
        blocks += _evacuate()
    else:
        blocks += _one_vm(vm)
        srs = [option(o["text"], o["value"]) for o in sr_options[:OPTIONS]]
    room = MODAL_BLOCKS - FIXED_BLOCKS - int(ask_channel)
    if srs:
        blocks += [_disk(disk, srs) for disk in disks[:room]]
    picked = next((o for o in MODES if o[1] == mode), MODES[0])
    blocks += [
        _input("mode", "Mode", _radio("mode", MODES, picked)),
        _input("shutdown", "Shutdown (offline)", _radio("shutdown", SHUTDOWNS, SHUTDOWNS[0])),
        _input("at", "When (optional)", _text("at", "02:00 or 2026-11-26T02:00"), optional=True),
    ]
    if srs and len(disks) > room:
        blocks.append(context(f"The other {len(disks) - room} disks follow the primary SR."))
    return {
        "type": "modal",
        "callback_id": MODAL_ID,
        "title": plain("Migrate VM", MODAL_TITLE),
        "submit": plain("Check", MODAL_TITLE),
        "close": plain("Cancel", MODAL_TITLE),
        "private_metadata": json.dumps(
            {"ask_channel": True} if ask_channel else {"channel": channel_id}
        ),
        "blocks": blocks,
    }


def _channel(channel_id: str) -> dict[str, Any]:
    """Where the request is posted: its approval and thread happen there."""
    select: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": "channel",
        "placeholder": plain("Choose a channel", 150),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if channel_id:
        select["initial_conversation"] = channel_id
    hint = "The request, its approval and its thread go there."
    return _input("channel", "Post the request in", select, hint=hint)


def _one_vm(vm: dict[str, str] | None) -> list[dict[str, Any]]:
    vm_select = _select("external_select", "vm", "Choose a VM", 1)
    if vm:
        vm_select["initial_option"] = option(vm["text"], vm["value"])
    return [
        _input("vm", "VM", vm_select, dispatch=True),
        _input("host", "Destination host", _select("external_select", "host", "Choose a host", 0)),
        _primary_sr(),
    ]


def _several() -> list[dict[str, Any]]:
    """A list or a tag (the form says which was meant when both are given)."""
    vms = _select("multi_external_select", "vms", "Choose VMs", 1)
    vms["max_selected_items"] = MOST_VMS
    return [
        _input("vms", "VMs", vms, optional=True, hint=f"Up to {MOST_VMS}; or a tag below."),
        _input(
            "tag",
            "Or every VM with the tag",
            _text("tag", "web"),
            optional=True,
            hint="A tag as Xen Orchestra shows it, instead of choosing VMs.",
        ),
        _hosts("To hosts", "The bot places each VM"),
        _primary_sr(),
    ]


def _evacuate() -> list[dict[str, Any]]:
    return [
        _input(
            "evacuate",
            "Host to empty",
            _select("external_select", "host", "Choose a host", 0),
            hint="It is disabled first, so nothing new lands on it, and stays disabled.",
        ),
        _hosts("Onto hosts", "Any other host"),
    ]


def _hosts(label: str, placeholder: str) -> dict[str, Any]:
    """The hosts a batch may go to; none: the bot chooses."""
    select = _select("multi_external_select", "hosts", placeholder, 0)
    select["max_selected_items"] = MOST_HOSTS
    return _input("to", label, select, optional=True)


def _primary_sr() -> dict[str, Any]:
    select = _select("external_select", "sr", "Keep disks where they are", 0)
    return _input("sr", "Primary storage (SR)", select, optional=True)


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
    hint: str = "",
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
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def _select(
    kind: str, action_id: str, placeholder: str, min_query: int | None = None
) -> dict[str, Any]:
    """A select; external ones load options as the user types `min_query` characters."""
    element = {"type": kind, "action_id": action_id, "placeholder": plain(placeholder, 150)}
    if min_query is not None:
        element["min_query_length"] = min_query
    return element


def _text(action_id: str, placeholder: str) -> dict[str, Any]:
    return {
        "type": "plain_text_input",
        "action_id": action_id,
        "placeholder": plain(placeholder, 150),
    }


def _radio(
    action_id: str, choices: list[tuple[str, str]], initial: tuple[str, str]
) -> dict[str, Any]:
    return {
        "type": "radio_buttons",
        "action_id": action_id,
        "options": [option(text, value) for text, value in choices],
        "initial_option": option(*initial),
    }
