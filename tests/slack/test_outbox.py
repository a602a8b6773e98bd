"""The Slack queue: outcomes first, progress coalesced and spaced, failures retried."""

from __future__ import annotations

import threading

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.slack.outbox import BOARD, OUTCOME, PROGRESS, STEP, Outbox
from bot.slackdouble.driver import until


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def slack_error(status: int, error: str, headers: dict[str, str] | None = None) -> SlackApiError:
    """What slack_sdk raises when Slack answers `status` with `error`."""
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="",
        req_args={},
        status_code=status,
        headers=headers or {},
        data={"ok": False, "error": error},
    )
    return SlackApiError(error, response)


def test_priorities_and_coalescing() -> None:
    """Queued together, the outcome goes first and five progress edits become one."""
    sent: list[str] = []
    gate = threading.Event()
    outbox = Outbox(min_interval=3.0, monotonic=FakeTime())
    outbox.put(STEP, gate.wait)  # holds the worker while the rest is queued
    outbox.start()
    for percent in range(5):
        outbox.put(PROGRESS, lambda p=percent: sent.append(f"progress {p}"), key="step:1")
    outbox.put(STEP, lambda: sent.append("step"))
    outbox.put(OUTCOME, lambda: sent.append("outcome"))
    gate.set()
    assert outbox.flush(5)
    assert sent == ["outcome", "step", "progress 4"]
    outbox.stop()


def test_keyed_edits_are_spaced_but_a_final_edit_is_not() -> None:
    """A second progress edit waits min_interval; the step's final edit goes at once."""
    clock, sent = FakeTime(), []
    outbox = Outbox(min_interval=3.0, monotonic=clock).start()
    outbox.put(PROGRESS, lambda: sent.append("10%"), key="step:1")
    assert outbox.flush(5) and sent == ["10%"]
    outbox.put(PROGRESS, lambda: sent.append("20%"), key="step:1")
    assert not outbox.flush(0.3) and sent == ["10%"]  # spaced: not yet
    outbox.put(STEP, lambda: sent.append("done"), key="step:1")  # replaces it, goes now
    assert outbox.flush(5) and sent == ["10%", "done"]
    outbox.stop()


def test_a_failing_call_is_retried_and_a_permanent_refusal_is_not() -> None:
    """Connection trouble is retried with back-off; Slack's "channel_not_found" is final."""
    clock, tries = FakeTime(), {"flaky": 0, "refused": 0}

    def flaky() -> None:
        tries["flaky"] += 1
        if tries["flaky"] < 3:
            raise ConnectionError("reset")

    def refused() -> None:
        tries["refused"] += 1
        raise slack_error(200, "channel_not_found")

    outbox = Outbox(retry_seconds=1.0, monotonic=clock).start()
    outbox.put(OUTCOME, flaky)
    outbox.put(OUTCOME, refused)
    for _ in range(200):
        clock.now += 1.0
        if tries["flaky"] == 3:
            break
        threading.Event().wait(0.01)
    assert outbox.flush(5)
    assert tries == {"flaky": 3, "refused": 1}
    outbox.stop()


def test_delay_counts_the_news_queued_ahead_in_a_lane() -> None:
    """A channel's posts: two go at once (the burst), then one each 1/0.9 s."""
    outbox = Outbox(monotonic=FakeTime())  # not started: what is queued stays queued
    assert outbox.delay("post:C1") == 0.0
    for _ in range(4):
        outbox.put(STEP, lambda: None, lane="post:C1")
    outbox.put(PROGRESS, lambda: None, key="step:1", lane="post:C1")  # not news: not counted
    assert outbox.delay("post:C1") == pytest.approx(3 / 0.9)  # 5th news: 3 tokens short
    assert outbox.delay("post:C2") == 0.0  # another channel's budget is its own
    outbox.charge("post:C2")
    outbox.charge("post:C2")  # two posts made outside the queue spend the burst too
    assert outbox.delay("post:C2") == pytest.approx(1 / 0.9)


def test_only_the_first_rank_spends_the_last_call_of_a_budget() -> None:
    """Step changes and progress leave one call of a budget unspent; a board (or an
    outcome) takes it, so news of the first rank does not wait behind them."""
    clock, sent = FakeTime(), []
    outbox = Outbox(monotonic=clock).start()
    for n in range(4):  # the workspace's burst is 4 edits: three step changes go
        outbox.put(STEP, lambda n=n: sent.append(f"step {n}"), lane="update")
    outbox.put(PROGRESS, lambda: sent.append("progress"), key="step:1", lane="update")
    assert not outbox.flush(0.3) and sent == ["step 0", "step 1", "step 2"]
    outbox.put(BOARD, lambda: sent.append("board"), key="board:C1", lane="update")
    assert not outbox.flush(0.3) and sent[-1] == "board"  # the last call was kept for it
    clock.now += 3 / (45 / 60)  # three edits' worth of refill: the rest may go, in order
    assert outbox.flush(5) and sent[-2:] == ["step 3", "progress"]
    outbox.stop()


def test_a_rate_limited_message_keeps_its_place_in_its_lane() -> None:
    """A step message refused with 429 goes first when its channel's Retry-After is over,
    as its newest version, ahead of the thread line queued after it."""
    clock, sent, picked, gate = FakeTime(), [], threading.Event(), threading.Event()

    def limited() -> None:
        picked.set()
        gate.wait()
        raise slack_error(429, "ratelimited", {"Retry-After": "30"})

    outbox = Outbox(monotonic=clock).start()
    outbox.put(STEP, limited, key="step:1", lane="post:C1")
    assert picked.wait(5)
    outbox.put(STEP, lambda: sent.append("note"), lane="post:C1")
    outbox.put(PROGRESS, lambda: sent.append("step at 20%"), key="step:1", lane="post:C1")
    gate.set()
    until(lambda: outbox.delay("post:C1") >= 30, timeout=5)  # held, a board would open
    clock.now += 30
    until(lambda: sent, timeout=5)
    clock.now += 30  # the channel's budget for the next post
    assert outbox.flush(5)
    assert sent == ["step at 20%", "note"]
    outbox.stop()
