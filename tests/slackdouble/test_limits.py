"""Slack's rate limits, enforced on demand and judged against the manual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.clock import ManualClock
from bot.slackdouble import SlackDouble
from tests.slackdouble.conftest import CHANNELS, GROUPS, USERS


@pytest.fixture
def limited(clock: ManualClock) -> Iterator[SlackDouble]:
    with SlackDouble(
        users=USERS, usergroups=GROUPS, channels=CHANNELS, clock=clock.now, enforce_limits=True
    ) as double:
        yield double


@pytest.fixture
def bot(limited: SlackDouble) -> WebClient:
    return WebClient(token="xoxb-test", base_url=limited.api_url)


def limited_response(bot: WebClient, method: str, **args: str) -> SlackResponse:
    with pytest.raises(SlackApiError) as raised:
        bot.api_call(method, params=args)
    return raised.value.response


def test_tight_update_loop_hits_tier_3(
    bot: WebClient, limited: SlackDouble, clock: ManualClock
) -> None:
    """50 chat.update calls in an instant pass, the 51st gets 429 and Retry-After: 2."""
    ts = bot.chat_postMessage(channel="C1", text="0%")["ts"]
    for percent in range(50):
        bot.chat_update(channel="C1", ts=ts, text=f"{percent}%")
    response = limited_response(bot, "chat.update", channel="C1", ts=ts, text="50%")
    assert (response.status_code, response["error"]) == (429, "ratelimited")
    assert response.headers["Retry-After"] == "2"  # Tier 3 refills one call every 1.2 s
    assert limited.rate_limited == 1
    assert limited.message("C1", ts).text == "49%"
    clock.advance(2)
    assert bot.chat_update(channel="C1", ts=ts, text="50%")["ok"]
    assert [c.status for c in limited.calls_to("chat.update")][-2:] == [429, 200]


def test_usergroups_is_tier_2(bot: WebClient, limited: SlackDouble) -> None:
    """usergroups.users.list allows 20 calls a minute: the 21st waits 3 s."""
    for _ in range(20):
        bot.usergroups_users_list(usergroup="S1")
    response = limited_response(bot, "usergroups.users.list", usergroup="S1")
    assert response.headers["Retry-After"] == "3"


def test_post_message_is_limited_per_channel(
    bot: WebClient, limited: SlackDouble, clock: ManualClock
) -> None:
    """A channel takes a burst of 3 posts, then one a second; other channels are unaffected."""
    for n in range(3):
        bot.chat_postMessage(channel="C1", text=f"burst {n}")
    response = limited_response(bot, "chat.postMessage", channel="C1", text="one too many")
    assert response.headers["Retry-After"] == "1"
    assert bot.chat_postMessage(channel="C2", text="elsewhere")["ok"]
    clock.advance(1)
    assert bot.chat_postMessage(channel="C1", text="after a second")["ok"]
    assert limited.rate_limited == 1


def test_limits_are_off_unless_asked(client: WebClient, double: SlackDouble) -> None:
    """The default double never rate-limits, so functional tests need no clock care."""
    ts = client.chat_postMessage(channel="C1", text="0%")["ts"]
    for percent in range(60):
        client.chat_update(channel="C1", ts=ts, text=f"{percent}%")
    assert double.rate_limited == 0
