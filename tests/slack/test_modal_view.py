"""The "Migrate VM" modal and its option lists: ids, limits, per-disk selects."""

from __future__ import annotations

import json

from bot.slack.blocks import MODAL_ID, migrate_modal, options
from tests.slack.blockkit import LONG, assert_limits


def test_modal_shape_and_ids():
    """The modal has the fixed callback, title, buttons, metadata and block/action ids."""
    sr_options = [{"text": "nfs1", "value": "uuid-1"}]
    disks = [{"userdevice": "0", "device": "xvda", "size": "40 GiB", "sr": "host1-local"}]
    view = migrate_modal("C1", {"text": "vm01", "value": "uuid-vm"}, disks, sr_options, "live")
    assert (view["type"], view["callback_id"], MODAL_ID) == (
        "modal",
        "migrate_modal",
        "migrate_modal",
    )
    assert [view[k]["text"] for k in ("title", "submit", "close")] == [
        "Migrate VM",
        "Check",
        "Cancel",
    ]
    assert json.loads(view["private_metadata"]) == {"channel": "C1"}
    ids = [(b["block_id"], b["element"]["action_id"]) for b in view["blocks"]]
    assert ids == [
        ("vm", "vm"),
        ("host", "host"),
        ("sr", "sr"),
        ("disk_0", "disk"),
        ("mode", "mode"),
        ("shutdown", "shutdown"),
        ("at", "at"),
    ]
    vm_block = view["blocks"][0]
    assert vm_block["dispatch_action"] is True
    assert vm_block["element"]["min_query_length"] == 1
    assert vm_block["element"]["initial_option"]["value"] == "uuid-vm"
    assert view["blocks"][3]["label"]["text"] == "Disk 0 (xvda, 40 GiB) on host1-local"
    assert view["blocks"][4]["element"]["initial_option"]["value"] == "live"
    assert view["blocks"][6]["element"]["placeholder"]["text"] == "02:00 or 2026-11-26T02:00"
    assert [b["optional"] for b in view["blocks"]] == [False, False, True, True, False, False, True]


def test_modal_limits_hold_with_many_disks_and_srs():
    """With 120 disks and 150 SRs the modal keeps 100 blocks, 100 options, 24-char titles."""
    sr_options = [{"text": LONG, "value": LONG} for _ in range(150)]
    disks = [{"userdevice": str(n), "device": "", "size": "1 GiB", "sr": LONG} for n in range(120)]
    view = migrate_modal("C1", None, disks, sr_options)
    assert_limits(view, max_blocks=100)
    assert all(len(view[k]["text"]) <= 24 for k in ("title", "submit", "close"))
    assert view["blocks"][-1]["type"] == "context"


def test_modal_without_srs_has_no_disk_selects():
    """Before a VM is chosen (no SR options) there are no per-disk selects."""
    view = migrate_modal("C1")
    assert [b["block_id"] for b in view["blocks"]] == ["vm", "host", "sr", "mode", "shutdown", "at"]


def test_options_are_capped_and_clipped():
    """An options reply holds at most 100 options with clipped text and value."""
    reply = options([(LONG, LONG)] * 150)
    assert len(reply["options"]) == 100
    assert_limits({"blocks": [], **reply})
    assert options([("vm01", "uuid")]) == {
        "options": [{"text": {"type": "plain_text", "text": "vm01"}, "value": "uuid"}]
    }
