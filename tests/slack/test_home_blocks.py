"""The Home tab's Block Kit (pure): Slack's 100-block limit, escaping, the viewer's buttons."""

from __future__ import annotations

from dataclasses import replace

from bot.slack.actions import Action
from bot.slack.blocks import escape
from bot.slack.blocks.home import HOME_BLOCKS, Entry, home_view
from bot.slackdouble.blockkit import view_problems
from tests.slack.blockkit import (
    EVIL,
    TOKEN,
    assert_limits,
    buttons,
    card,
    check,
    mrkdwn_texts,
    worst_card,
)
from tests.slack.blockkit import summary as summary_of

DECIDE = (Action.APPROVE, Action.REJECT)
NOW = 1_790_000_000.0


def waiting(count: int) -> list[Entry]:
    return [Entry(worst_card(id=n, state="pending"), "C1", DECIDE) for n in range(1, count + 1)]


def test_two_hundred_waiting_requests_keep_to_a_hundred_blocks_and_are_counted() -> None:
    """Each waiting request takes its line and its buttons until the room is spent; the
    rest are counted, and Slack would take the view as it is."""
    running = [Entry(worst_card(id=300 + n, state="running"), "C1") for n in range(60)]
    note = escape(EVIL) * 20
    ended = [Entry(worst_card(id=400 + n, state="failed"), "C1", note=note) for n in range(10)]
    view = home_view(running, waiting(200), ended, NOW)
    assert HOME_BLOCKS - 1 <= len(view["blocks"]) <= HOME_BLOCKS  # entries take two each
    assert view_problems(view) == []
    assert_limits({"text": "", **view}, max_blocks=HOME_BLOCKS)
    decided = {b["block_id"] for b in view["blocks"] if b["type"] == "actions"}
    more = view["blocks"][-3]["elements"][0]["text"]
    assert more.startswith(f"… and {200 - len(decided)} more waiting")
    assert "*Running now* (60)" in str(view["blocks"]) and "… and " in str(view["blocks"])


def test_a_few_requests_are_all_shown_with_the_viewers_buttons_only() -> None:
    """Approve and Reject appear where this viewer may press them; the values are the
    request message's (`id:revision`); a blocked request offers neither."""
    blocked = summary_of(checks=[check("blocker", "Memory", reason="no room")])
    entries = [
        Entry(card(id=1, revision=4), "C1", DECIDE),
        Entry(card(id=2), "C1", ()),
        Entry(card(id=3, summary=blocked), "C1", DECIDE),
    ]
    view = home_view([], entries, [], NOW)
    pressable = buttons(view)
    assert [(b["action_id"], b["value"]) for b in pressable] == [
        ("approve", "1:4"),
        ("reject", "1:4"),
    ]
    assert all(b.get("confirm") for b in pressable)  # the request message's dialogs
    assert "*Waiting for approval* (3)" in str(view["blocks"])


def test_names_are_escaped_and_mentions_are_only_ours() -> None:
    """A VM named like a broadcast cannot ping anyone from the Home tab."""
    evil = replace(card(), summary=summary_of(vm=EVIL, source=EVIL, dest=EVIL))
    view = home_view([Entry(evil, "C1")], [Entry(evil, "C1", DECIDE)], [], NOW)
    for text in mrkdwn_texts({"text": "", **view}):
        stripped = TOKEN.sub("", text).replace("<#C1>", "")
        assert "<" not in stripped and ">" not in stripped, text


def test_a_notice_goes_on_top_and_start_replaces_approval_when_it_is_off() -> None:
    """The answer to a press made on the tab is its first section; without approval the
    waiting requests offer Start."""
    notice = [{"type": "section", "text": {"type": "mrkdwn", "text": "⛔ out of date"}}]
    entry = Entry(card(require_approval=False), "C1", (Action.START,))
    view = home_view([], [entry], [], NOW, notice, approval=False)
    assert view["blocks"][1] == notice[0]
    assert [b["action_id"] for b in buttons(view)] == ["start"]
    assert "*Waiting for Start* (1)" in str(view["blocks"])
