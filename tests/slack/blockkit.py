"""Sample cards and what the Block Kit tests read from the messages built of them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from bot.slack.blocks import (
    Card,
    dry_run_message,
    outcome_message,
    request_list,
    request_message,
    request_status,
    stalled_message,
    stuck_message,
)
from bot.states import State

EVIL = "<!channel> *x* & <@U999>"
LONG = ("<!here> " + "a" * 300)[:300]
ALL_FIXES = ["switch_offline", "delete_snapshots", "exclude_backup", "hard_shutdown"]
# The only <…> tokens a builder may put in mrkdwn: mentions, dates, groups, links.
TOKEN = re.compile(
    r"<(@[UW][A-Z0-9]+|!date\^[0-9]+\^[^|>]+\|[^>]+|!subteam\^S[A-Z0-9]+|https?://[^|>]+\|[^>]+)>"
)


def check(severity: str, title: str = "Memory", action: str | None = None, **kw: Any) -> dict:
    fix = kw.pop("fix", "" if severity == "pass" else f"fix {title}")
    base = {"key": title.lower(), "severity": severity, "title": title, "reason": "why"}
    return {**base, "fix": fix, "action": action, **kw}


def summary(**overrides: Any) -> dict:
    base = {
        "vm": "vm01",
        "source": "host1",
        "dest": "host3",
        "mode": "offline",
        "call": "migrate_send",
        "estimate": "6 min 12 s",
        "downtime": "4 min",
        "snapshots": 2,
        "disks": [
            {"label": "0 (xvda, 'root')", "size": "40 GiB", "from": "host1-local", "to": "nfs1"},
            {"label": "1 (xvdb, 'data')", "size": "100 GiB", "from": "nfs1", "to": "nfs1"},
        ],
        "checks": [
            check("pass", "Memory", reason="8 GiB free on host3"),
            check(
                "warning",
                "Snapshots",
                "delete_snapshots",
                reason="2 snapshots",
                fix="Delete 2 snapshots: the next backup is a full one",
            ),
            check(
                "warning",
                "Backup",
                "exclude_backup",
                fix="Exclude from backup: tag the VM 'xo:no-bak' until the move succeeds",
            ),
        ],
    }
    return {**base, **overrides}


def card(**overrides: Any) -> Card:
    base = {
        "id": 42,
        "revision": 3,
        "state": "pending",
        "requester": "U1",
        "summary": summary(),
        "approvers": "<!subteam^S1>",
    }
    return Card(**{**base, **overrides})


def worst_card(severities: tuple[str, ...] = ("warning", "pass"), **overrides: Any) -> Card:
    """16 disks, 20 checks with every fix, 300-character names full of markup."""
    disks = [
        {"label": f"{n} ({LONG})", "size": "40 GiB", "from": LONG, "to": LONG + str(n % 2)}
        for n in range(16)
    ]
    checks = [
        check(
            severities[n % len(severities)],
            LONG,
            ALL_FIXES[(n // len(severities)) % 4],
            reason=LONG * 2,
            fix=LONG * 2,
        )
        for n in range(20)
    ]
    worst = summary(vm=LONG, source=LONG, dest=LONG, disks=disks, checks=checks, snapshots=7)
    base = {
        "summary": worst,
        "status": "approved by <@U2> " + "z" * 500,
        "run_at": 1_790_000_000.5,
        "stuck_host": LONG,
        "retry_offline": True,
        "parent_id": 41,
    }
    return card(**{**base, **overrides})


def buttons(message: dict) -> list[dict]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def labels(message: dict) -> dict[str, str]:
    return {b["action_id"]: b["text"]["text"] for b in buttons(message)}


def walk(node: Any) -> Iterator[dict]:
    """Every dict inside a message or view, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def mrkdwn_texts(message: dict) -> list[str]:
    """What Slack parses for mentions: every mrkdwn text and the fallback `text`."""
    found = [d["text"] for d in walk(message["blocks"]) if d.get("type") == "mrkdwn"]
    return [message["text"], *found]


