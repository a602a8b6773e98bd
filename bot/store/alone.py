"""On SQLite the bot runs alone: the process that runs migrations holds an exclusive lock
on `<database>.lock` for as long as it runs, and a second one refuses to start with a
clear message instead of racing it (two tickers, two runners, a step issued twice).

Replicas share a PostgreSQL database instead, where this lock does not apply. The lock
is `flock(2)`: the kernel drops it when the process dies, kill -9 included, so a crash
never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import sqlalchemy as sa

from bot.settings import SettingsError


class AlreadyRunning(SettingsError):
    """Another process runs the bot on this SQLite database."""


class Alone:
    """The lock, held from `hold()` until `release()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def hold(self) -> Alone:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"another migrate-bot (pid {holder}) runs on this SQLite database "
                f"({self.path.with_suffix('')}); on SQLite only one may: stop it, or give "
                "both BOT_DATABASE_URL=postgresql+psycopg://… to run replicas"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def alone(url: str) -> Alone | None:
    """The lock for a SQLite file database (None for PostgreSQL or an in-memory one)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Alone(Path(f"{parsed.database}.lock"))
