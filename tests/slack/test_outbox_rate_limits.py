"""A 429 holds only what it limits: the outbox reschedules the call past Retry-After and
goes on with the other channels meanwhile (the bot's own WebClient against the Slack
double, so slack_sdk's retry handlers are the production ones)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.metrics import SlackStats
from bot.slack.app import web_client
from bot.slack.outbox import OUTCOME, PROGRESS, STEP, Outbox
from bot.slackdouble import SlackDouble
from tests.support.slack_rig import USERS, settings_for, until


class Skewed:
    """Real time, plus the jumps a test makes past a Retry-After: the outbox's and the
    double's clock, so Slack's records and the outbox's schedule read alike."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


@dataclass
class Rig:
    slack: SlackDouble
    client: WebClient
    stats: SlackStats
    clock: Skewed
    outbox: Outbox

    def post(self, channel: str, text: str) -> Callable[[], None]:
        return lambda: self.client.chat_postMessage(channel=channel, text=text)

    def statuses(self, method: str) -> list[int]:
        return [c.status for c in self.slack.calls_to(method)]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = Skewed()
    with SlackDouble(users=USERS, channels={"CA": "alpha", "CB": "beta"}, clock=clock) as slack:
        stats = SlackStats()
        client = web_client(settings_for("http://127.0.0.1:9", slack, tmp_path / "db"), stats)
        outbox = Outbox(attempts=2, monotonic=clock).start()
        yield Rig(slack, client, stats, clock, outbox)
        outbox.stop(1)


def test_a_429_in_one_channel_holds_that_channel_only(rig: Rig) -> None:
    """429 with Retry-After 30 on channel A: B's outcome still reaches Slack within 2 s;
    A's lines arrive after the 30 s, in the order they were queued, and the 429 is counted."""
    slack, clock = rig.slack, rig.clock
    slack.fail_next("chat.postMessage", status=429, retry_after=30, channel="CA")
    rig.outbox.put(STEP, rig.post("CA", "approved by bob"), lane="post:CA")
    rig.outbox.put(STEP, rig.post("CA", "started"), lane="post:CA")
    limited = until(lambda: [c for c in slack.calls if c.status == 429], timeout=5)[0]

    rig.outbox.put(OUTCOME, rig.post("CB", "vm01 is running on host3"), lane="post:CB")
    outcome = until(lambda: slack.messages("CB"), "B's outcome", timeout=2)
    assert [m.text for m in outcome] == ["vm01 is running on host3"]
    assert rig.stats.rate_limited == 1  # migrate_bot_slack_rate_limited

    clock.skew += 10  # A's budget is back, its Retry-After is not over
    rig.outbox.put(PROGRESS, rig.post("CB", "copy 50%"), lane="post:CB")
    until(lambda: len(slack.messages("CB")) == 2, timeout=5)
    assert slack.messages("CA") == []  # "started" outranks that edit, yet it did not go

    clock.skew += 20
    lines = until(lambda: len(slack.messages("CA")) == 2 and slack.messages("CA"), timeout=5)
    assert [m.text for m in lines] == ["approved by bob", "started"]
    posts = [c for c in slack.calls_to("chat.postMessage") if c.args["channel"] == "CA"]
    assert [c.status for c in posts] == [429, 200, 200]  # slack_sdk did not retry it
    assert all(c.at >= limited.at + 30 for c in posts[1:])


def test_a_rate_limited_call_is_never_given_up(rig: Rig) -> None:
    """A call of any method (here one the outbox gives no lane) is rate-limited more
    often than the outbox's attempts: each 429 is waited out, none is a failed try, and
    the calls behind it go on meanwhile."""
    slack = rig.slack
    slack.fail_next("chat.postEphemeral", status=429, retry_after=30, times=3)

    def ephemeral() -> None:
        rig.client.chat_postEphemeral(channel="CA", user="U1", text="Only bob may approve")

    rig.outbox.put(STEP, ephemeral)
    rig.outbox.put(STEP, rig.post("CB", "queued behind it"), lane="post:CB")
    until(lambda: slack.messages("CB"), "the call behind it", timeout=2)
    for n in range(1, 4):
        until(lambda n=n: rig.statuses("chat.postEphemeral").count(429) == n, timeout=5)
        rig.clock.skew += 30
    until(lambda: slack.ephemerals("U1"), "the ephemeral", timeout=5)
    assert rig.statuses("chat.postEphemeral") == [429, 429, 429, 200]
    assert rig.stats.rate_limited == 3
