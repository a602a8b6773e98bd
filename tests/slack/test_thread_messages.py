"""Thread messages and replies: lines, steps, outcomes, stuck and stalled notices, notices."""

from __future__ import annotations

import pytest

from bot.slack.blocks import thread
from tests.slack.blockkit import buttons, card, labels


def test_thread_line_appends_the_date():
    """A thread line is one context: icon, the caller's mrkdwn, and the time."""
    message = thread.thread_line("approved by <@U2>", 0, "👍")
    assert message["blocks"] == [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "👍 approved by <@U2> · "
                    "<!date^0^{date_short_pretty} {time}|1970-01-01 00:00 UTC>",
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
    message = thread.step_message("migrating", fraction, eta, state, seconds, 0)
    assert message["text"] == line
    assert message["blocks"][0]["text"]["text"].startswith(line + " · <!date^0^")


def test_success_outcome_has_no_buttons():
    """Success says where the VM is and offers nothing."""
    message = thread.outcome_message(card(state="succeeded"), True, "vm01 is running on host3")
    assert message["blocks"][0]["text"]["text"] == "✅ vm01 is running on host3"
    assert buttons(message) == []


def test_failure_outcome_gives_next_step_and_retry():
    """A failed live run says what next and offers Retry offline."""
    c = card(state="failed", retry_offline=True)
    message = thread.outcome_message(c, False, "the VM could not keep up", "retry offline")
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert texts == ["❌ the VM could not keep up", "*Next:* retry offline"]
    assert list(labels(message)) == ["retry_offline"]


def test_vm_down_is_loud_and_mentions_approvers():
    """A VM left down opens the outcome with a loud line mentioning the approvers."""
    message = thread.outcome_message(card(state="failed"), False, "start failed", vm_down=True)
    assert message["blocks"][0]["text"]["text"] == "🚨 *vm01 is DOWN* <!subteam^S1>"
    assert message["text"].startswith("🚨 vm01 is DOWN")


def test_stuck_without_host_offers_no_button():
    """Without a host to restart the stuck notice only reports."""
    assert buttons(thread.stuck_message(card(state="stuck"), "stuck", [])) == []


def test_stalled_message_offers_confirmed_cancel():
    """A stalled step is reported with a Cancel that warns it is running."""
    message = thread.stalled_message(card(state="running"), "migrate", 600)
    assert "no progress for 10 min" in message["blocks"][0]["text"]["text"]
    (cancel,) = buttons(message)
    assert cancel["action_id"] == "cancel" and "confirm" in cancel


def test_usage_and_notice_are_one_escaped_section():
    """Usage is a code block; a notice is one line with its icon."""
    assert thread.usage_message("/migrate <vm> to <host>")["blocks"][0]["text"]["text"] == (
        "```/migrate &lt;vm&gt; to &lt;host&gt;```"
    )
    assert thread.notice("this message is out of date", "⚠️")["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "⚠️ this message is out of date"}}
    ]
