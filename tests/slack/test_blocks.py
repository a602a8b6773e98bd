"""Block Kit builders: buttons per state, escaping, Slack's limits, modal, tokens."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.blocks import (
    ACTIONS,
    MODAL_ID,
    Card,
    button_value,
    date_token,
    dry_run_message,
    migrate_modal,
    notice,
    options,
    outcome_message,
    parse_button_value,
    request_list,
    request_message,
    request_status,
    stalled_message,
    step_message,
    stuck_message,
    thread_line,
    usage_message,
)
from bot.slack.blocks.board import Row as BoardRow
from bot.slack.blocks.board import board_line, board_message
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


# Exact content


def test_request_header_reads_id_and_vm():
    """The request message opens with the header `#42 · migrate vm01`."""
    assert request_message(card())["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "#42 · migrate vm01"},
    }


def test_checklist_line_shows_icon_title_reason_and_fix_in_italics():
    """A warning reads icon, bold title, reason and its fix in italics; passes come last."""
    text = request_message(card())["blocks"][3]["text"]["text"]
    assert text.splitlines() == [
        "*Checklist*",
        "⚠️ *Snapshots*: 2 snapshots — _Delete 2 snapshots: the next backup is a full one_",
        "⚠️ *Backup*: why — _Exclude from backup: tag the VM 'xo:no-bak' until the move succeeds_",
        "✅ *Memory*: 8 GiB free on host3",
    ]


def test_plan_and_disks_read_route_mode_call_and_moves():
    """The plan names the route, mode, estimates and call; a disk moves or stays."""
    blocks = request_message(card(shutdown="hard"))["blocks"]
    assert blocks[1]["text"]["text"] == (
        "*host1 → host3*\nmode: offline, hard shutdown · estimate 6 min 12 s · downtime 4 min\n"
        "call: VM.migrate_send (storage motion)"
    )
    assert blocks[2]["text"]["text"] == (
        "*Disks*\n0 (xvda, 'root') 40 GiB: host1-local → nfs1\n"
        "1 (xvdb, 'data') 100 GiB: stays on nfs1"
    )


def test_status_line_names_state_requester_approvers_and_parent():
    """While pending the status line waits for the approvers and names requester and parent."""
    status = request_message(card(parent_id=41))["blocks"][-2]["elements"][0]["text"]
    assert status == (
        "*awaiting approval* · requested by <@U1> · waiting for <!subteam^S1> · retry of #41"
    )
    approved = request_message(card(state="approved", status="approved by <@U2>"))
    assert approved["blocks"][-2]["elements"][0]["text"] == (
        "*approved* · approved by <@U2> · requested by <@U1>"
    )


def test_window_line_is_a_date_token():
    """A request with at= shows its window as a Slack date token."""
    texts = mrkdwn_texts(request_message(card(run_at=1_790_000_000)))
    assert "🕑 window: <!date^1790000000^{date_short_pretty} {time}|2026-09-21T14:13:20Z>" in texts


def test_date_token_format():
    """Times are `<!date^epoch^{date_short_pretty} {time}|ISO UTC>`, whole seconds."""
    assert date_token(0) == "<!date^0^{date_short_pretty} {time}|1970-01-01T00:00:00Z>"
    assert date_token(1_790_000_000.9).startswith("<!date^1790000000^")


def test_disks_list_is_trimmed_with_a_count():
    """Sixteen disks show as the first ten and `… and 6 more`."""
    disks = [dict(summary()["disks"][0], label=str(n)) for n in range(16)]
    text = request_message(card(summary=summary(disks=disks)))["blocks"][2]["text"]["text"]
    assert text.splitlines()[-1] == "… and 6 more"
    assert len(text.splitlines()) == 12


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


def test_dry_run_has_no_buttons_and_says_so():
    """A dry run shows the same content, no buttons, and that nothing was filed."""
    message = dry_run_message(card())
    assert buttons(message) == []
    assert message["blocks"][0]["text"]["text"] == "dry run · migrate vm01"
    assert message["blocks"][-1]["elements"][0]["text"] == "dry run: nothing was filed"


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


# Values and action ids


def test_every_button_value_parses_back_to_id_and_revision():
    """Each button's value is `id:revision` and parses back to the pair."""
    for c in every_state_card(worst_card(id=7, revision=12)):
        for message in every_message(c):
            for b in buttons(message):
                assert b["value"] == button_value(7, 12) == "7:12"
                assert parse_button_value(b["value"]) == (7, 12)


