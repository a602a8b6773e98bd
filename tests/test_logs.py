"""Log lines: request ids on every line about a request, JSON on demand, secrets never."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bot import logs
from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import Driver
from tests.support.pool import Pool, Ticker
from tests.support.processes import bot_env, healthy
from tests.support.slack_rig import CHANNEL, GROUPS, SECRET, USERS, until

TOKEN = "xoxb-very-secret-token"
DB_URL = "postgresql+psycopg://bot:p%40ss%2Fw0rd@db.example.com/migrate_bot"  # p@ss/w0rd


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("json", "INFO", [TOKEN, "hunter22", *logs.url_secrets(DB_URL)], stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_request_id(captured: io.StringIO) -> None:
    """Inside `about(42)` every line names request 42, whichever logger wrote it."""
    with logs.about(42):
        logging.getLogger("bot.xen.watch").warning("event watcher reconnecting")
    logging.getLogger("bot").info("not about a request")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["request_id"] == 42 and first["level"] == "WARNING"
    assert second["request_id"] is None


def test_secrets_are_redacted_in_messages_and_tracebacks(captured: io.StringIO) -> None:
    """A token in a message or a password in an exception comes out as ***."""
    logging.getLogger("slack_sdk").info("calling with token %s", TOKEN)
    try:
        raise RuntimeError("login failed for root/hunter22")
    except RuntimeError:
        logging.getLogger("bot").exception("boom")
    text = captured.getvalue()
    assert TOKEN not in text and "hunter22" not in text
    assert "token ***" in text and "root/***" in text


def test_a_database_password_is_shown_as_stars_and_redacted(captured: io.StringIO) -> None:
    """A database URL prints with *** for its password; logged, the password is redacted
    both as the URL writes it and decoded (as a driver's error would show it)."""
    assert logs.shown_url(DB_URL) == "postgresql+psycopg://bot:***@db.example.com/migrate_bot"
    logging.getLogger("sqlalchemy").warning("connecting to %s", DB_URL)
    logging.getLogger("bot").error("password p@ss/w0rd refused")
    text = captured.getvalue()
    assert "p%40ss%2Fw0rd" not in text and "p@ss/w0rd" not in text
    assert "bot:***@db.example.com" in text and "password *** refused" in text


def test_migrate_bot_run_serves_logs_and_stops_on_sigterm(pool: Pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The real `migrate-bot run` process: a request end to end, JSON logs, clean SIGTERM."""
    with SlackDouble(
        token=TOKEN, users=USERS, usergroups=GROUPS, channels={CHANNEL: "ops"}
    ) as slack:
        db = f"sqlite:///{tmp_path}/bot.db"
        env = bot_env(
            pool.server.url, slack, SECRET, db, BOT_APPROVERS="ULEAD,S1", BOT_LOG_FORMAT="json"
        )
        port = int(env["BOT_HTTP_PORT"])
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            with Ticker(pool.clock, step=0.5):
                people = Driver(slack, f"http://127.0.0.1:{port}/slack/events", SECRET, CHANNEL)
                until(lambda: healthy(port))
                people.command("vm02 to host3", "U1")
                posted = until(lambda: slack.messages(CHANNEL))
                people.press(posted[0], "approve", "ULEAD")
                until(lambda: any(m.reply_broadcast for m in slack.replies(CHANNEL, posted[0].ts)))
        finally:
            bot.send_signal(signal.SIGTERM)
            _, err = bot.communicate(timeout=60)
    assert bot.returncode == 0, err[-2000:]
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(err.splitlines()), err[-2000:]
    about_one = [line for line in lines if line["request_id"] == 1]
    assert any("succeeded" in line["message"] for line in about_one)
    assert TOKEN not in err and SECRET not in err and 'secret"' not in err
