"""Injected faults, and how slack_sdk's own retry handlers meet them."""

from __future__ import annotations

from http.client import RemoteDisconnected

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from bot.slackdouble import SlackDouble

QUICK = FixedValueRetryIntervalCalculator(0.01)


def test_fail_next_429_carries_retry_after(client: WebClient, double: SlackDouble) -> None:
    """Without a retry handler the client raises, with Slack's 429 body and Retry-After."""
    double.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="hi")
    response = raised.value.response
    assert (response.status_code, response["error"]) == (429, "ratelimited")
    assert response.headers["Retry-After"] == "7"
    assert double.messages("C1") == []
    assert [c.status for c in double.calls_to("chat.postMessage")] == [429]


def test_fail_next_in_a_channel_meets_only_that_channel(
    client: WebClient, double: SlackDouble
) -> None:
    """Slack limits posts per channel: a channel's 429 leaves the other channels alone."""
    double.fail_next("chat.postMessage", status=429, retry_after=30, channel="C1")
    assert client.chat_postMessage(channel="C2", text="infra")["ok"]
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="ops")
    assert raised.value.response.headers["Retry-After"] == "30"
    assert client.chat_postMessage(channel="C1", text="ops")["ok"]
    assert [c.status for c in double.calls_to("chat.postMessage")] == [200, 429, 200]


def test_rate_limit_retry_handler_recovers(double: SlackDouble) -> None:
    """RateLimitErrorRetryHandler waits Retry-After (0 here: it sleeps for real) and retries."""
    client = WebClient(
        token="xoxb-test", base_url=double.api_url, retry_handlers=[RateLimitErrorRetryHandler()]
    )
    double.fail_next("chat.update", status=429, retry_after=0)
    ts = client.chat_postMessage(channel="C1", text="0%")["ts"]
    assert client.chat_update(channel="C1", ts=ts, text="50%")["ok"]
    assert [c.status for c in double.calls_to("chat.update")] == [429, 200]
    assert double.rate_limited == 0  # injected, not enforced


@pytest.mark.parametrize(
    ("status", "error"), [(500, "internal_error"), (503, "service_unavailable")]
)
def test_server_error_retry_handler_recovers(double: SlackDouble, status: int, error: str) -> None:
    """ServerErrorRetryHandler retries 500 and 503; without it the client sees Slack's error."""
    plain = WebClient(token="xoxb-test", base_url=double.api_url)
    double.fail_next("users.info", status=status)
    with pytest.raises(SlackApiError) as raised:
        plain.users_info(user="U1")
    assert raised.value.response["error"] == error
    retrying = WebClient(
        token="xoxb-test",
        base_url=double.api_url,
        retry_handlers=[ServerErrorRetryHandler(max_retry_count=2, interval_calculator=QUICK)],
    )
    double.fail_next("users.info", status=status, times=2)
    assert retrying.users_info(user="U1")["user"]["id"] == "U1"
    assert [c.status for c in double.calls_to("users.info")] == [status, status, status, 200]


def test_dropped_connection_is_retried_by_the_connection_handler(double: SlackDouble) -> None:
    """A drop is retried by ConnectionErrorRetryHandler; two in a row raise RemoteDisconnected."""
    client = WebClient(
        token="xoxb-test",
        base_url=double.api_url,
        retry_handlers=[ConnectionErrorRetryHandler(interval_calculator=QUICK)],
    )
    double.drop_next("chat.postMessage")
    assert client.chat_postMessage(channel="C1", text="through")["ok"]
    double.drop_next("chat.postMessage", times=2)
    with pytest.raises(RemoteDisconnected):
        client.chat_postMessage(channel="C1", text="lost")
    assert [c.status for c in double.calls_to("chat.postMessage")] == [0, 200, 0, 0]
    assert [m.text for m in double.messages("C1")] == ["through"]


def test_fail_next_refuses_statuses_slack_does_not_send(double: SlackDouble) -> None:
    """Only 429, 500 and 503 can be injected."""
    with pytest.raises(ValueError, match="429, 500, 503"):
        double.fail_next("chat.update", status=418)
