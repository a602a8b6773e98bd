"""The transcript: a channel as a person reads it, from what the bot posted."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from bot.slackdouble import Names, SlackDouble
from bot.slackdouble.transcript import mrkdwn
from tests.slackdouble.kit import actions, button, text

NAMES = Names(users={"U1": "Alice"}, handles={"S1": "vm-approvers"}, channels={"C2": "infra"})


REQUEST = [
    {"type": "header", "text": text("plain_text", "Migration request")},
    {
        "type": "section",
        "text": text("mrkdwn", "<@U1> asks to move *&lt;web-01&gt;* (R&amp;D), <!subteam^S1>"),
        "fields": [
            text("mrkdwn", "*From* host1"),
            text("mrkdwn", "*To* host2"),
            text("mrkdwn", "*Disks* 2"),
        ],
    },
    {
        "type": "context",
        "elements": [
            text("mrkdwn", "Expires <!date^1764103600^{time}|13:00 UTC>"),
            text("mrkdwn", "<https://wiki.test/runbook|runbook>"),
        ],
    },
    {"type": "divider"},
    actions(button("approve"), button("reject")),
]

EXPECTED = """\
Migration request
@Alice asks to move *<web-01>* (R&D), @vm-approvers
*From* host1 | *To* host2
*Disks* 2
Expires 13:00 UTC · runbook
---
[Approve] [Reject] (edited 1×)
    Pre-flight: all checks passed
    Migrating… 80% (edited 2×)
    Done in 4 min
    (also sent to the channel)

Second request from <#C2>? See #infra
"""  # noqa: RUF001 (a real multiplication sign, as printed)


def test_channel_transcript(client: WebClient, double: SlackDouble) -> None:
    """Blocks, mrkdwn, buttons, replies, edits and broadcasts read as in Slack; no ephemerals."""
    ts = client.chat_postMessage(channel="C1", text="Migration request", blocks=REQUEST)["ts"]
    client.chat_postMessage(channel="C1", text="Pre-flight: all checks passed", thread_ts=ts)
    progress = client.chat_postMessage(channel="C1", text="Migrating… 0%", thread_ts=ts)["ts"]
    client.chat_postEphemeral(channel="C1", user="U1", text="only Alice sees this")
    client.chat_update(channel="C1", ts=progress, text="Migrating… 40%")
    client.chat_update(channel="C1", ts=progress, text="Migrating… 80%")
    client.chat_postMessage(channel="C1", text="Done in 4 min", thread_ts=ts, reply_broadcast=True)
    client.chat_update(channel="C1", ts=ts, text="Migration request", blocks=REQUEST)
    client.chat_postMessage(channel="C1", text="Second request from &lt;#C2&gt;? See <#C2>")
    assert double.transcript("C1", handles={"S1": "vm-approvers"}) == EXPECTED


def test_empty_channel_reads_as_nothing(double: SlackDouble) -> None:
    """A channel with no messages has an empty transcript."""
    assert double.transcript("C2") == ""


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("<@U1>", "@Alice"),
        ("<@U9|someone>", "@someone"),
        ("<@U9>", "@U9"),
        ("<!subteam^S1>", "@vm-approvers"),
        ("<!subteam^S9|@dbas>", "@dbas"),
        ("<!here> <!channel>", "@here @channel"),
        ("<#C2>", "#infra"),
        ("<!date^1764103600^{date_short}|Nov 25>", "Nov 25"),
        ("<https://x.test/a?b=1&amp;c=2>", "https://x.test/a?b=1&c=2"),
        ("<mailto:ops@x.test|mail us>", "mail us"),
        ("a &lt;b&gt; &amp;amp; c", "a <b> &amp; c"),
    ],
)
def test_mrkdwn_as_displayed(written: str, shown: str) -> None:
    """Mentions, dates, links and escapes read the way Slack displays them."""
    assert mrkdwn(written, NAMES) == shown
