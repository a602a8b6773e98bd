"""A fresh Slack double per test on a manual clock, and the real WebClient pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.clock import ManualClock
from bot.slackdouble import SlackDouble

USERS = {"U1": "Alice", "U2": "Bob", "U3": "Carol"}
GROUPS = {"S1": ["U2", "U3"]}
CHANNELS = {"C1": "ops", "C2": "infra"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_764_100_000.0)


@pytest.fixture
def double(clock: ManualClock) -> Iterator[SlackDouble]:
    with SlackDouble(users=USERS, usergroups=GROUPS, channels=CHANNELS, clock=clock.now) as d:
        yield d


@pytest.fixture
def client(double: SlackDouble) -> WebClient:
    return WebClient(token="xoxb-test", base_url=double.api_url)