@pytest.mark.parametrize(
    "value",
    ["", "42", "42:", ":3", "a:b", "42:3:1", " 42:3", "-1:3", "4٢:3", "1" * 19 + ":1", None],
)
def test_parse_button_value_rejects_garbage(value):
    """Anything but two plain decimal numbers is refused with None."""
    assert parse_button_value(value) is None


@given(st.text())
def test_parse_button_value_never_raises(value):
    """Any text, edited by a client, parses to a pair or None and never raises."""
    parsed = parse_button_value(value)
    assert parsed is None or button_value(*parsed) == value


@given(st.integers(0, 10**18 - 1), st.integers(0, 10**18 - 1))
def test_button_value_round_trips(request_id, revision):
    """Every id and revision survives the trip through a button value."""
    assert parse_button_value(button_value(request_id, revision)) == (request_id, revision)


def test_actions_is_every_action_id_a_builder_emits():
    """ACTIONS is exactly the set of action_ids the message builders can emit."""
    emitted = {
        b["action_id"]
        for variant in (worst_card(), worst_card(retry_offline=False, refile=True))
        for c in every_state_card(variant)
        for message in every_message(c)
        for b in buttons(message)
    }
    assert emitted == ACTIONS


# Escaping and limits


def test_markup_in_names_is_escaped_everywhere():
    """A VM, host, disk or reason named `<!channel> *x*` never reaches mrkdwn unescaped."""
    disks = [{"label": EVIL, "size": EVIL, "from": EVIL, "to": EVIL}]
    checks = [check("warning", EVIL, "switch_offline", reason=EVIL, fix=EVIL)]
    evil = card(summary=summary(vm=EVIL, source=EVIL, dest=EVIL, disks=disks, checks=checks))
    evil = replace(evil, stuck_host=EVIL, retry_offline=True)
    messages = [
        *(m for c in every_state_card(evil) for m in every_message(c)),
        step_message(EVIL, 0.5, 60, "running", None, 0),
        usage_message(EVIL),
        notice(EVIL, "⛔"),
    ]
    for message in messages:
        for text in mrkdwn_texts(message):
            assert "<!channel>" not in text and "<@U999>" not in text
            assert TOKEN.sub("", text).count("<") == 0, text
    assert "&lt;!channel&gt; *x* &amp; &lt;@U999&gt;" in mrkdwn_texts(request_message(evil))[2]


def test_requester_that_is_not_a_user_id_is_not_a_token():
    """A requester that is not a user id is shown escaped, never as a mention."""
    texts = mrkdwn_texts(request_message(card(requester="<!everyone>")))
    assert any("requested by &lt;!everyone&gt;" in t for t in texts)


def test_worst_case_fits_slack_limits_in_every_state():
    """16 disks, 20 checks and 300-character names keep every limit and < 12,000 chars."""
    for c in every_state_card(worst_card()):
        for message in every_message(c):
            assert_limits(message)
            assert len(json.dumps(message, ensure_ascii=False)) < 12_000


def test_worst_case_checklist_puts_blockers_first_and_counts_the_rest():
    """When the checklist is trimmed, blockers come first and the rest is counted."""
    worst = worst_card(("pass", "warning", "blocker"))
    text = request_message(worst)["blocks"][4]["text"]["text"]
    lines = text.splitlines()
    assert lines[1].startswith("⛔")
    assert re.fullmatch(r"… and \d+ more checks", lines[-1])


@given(st.text(max_size=400))
def test_any_vm_name_keeps_limits_and_pings_nobody(vm):
    """Whatever the VM is called, the request message keeps the limits and has no raw token."""
    message = request_message(card(summary=summary(vm=vm, source=vm)))
    assert_limits(message)
    for text in mrkdwn_texts(message):
        assert TOKEN.sub("", text).count("<") == 0


# Thread, outcome, replies


