"""Escaping and Slack's limits: hostile names ping nobody, the worst case still fits."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from bot.slack.blocks import notice, request_message, step_message, usage_message
from tests.slack.blockkit import (
    EVIL,
    TOKEN,
    assert_limits,
    card,
    check,
    every_message,
    every_state_card,
    mrkdwn_texts,
    summary,
    worst_card,
)


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
