"""Buttons per state and their confirm dialogs: what each state offers and what it asks."""

from __future__ import annotations

import pytest

from bot.slack.blocks import request_message, stuck_message
from bot.states import State
from tests.slack.blockkit import (
    buttons,
    card,
    check,
    every_message,
    every_state_card,
    labels,
    summary,
    worst_card,
)

# Buttons per state


@pytest.mark.parametrize(
    ("approval", "blocked", "expected"),
    [
        (True, False, ["approve", "reject", "cancel", "recheck"]),
        (False, False, ["start", "cancel", "recheck"]),
        (True, True, ["cancel", "recheck"]),
        (False, True, ["cancel", "recheck"]),
    ],
)
def test_pending_buttons_follow_approval_and_blockers(approval, blocked, expected):
    """Approve/Reject (or Start without approval) appear only while nothing blocks."""
    checks = [check("blocker", "HA")] if blocked else [check("pass")]
    c = card(require_approval=approval, summary=summary(checks=checks))
    assert list(labels(request_message(c))) == expected


def test_button_labels_are_the_agreed_words():
    """Labels are exactly the words people and scripts look for."""
    assert labels(request_message(card())) == {
        "approve": "Approve",
        "reject": "Reject",
        "cancel": "Cancel",
        "recheck": "Re-check",
        "fix_delete_snapshots": "Delete 2 snapshots",
        "fix_exclude_backup": "Exclude from backup",
    }
    assert labels(request_message(card(require_approval=False)))["start"] == "Start"


def test_each_fix_appears_once_with_its_label():
    """Every fix a non-pass check offers is one button, even when two checks share it."""
    checks = [
        check("warning", "Load", "switch_offline"),
        check("blocker", "Tools", "switch_offline"),
        check("warning", "Tools2", "hard_shutdown"),
        check("warning", "Snapshots", "delete_snapshots"),
        check("warning", "Backup", "exclude_backup"),
        check("pass", "Other", "exclude_backup"),
    ]
    c = card(summary=summary(checks=checks, snapshots=1))
    found = [b["action_id"] for b in buttons(request_message(c))]
    assert found == [
        "cancel",
        "recheck",
        "fix_switch_offline",
        "fix_hard_shutdown",
        "fix_delete_snapshots",
        "fix_exclude_backup",
    ]
    got = labels(request_message(c))
    assert got["fix_switch_offline"] == "Switch to offline"
    assert got["fix_hard_shutdown"] == "Use hard shutdown"
    assert got["fix_delete_snapshots"] == "Delete 1 snapshot"


def test_pass_checks_offer_no_fix():
    """A passing check's action is never offered."""
    c = card(summary=summary(checks=[check("pass", "Backup", "exclude_backup")]))
    assert "fix_exclude_backup" not in labels(request_message(c))


@pytest.mark.parametrize("state", ["approved", "scheduled", "queued", "running"])
def test_active_states_offer_cancel_only(state):
    """Once approved and until it ends, a request offers Cancel alone."""
    assert labels(request_message(card(state=state))) == {"cancel": "Cancel"}


def test_stuck_offers_toolstack_restart_on_the_named_host():
    """A stuck request offers `Restart toolstack on host1` (danger, confirmed)."""
    (only,) = buttons(request_message(card(state="stuck", stuck_host="host1")))
    assert (only["action_id"], only["text"]["text"]) == (
        "restart_toolstack",
        "Restart toolstack on host1",
    )
    assert only["style"] == "danger"
    assert only["confirm"]["title"]["text"] == "Restart the toolstack on host1?"
    assert only["confirm"]["text"]["text"].startswith("Every task on it is aborted")


def test_failed_live_run_offers_retry_offline():
    """A failed live run offers Retry offline; another failure offers nothing."""
    (retry,) = buttons(request_message(card(state="failed", retry_offline=True)))
    assert (retry["action_id"], retry["text"]["text"], retry["style"]) == (
        "retry_offline",
        "Retry offline",
        "primary",
    )
    assert "estimate 6 min 12 s" in retry["confirm"]["text"]["text"]


@pytest.mark.parametrize(
    "state", ["succeeded", "failed", "cancelled", "rejected", "expired", "missed"]
)
def test_finished_requests_have_no_actions_block(state):
    """A finished request (no retry offered) keeps no actions block."""
    blocks = request_message(card(state=state))["blocks"]
    assert all(b["type"] != "actions" for b in blocks)


# Confirm dialogs


def test_confirm_dialogs_guard_every_button_that_changes_something():
    """All buttons confirm except Re-check and Cancel before the run starts."""
    for c in every_state_card(worst_card()):
        for message in every_message(c):
            for block in (b for b in message["blocks"] if b["type"] == "actions"):
                running = c.state == State.RUNNING or block["block_id"].startswith("stalled:")
                for b in block["elements"]:
                    skip = b["action_id"] == "recheck" or (
                        b["action_id"] == "cancel" and not running
                    )
                    assert ("confirm" in b) != skip, (c.state, b["action_id"])


def test_approve_confirm_states_route_mode_and_downtime():
    """Approve's dialog says what moves where and the downtime."""
    (approve,) = [b for b in buttons(request_message(card())) if b["action_id"] == "approve"]
    assert approve["confirm"]["title"]["text"] == "Approve #42?"
    assert approve["confirm"]["text"]["text"] == (
        "vm01 moves host1 → host3 (offline, downtime about 4 min)"
    )


def test_running_cancel_confirm_warns_about_late_phases():
    """Cancel while running says xapi may not honour it."""
    (cancel,) = buttons(request_message(card(state="running")))
    assert "late phases of a migration cannot be cancelled" in cancel["confirm"]["text"]["text"]


def test_fix_confirms_state_the_consequence():
    """Delete snapshots, Exclude from backup and hard shutdown say what they do."""
    checks = [
        check("warning", "S", "delete_snapshots"),
        check("warning", "B", "exclude_backup", fix="Exclude from backup: tag the VM 'xo:no-bak'"),
        check("warning", "T", "hard_shutdown"),
    ]
    found = {
        b["action_id"]: b for b in buttons(request_message(card(summary=summary(checks=checks))))
    }
    assert "next backup is a full one" in found["fix_delete_snapshots"]["confirm"]["text"]["text"]
    assert found["fix_exclude_backup"]["confirm"]["text"]["text"] == "Tag the VM 'xo:no-bak'"
    assert "without warning" in found["fix_hard_shutdown"]["confirm"]["text"]["text"]


def test_stuck_confirm_lists_other_tasks_within_300_characters():
    """The toolstack dialog names the other tasks it aborts and stays within the limit."""
    tasks = [f"export of vm{n}" for n in range(40)]
    (restart,) = buttons(stuck_message(card(state="stuck", stuck_host="host1"), "stuck", tasks))
    text = restart["confirm"]["text"]["text"]
    assert "Also aborts: export of vm0, export of vm1" in text
    assert len(text) == 300 and text.endswith("…")