def test_thread_line_appends_the_date():
    """A thread line is one context: icon, the caller's mrkdwn, and the time."""
    message = thread_line("approved by <@U2>", 0, "👍")
    assert message["blocks"] == [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "👍 approved by <@U2> · "
                    "<!date^0^{date_short_pretty} {time}|1970-01-01T00:00:00Z>",
                }
            ],
        }
    ]


@pytest.mark.parametrize(
    ("state", "fraction", "eta", "seconds", "line"),
    [
        ("running", 0.42, 185, None, "⏳ migrating  `[████░░░░░░]  42%` · ETA 3 min 5 s"),
        ("running", None, None, None, "⏳ migrating"),
        ("done", 1.0, None, 242, "✅ migrating done in 4 min 2 s"),
        ("failed", 0.5, None, 60, "❌ migrating failed after 1 min"),
        ("stalled", 0.42, None, 600, "⚠️ migrating  `[████░░░░░░]  42%` · no progress for 10 min"),
    ],
)
def test_step_message_lines(state, fraction, eta, seconds, line):
    """The running step shows bar, percent and ETA, then how it ended."""
    message = step_message("migrating", fraction, eta, state, seconds, 0)
    assert message["text"] == line
    assert message["blocks"][0]["text"]["text"].startswith(line + " · <!date^0^")


def test_success_outcome_has_no_buttons():
    """Success says where the VM is and offers nothing."""
    message = outcome_message(card(state="succeeded"), True, "vm01 is running on host3")
    assert message["blocks"][0]["text"]["text"] == "✅ vm01 is running on host3"
    assert buttons(message) == []


def test_failure_outcome_gives_next_step_and_retry():
    """A failed live run says what next and offers Retry offline."""
    c = card(state="failed", retry_offline=True)
    message = outcome_message(c, False, "the VM could not keep up", "retry offline")
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert texts == ["❌ the VM could not keep up", "*Next:* retry offline"]
    assert list(labels(message)) == ["retry_offline"]


def test_vm_down_is_loud_and_mentions_approvers():
    """A VM left down opens the outcome with a loud line mentioning the approvers."""
    message = outcome_message(card(state="failed"), False, "start failed", vm_down=True)
    assert message["blocks"][0]["text"]["text"] == "🚨 *vm01 is DOWN* <!subteam^S1>"
    assert message["text"].startswith("🚨 vm01 is DOWN")


def test_stuck_without_host_offers_no_button():
    """Without a host to restart the stuck notice only reports."""
    assert buttons(stuck_message(card(state="stuck"), "stuck", [])) == []


def test_stalled_message_offers_confirmed_cancel():
    """A stalled step is reported with a Cancel that warns it is running."""
    message = stalled_message(card(state="running"), "migrate", 600)
    assert "no progress for 10 min" in message["blocks"][0]["text"]["text"]
    (cancel,) = buttons(message)
    assert cancel["action_id"] == "cancel" and "confirm" in cancel


def test_usage_and_notice_are_one_escaped_section():
    """Usage is a code block; a notice is one line with its icon."""
    assert usage_message("/migrate <vm> to <host>")["blocks"][0]["text"]["text"] == (
        "```/migrate &lt;vm&gt; to &lt;host&gt;```"
    )
    assert notice("this message is out of date", "⚠️")["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "⚠️ this message is out of date"}}
    ]


# Listing and status


def test_empty_list_says_no_requests_yet():
    """With nothing filed, the list says so."""
    assert request_list([], [], {})["blocks"][0]["text"]["text"] == "no requests yet"


def test_list_links_ids_and_caps_finished_at_ten():
    """Open requests come first with linked ids; at most ten finished ones follow."""
    finished = [card(id=n, state="succeeded") for n in range(1, 15)]
    message = request_list([card(run_at=0)], finished, {42: "https://x.slack.com/p1"})
    first, second = (b["text"]["text"] for b in message["blocks"])
    assert first.splitlines()[1] == (
        "<https://x.slack.com/p1|#42> *vm01* · host1 → host3 · awaiting approval · window "
        "<!date^0^{date_short_pretty} {time}|1970-01-01T00:00:00Z>"
    )
    assert first.startswith("*Open requests*") and second.startswith("*Last finished*")
    assert len(second.splitlines()) == 11


