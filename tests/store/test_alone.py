"""On SQLite one bot runs: a second process on the same database refuses to start, in one
line, and the lock goes with the process that held it (kill -9 included)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import until
from bot.store.alone import AlreadyRunning, alone
from tests.support.pool import Pool
from tests.support.processes import bot_env, healthy


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    first = alone(url)
    assert first is not None
    first.hold()
    second = alone(url)
    assert second is not None
    with pytest.raises(AlreadyRunning, match=r"another migrate-bot \(pid \d+\) runs on this"):
        second.hold()
    first.release()
    second.hold().release()


def test_postgresql_and_memory_need_no_lock() -> None:
    assert alone("postgresql+psycopg://bot@db/bot") is None
    assert alone("sqlite://") is None and alone("sqlite:///:memory:") is None


def test_a_second_bot_process_on_one_sqlite_file_stops_with_one_line(
    pool: Pool, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'bot.db'}"
    with SlackDouble(users={}, usergroups={}, channels={"C1": "ops"}) as slack:
        first_env = bot_env(pool.server.url, slack, "s", db, BOT_APPROVERS="ULEAD")
        first = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=first_env)
        try:
            until(lambda: healthy(int(first_env["BOT_HTTP_PORT"])), "the first bot to serve")
            second_env = bot_env(pool.server.url, slack, "s", db, BOT_APPROVERS="ULEAD")
            second = subprocess.run(
                [sys.executable, "-m", "bot", "run"],
                env=second_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 2
            (line,) = second.stderr.strip().splitlines()
            assert line.startswith(f"migrate-bot: another migrate-bot (pid {first.pid}) runs")
            assert "BOT_DATABASE_URL=postgresql+psycopg://" in line
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        # killed, it holds nothing: a new bot starts on the same file
        third_env = bot_env(pool.server.url, slack, "s", db, BOT_APPROVERS="ULEAD")
        third = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=third_env)
        try:
            until(lambda: healthy(int(third_env["BOT_HTTP_PORT"])), "a bot after the crash")
        finally:
            third.terminate()
            third.wait(10)