def assert_limits(message: dict, max_blocks: int = 50) -> None:
    """Every limit in slack-notes.md's table, checked on each object of a message or view."""
    assert len(message["blocks"]) <= max_blocks
    for node in walk(message):
        kind = node.get("type")
        if kind in ("plain_text", "mrkdwn"):
            assert 0 < len(node["text"]) <= 3000
        if kind == "section":
            assert len(node["text"]["text"]) <= 3000
        if kind == "header":
            assert len(node["text"]["text"]) <= 150
        if kind == "context":
            assert len(node["elements"]) <= 10
        if kind == "actions":
            assert len(node["elements"]) <= 25
        if kind == "button":
            assert len(node["text"]["text"]) <= 75
            assert len(node["value"]) <= 2000
            assert node.get("style") in (None, "primary", "danger")
        if "confirm" in node and isinstance(node["confirm"], dict) and "title" in node["confirm"]:
            dialog = node["confirm"]
            assert len(dialog["title"]["text"]) <= 100
            assert len(dialog["text"]["text"]) <= 300
            assert len(dialog["confirm"]["text"]) <= 30
            assert len(dialog["deny"]["text"]) <= 30
        if "options" in node and isinstance(node["options"], list):
            assert len(node["options"]) <= 100
            for option in node["options"]:
                assert len(option["text"]["text"]) <= 75
                assert len(option["value"]) <= 150
        for key in ("block_id", "action_id"):
            assert len(node.get(key, "")) <= 255


def every_message(c: Card) -> list[dict]:
    """What every message builder makes of one card."""
    return [
        request_message(c),
        dry_run_message(c),
        request_status(c, "https://x.slack.com/archives/C1/p1", [("migrate", "done", 62.0)]),
        request_list([c], [c], {c.id: "https://x.slack.com/archives/C1/p1"}),
        outcome_message(c, False, c.vm, c.vm, vm_down=True),
        outcome_message(c, True, c.vm),
        stuck_message(c, c.vm, [c.vm]),
        stalled_message(c, c.vm, 600),
    ]


def every_state_card(base: Card) -> Iterator[Card]:
    for state in State:
        for blocked in (False, True):
            for approval in (True, False):
                checks = [*base.checks, check("blocker", "HA")] if blocked else base.checks
                s = {**base.summary, "checks": checks}
                yield replace(base, state=state, summary=s, require_approval=approval)


def batch_summary(moves: int = 200, name: str = "vm") -> dict[str, Any]:
    rows = [
        {
            "vm": f"{name}{i:03}",
            "dest": f"host{i % 3 + 2}",
            "srs": "nfs1",
            "mode": "live",
            "estimate": "2 min",
        }
        for i in range(moves)
    ]
    vms = [row["vm"] for row in rows]
    return {
        "kind": "batch",
        "subject": "evacuate host1",
        "evacuate": "host1",
        "targets": ["host2", "host3", "host4"],
        "estimate": "1 h 40 min",
        "slots": 4,
        "copy": "0 B",
        "moves": rows,
        "left": [{"vm": "stuck01", "why": "fits on no host", "blocks": True}],
        "groups": [
            {
                "severity": "blocker",
                "title": "Placement",
                "reason": "stuck01 fits on no host",
                "fix": "",
                "action": None,
                "vms": ["stuck01"],
                "count": 1,
            },
            {
                "severity": "warning",
                "title": "Snapshots",
                "reason": f"{moves} VMs have snapshots",
                "fix": "Delete them",
                "action": "delete_snapshots",
                "vms": vms,
                "count": 2 * moves,
            },
            {
                "severity": "warning",
                "title": "Backup",
                "reason": f"{moves} VMs are not excluded from backup",
                "fix": "Exclude from backup: tags each VM",
                "action": "exclude_backup",
                "vms": vms[:7],
                "count": 7,
            },
        ],
    }


def batch_card(state: State = State.PENDING, **summary: Any) -> Card:
    return Card(7, 3, str(state), "U1", batch_summary(**summary), approvers="<@ULEAD>")
