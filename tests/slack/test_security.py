"""Who gets in and what they can touch, provoked through the real HTTP path."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.slackdouble import form_body, payload_body, signed_headers, slash_command, view_submission
from bot.states import State
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, SECRET, Bot, filed, running_bot


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path, bot_allowed_channels=[CHANNEL])


def _command_body(text: str = "vm02 to host3", channel: str = CHANNEL) -> bytes:
    fields = slash_command(text, user_id="U1", channel_id=channel, response_url="http://x")
    return form_body(fields)


def test_truncated_and_oversized_bodies_are_refused(bot: Bot) -> None:
    """A body cut after signing fails the signature; a megabyte body is refused unread."""
    body = _command_body()
    headers = signed_headers(SECRET, body)
    assert bot.send(body[:-5], headers)[0] == 401
    # A 2 MB body announced: refused from its Content-Length, before a byte of it is read.
    url = urllib.parse.urlsplit(bot.driver.events_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.putrequest("POST", url.path)
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(2 << 20))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    assert bot.core.store.open_requests() == []


def test_only_configured_channels_and_never_a_dm(bot: Bot) -> None:
    """BOT_ALLOWED_CHANNELS holds: another channel and a DM are refused at once."""
    assert "not enabled in this channel" in bot.command("vm02 to host3", channel="C9")["text"]
    assert "Invite the bot" in bot.command("vm02 to host3", channel="D1")["text"]
    assert bot.core.store.open_requests() == []


def test_an_edited_button_cannot_reach_what_the_presser_may_not_touch(bot: Bot) -> None:
    """Another request's id, or another action, in a button is judged for the presser."""
    mine = filed(bot, "vm02 to host3", user="U1")
    theirs = filed(bot, "vm01 to host3 sr=nfs1 mode=offline", user="ULEAD2")
    value = f"{theirs}:{bot.request(theirs).revision}"
    key = bot.press_on(bot.request_message(mine), "cancel", "U1", value=value)
    assert "Only the requester or an approver" in bot.until(lambda: bot.answers(key))[0]
    message = bot.request_message(mine)
    message["blocks"].append(
        {"type": "actions", "elements": [{"type": "button", "action_id": "approve"}]}
    )
    forged = f"{mine}:{bot.request(mine).revision}"
    key = bot.press_on(message, "approve", "U1", value=forged)
    assert "Only approvers" in bot.until(lambda: bot.answers(key))[0]
    assert bot.request(mine).state == State.PENDING
    assert bot.request(theirs).state == State.PENDING


def test_fifty_concurrent_approvals_start_one_migration(bot: Bot) -> None:
    """Fifty Approve presses at once (two approvers): one run, one approval in the audit."""
    rid = filed(bot, "vm02 to host3")
    message = bot.request_message(rid)
    approvers = ["ULEAD", "ULEAD2"] * 25
    with ThreadPoolExecutor(16) as pool:
        keys = list(pool.map(lambda user: bot.press_on(message, "approve", user), approvers))
    assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
    assert bot.pool.sim.calls.counts["Async.VM.pool_migrate"] == 1
    events = bot.core.store.audit_events(request_id=rid)
    assert [e.action for e in events].count("approved") == 1
    bot.until(lambda: sum(1 for k in keys if bot.answers(k)) >= 49)  # every loser heard why


def test_the_form_is_held_to_the_same_channels(bot: Bot) -> None:
    """A bare /migrate elsewhere opens no form; a form submitted from a channel that is not
    enabled is answered with a field error, and nothing is filed."""
    assert "not enabled in this channel" in bot.command("", channel="C9")["text"]
    assert "Invite the bot" in bot.command("", channel="D1")["text"]
    assert bot.slack.views == {}
    assert bot.command("") == {}  # the enabled channel gets the form
    (view,) = bot.until(lambda: list(bot.slack.views.values()))
    elsewhere = view | {"private_metadata": view["private_metadata"].replace(CHANNEL, "C9")}
    values = {
        "vm": {"vm": {"type": "external_select", "selected_option": {"value": "vm02"}}},
        "host": {"host": {"type": "external_select", "selected_option": {"value": "host3"}}},
    }
    submission = view_submission(user_id="U1", view=elsewhere, values=values)
    status, answer = bot.send(payload_body(submission))
    assert status == 200
    assert json.loads(answer) == {
        "response_action": "errors",
        "errors": {"vm": "/migrate is not enabled in this channel."},
    }
    assert bot.core.store.open_requests() == []
