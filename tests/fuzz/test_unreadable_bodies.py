"""Found by the campaign: bolt parses a body before it checks Slack's signature, so an
interaction payload cut short, or a body that is not UTF-8, raised inside bolt (a 500 and
a traceback in the log). They are refused with a 400 now, and nothing is done."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slackdouble import block_actions, payload_body, signed_headers
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, SECRET, Bot, running_bot


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def _press() -> bytes:
    payload = block_actions(
        user_id="ULEAD",
        channel_id=CHANNEL,
        message_ts="1.000001",
        action_id="approve",
        response_url="http://127.0.0.1:9/none",
        value="1:0",
    )
    return payload_body(payload)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda body: body[: len(body) // 2], id="payload cut short"),
        pytest.param(lambda body: b"\xff\xfe" + body, id="not UTF-8"),
        pytest.param(lambda body: b"payload=%7B%22type", id="a few bytes of JSON"),
    ],
)
def test_a_body_bolt_cannot_read_is_refused_not_a_500(
    bot: Bot, spoil: object, caplog: pytest.LogCaptureFixture
) -> None:
    body = _press()
    with caplog.at_level(logging.ERROR):
        status, _ = bot.send(spoil(body), signed_headers(SECRET, body))  # type: ignore[operator]
    assert status == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bot.core.store.audit_events() == []


def test_a_readable_body_still_reaches_bolt(bot: Bot) -> None:
    """The body read ahead is handed on whole: bolt still verifies and routes it."""
    body = _press()
    assert bot.send(body, signed_headers(SECRET, body))[0] == 200
    assert bot.send(body, signed_headers("wrong", body))[0] == 401
