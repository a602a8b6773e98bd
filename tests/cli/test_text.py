"""The terminal's rendering of a batch (`migrate-bot check 'evacuate host1'`): pure."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bot.cli.text import batch_text, event_line
from bot.engine import events as ev

VMS = [f"vm{n:02}" for n in range(1, 8)]


def _summary(**changes: Any) -> dict[str, Any]:
    """A batch summary as `BatchPreview.summary()` makes it."""
    return {
        "kind": "batch",
        "subject": "evacuate host1",
        "evacuate": "host1",
        "targets": ["host2", "host3"],
        "estimate": "4 min",
        "slots": 3,
        "copy": "12 GiB",
        "moves": [
            {"vm": vm, "dest": "host2", "srs": "nfs1", "mode": "live", "estimate": "1 min"}
            for vm in VMS
        ],
        "left": [{"vm": "bigdb", "why": "bigdb fits on no host", "blocks": True}],
        "groups": [
            {
                "severity": "blocker",
                "title": "Placement",
                "reason": "bigdb fits on no host",
                "fix": "",
                "action": None,
                "vms": ["bigdb"],
                "count": 1,
            },
            {
                "severity": "warning",
                "title": "Snapshots",
                "reason": "7 VMs have snapshots: vm01, vm02, vm03, vm04, vm05 and 2 more",
                "fix": "Delete them",
                "action": "delete_snapshots",
                "vms": VMS,
                "count": 9,
            },
        ],
        **changes,
    }


def test_every_move_every_vm_and_no_line_twice() -> None:
    """Every row of the table, all seven VMs of a grouped line, a left-out VM once."""
    text = batch_text(_summary())
    lines = text.splitlines()
    assert lines[:3] == [
        "evacuate host1: 7 moves to host2, host3",
        "estimate 4 min with 3 at a time, 12 GiB to copy",
        "moves:",
    ]
    assert lines[3] == "  VM    HOST   SR    MODE  ESTIMATE"
    assert lines[4] == "  vm01  host2  nfs1  live  1 min"
    assert [line.split()[0] for line in lines[4:11]] == VMS
    assert lines[11:13] == ["left out:", "  ⛔ bigdb: bigdb fits on no host"]
    assert text.count("bigdb fits on no host") == 1  # its Placement line is the section above
    assert lines[-2].endswith("and 2 more — Delete them")
    assert lines[-1] == "     all 7: " + ", ".join(VMS)


def test_a_host_with_nothing_on_it() -> None:
    """No moves, nothing left out: says so, with no empty table or checklist."""
    text = batch_text(_summary(moves=[], left=[], groups=[], copy="0 B", estimate="0 s"))
    assert text.splitlines() == [
        "evacuate host1: 0 moves to host2, host3",
        "estimate 0 s with 3 at a time, 0 B to copy",
        "moves: none",
    ]


def test_a_scheduled_line_gives_its_window_in_local_time() -> None:
    """The engine hands the window as a value: the terminal writes it as local text (Slack
    writes a date token of the same instant)."""
    scheduled = ev.StateChanged(4, "scheduled", "U2", "scheduled for its window", 1_790_000_000)
    assert event_line(scheduled, ZoneInfo("Asia/Jakarta")) == (
        "#4 scheduled for its window: 2026-09-21 21:13 WIB"
    )
    assert event_line(ev.StateChanged(4, "queued", "U2", "queued")) == "#4 queued"
