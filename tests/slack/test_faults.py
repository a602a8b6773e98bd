"""Slack failing never fails a migration, and never loses its outcome."""

from __future__ import annotations

from pathlib import Path

from bot.states import State
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, filed, serving, slack_double


def test_429_5xx_and_dropped_connections_are_retried(pool: Pool, tmp_path: Path) -> None:
    """Every kind of Slack trouble on the calls of a run: it all arrives, the run succeeds."""
    with serving(pool, tmp_path) as bot:
        rid = filed(bot, "vm02 to host3")
        bot.slack.fail_next("chat.postMessage", status=500, times=2)
        bot.slack.fail_next("chat.update", status=503)
        bot.slack.fail_next("chat.update", status=429, retry_after=0)
        bot.slack.drop_next("chat.postMessage")
        bot.press("approve", rid, "ULEAD")
        assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
        outcome = bot.until(lambda: [m for m in bot.thread(rid) if m.reply_broadcast])
        assert "vm02 is running on host3" in outcome[0].text
        assert bot.service.front.outbox.flush(30)
        statuses = {c.status for c in bot.slack.calls}
        assert {500, 503, 429, 0} <= statuses  # 0: the dropped connection


def test_an_outcome_slack_refused_is_posted_by_the_next_start(pool: Pool, tmp_path: Path) -> None:
    """Slack down when the run ends and the bot stops: the next start tells the thread."""
    with slack_double() as slack:
        with serving(pool, tmp_path, slack) as bot:
            rid = filed(bot, "vm02 to host3")
            thread_ts = bot.request(rid).thread_ts or ""
            slack.fail_next("chat.postMessage", status=500, times=10_000)
            bot.press("approve", rid, "ULEAD")
            assert bot.state(rid, State.SUCCEEDED).announced is None
        assert not [m for m in slack.replies(CHANNEL, thread_ts) if m.reply_broadcast]
        slack.clear_faults()
        with serving(pool, tmp_path, slack) as bot:  # same database, Slack is back
            told = bot.until(lambda: [m for m in bot.thread(rid) if m.reply_broadcast])
            assert "vm02 is running on host3" in told[0].text
            assert bot.until(lambda: bot.request(rid).announced == State.SUCCEEDED)


def test_a_request_message_edit_lost_at_a_stop_is_made_by_the_next_start(
    pool: Pool, tmp_path: Path
) -> None:
    """Slack refuses edits while the run ends and the bot stops: the request message still
    says "running"; the next start brings it to "succeeded"."""
    with slack_double() as slack:
        with serving(pool, tmp_path, slack) as bot:
            rid = filed(bot, "vm02 to host3")
            slack.fail_next("chat.update", status=500, times=10_000)
            bot.press("approve", rid, "ULEAD")
            assert bot.state(rid, State.SUCCEEDED).state == State.SUCCEEDED
            assert bot.until(lambda: [m for m in bot.thread(rid) if m.reply_broadcast])
            stale = bot.request(rid)
        assert stale.shown_revision is not None and stale.shown_revision < stale.revision
        assert "succeeded" not in slack.message(CHANNEL, stale.message_ts or "").text
        slack.clear_faults()
        with serving(pool, tmp_path, slack) as bot:  # same database, Slack is back
            assert bot.until(lambda: "succeeded" in bot.text_of(rid))
            assert bot.until(lambda: bot.request(rid).shown_revision == stale.revision)
