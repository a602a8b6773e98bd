"""`make test`'s share of `make fuzz`: a short campaign, and proof that its judge can fail.

Each planted fault (a signature check that lets everything in, a listener that raises, an
options answer over Slack's limit) must show up in the report; a judge that cannot fail
would make the campaign's "0 failures" worthless.
"""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.slack import blocks
from bot.slack.desk import Desk
from tests.fuzz.campaign import run

SEED = 20260518


def test_a_short_campaign_finds_nothing() -> None:
    report = run(2_000, 100, SEED)
    assert report.failures == [], "\n".join(report.lines())
    assert report.payloads == 2_000
    assert report.sent["rejected"] == 100
    assert report.over_socket > 0


def test_a_forged_request_let_in_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SignatureVerifier, "is_valid", lambda *_args, **_kw: True)
    report = run(100, 60, SEED)
    assert any("spoiled request answered 200" in f for f in report.failures), report.lines()


def test_an_exception_in_a_listener_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any) -> list[tuple[str, str]]:
        raise RuntimeError("planted")

    monkeypatch.setattr(Desk, "suggest", broken)
    report = run(300, 0, SEED)
    assert any("planted" in f for f in report.failures), report.lines()


def test_an_answer_slack_would_refuse_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def too_many(_items: list[tuple[str, str]]) -> dict[str, Any]:
        return {"options": [{"text": {"type": "plain_text", "text": "x"}, "value": "v"}] * 101}

    monkeypatch.setattr(blocks, "options", too_many)
    report = run(300, 0, SEED)
    assert any("less than 101 items" in f for f in report.failures), report.lines()