def test_long_list_is_trimmed_to_fit_one_message():
    """Hundreds of open requests with long names still make one message within the limits."""
    many = [worst_card(id=n) for n in range(500)]
    links = {n: "https://x.slack.com/archives/C1/p" + "1" * 60 for n in range(500)}
    message = request_list(many, many, links)
    assert_limits(message)
    assert len(json.dumps(message, ensure_ascii=False)) < 12_000
    opened, last = "\n".join(b["text"]["text"] for b in message["blocks"]).split("*Last finished*")
    assert re.search(r"\n… and \d+ more$", opened)
    assert len(last.strip().splitlines()) == 10


def test_list_does_not_link_an_unsafe_permalink():
    """A permalink that could break the link token is not used."""
    message = request_list([card()], [], {42: "https://x|<!channel>"})
    assert "#42 *vm01*" in message["blocks"][0]["text"]["text"]


def test_status_shows_steps_and_thread_link_without_buttons():
    """`/migrate status` shows the card, its steps and a link to the thread, no buttons."""
    steps = [("shutdown", "done", 12.0), ("migrate", "running", None)]
    message = request_status(card(state="running"), "https://x.slack.com/p1", steps)
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert "*Steps*\n✅ shutdown done · 12 s\n⏳ migrate running" in texts
    assert texts[-1] == "<https://x.slack.com/p1|open thread>"
    assert buttons(message) == []


# Modal and options


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


# A busy channel's board


def board_rows(count: int, vm: str = "vm01", what: str = "migrating") -> list[BoardRow]:
    return [BoardRow(i, vm, "host3", "running", what, 0.42) for i in range(1, count + 1)]


def test_board_line_reads_icon_id_route_news_and_percent():
    """One row: where the request goes and its latest news, with the percent while running."""
    running = BoardRow(12, "vm01", "host3", "running", "migrating", 0.456)
    assert board_line(running) == "⏳ #12 *vm01* → host3 · migrating 46%"
    done = BoardRow(13, "vm02", "host2", "succeeded", "vm02 is running on host2")
    assert board_line(done) == "✅ #13 *vm02* → host2 · vm02 is running on host2"
    gone = BoardRow(14, "vm03", "host2", "cancelled", "cancelled")
    assert board_line(gone).startswith("⛔ #14")


def test_board_says_busy_while_running_and_all_ended_at_the_end():
    """The heading explains why the board is there, then says when everyone has ended."""
    rows = board_rows(3)
    busy = board_message(rows, 0)
    assert "Busy channel: 3 of 3 migrations under way" in mrkdwn_texts(busy)[1]
    one_done = [replace(rows[0], state="succeeded"), *rows[1:]]
    assert (
        "Busy channel: 2 of 3 migrations under way" in mrkdwn_texts(board_message(one_done, 0))[1]
    )
    assert "3 running" in busy["text"]
    ended = [replace(r, state="succeeded") for r in rows[:2]]
    ended.append(replace(rows[2], state="failed", what="NOT_ENOUGH_MEMORY"))
    final = board_message(ended, 0)
    assert "All 3 migrations on this board have ended" in mrkdwn_texts(final)[1]
    assert "1 failed · 2 succeeded" in final["text"]


def test_board_leaves_the_oldest_ended_rows_to_their_threads():
    """Beyond 100 rows the oldest finished ones are counted, the running ones all shown."""
    rows = [replace(r, state="succeeded") for r in board_rows(60)]
    rows += [BoardRow(i, "vm", "host3", "running", "migrating") for i in range(61, 121)]
    message = board_message(rows, 0)
    text = "\n".join(mrkdwn_texts(message)[1:])
    assert "… and 20 that ended earlier (see their threads)" in text
    assert "#20 " not in text and "#21 " in text and "#120 " in text
    assert_limits(message)


def test_worst_case_board_fits_slack_limits_and_pings_nobody():
    """200 rows with 300-character hostile names and news keep every limit."""
    message = board_message(board_rows(200, vm=LONG + EVIL, what=EVIL * 20), 0)
    assert_limits(message)
    assert len(json.dumps(message, ensure_ascii=False)) < 15_000
    assert re.search(r"… and \d+ more", mrkdwn_texts(message)[-2])
    for text in mrkdwn_texts(message):
        assert "<!channel>" not in text and "<@U999>" not in text
        assert TOKEN.sub("", text).count("<") == 0, text
