"""The request message: header, plan, disks, window, checklist and status line; dry run."""

from __future__ import annotations

from bot.slack.blocks import date_token, dry_run_message, request_message
from tests.slack.blockkit import buttons, card, mrkdwn_texts, summary


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
    assert "🕑 window: <!date^1790000000^{date_short_pretty} {time}|2026-09-21 14:13 UTC>" in texts


def test_date_token_format():
    """Times are `<!date^epoch^{date_short_pretty} {time}|readable UTC>`, whole seconds:
    each reader sees their own zone; a notification shows UTC as a person writes it."""
    assert date_token(0) == "<!date^0^{date_short_pretty} {time}|1970-01-01 00:00 UTC>"
    assert date_token(1_790_000_000.9).startswith("<!date^1790000000^")


def test_disks_list_is_trimmed_with_a_count():
    """Sixteen disks show as the first ten and `… and 6 more`."""
    disks = [dict(summary()["disks"][0], label=str(n)) for n in range(16)]
    text = request_message(card(summary=summary(disks=disks)))["blocks"][2]["text"]["text"]
    assert text.splitlines()[-1] == "… and 6 more"
    assert len(text.splitlines()) == 12


def test_dry_run_has_no_buttons_and_says_so():
    """A dry run shows the same content, no buttons, and that nothing was filed."""
    message = dry_run_message(card())
    assert buttons(message) == []
    assert message["blocks"][0]["text"]["text"] == "dry run · migrate vm01"
    assert message["blocks"][-1]["elements"][0]["text"] == "dry run: nothing was filed"
