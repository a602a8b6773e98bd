"""response_url: JSON posts recorded, at most 5 uses within 30 minutes, over plain urllib."""

from __future__ import annotations

import json
from typing import Any

from bot.clock import ManualClock
from bot.slackdouble import SlackDouble, post

JSON_HEADERS = {"Content-Type": "application/json"}


def respond(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, answer = post(url, json.dumps(body).encode(), JSON_HEADERS)
    return status, json.loads(answer)


def test_five_uses_then_used_url(double: SlackDouble) -> None:
    """Five posts are recorded in order; the sixth gets 404 used_url and is not."""
    url = double.response_url("cmd-1")
    for n in range(1, 6):
        assert respond(url, {"text": f"step {n}", "response_type": "ephemeral"}) == (
            200,
            {"ok": True},
        )
    assert respond(url, {"text": "step 6"}) == (404, {"ok": False, "error": "used_url"})
    assert [(r.key, r.use, r.body["text"]) for r in double.responses] == [
        ("cmd-1", n, f"step {n}") for n in range(1, 6)
    ]
    statuses = [c.status for c in double.calls_to("response_url")]
    assert statuses == [200] * 5 + [404]
    assert double.calls_to("response_url")[-1].args == {"key": "cmd-1", "text": "step 6"}


def test_each_key_counts_on_its_own(double: SlackDouble) -> None:
    """Using one response_url up does not touch another."""
    first, second = double.response_url("a"), double.response_url("b")
    for _ in range(5):
        respond(first, {"text": "a"})
    assert respond(second, {"text": "b", "replace_original": True})[0] == 200
    assert double.responses[-1].body == {"text": "b", "replace_original": True}


def test_expires_after_thirty_minutes(double: SlackDouble, clock: ManualClock) -> None:
    """Past 30 minutes from issue the URL answers 404 expired_url."""
    url = double.response_url("slow")
    clock.advance(30 * 60 + 1)
    assert respond(url, {"text": "too late"}) == (404, {"ok": False, "error": "expired_url"})
    assert double.responses == []


def test_unknown_key_and_bad_json(double: SlackDouble) -> None:
    """A URL never issued is 404 no_service; a body that is not a JSON object is 400."""
    url = double.response_url("k")
    assert respond(url.replace("/k", "/nope"), {"text": "x"})[0] == 404
    status, _, answer = post(url, b"text=not-json", JSON_HEADERS)
    assert (status, json.loads(answer)["error"]) == (400, "invalid_payload")


def test_faults_apply_to_response_url(double: SlackDouble) -> None:
    """fail_next("response_url") answers the next post with the injected status."""
    url = double.response_url("k")
    double.fail_next("response_url", status=503)
    assert respond(url, {"text": "x"}) == (503, {"ok": False, "error": "service_unavailable"})
    assert respond(url, {"text": "x"})[0] == 200
