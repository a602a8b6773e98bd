"""Replicas on PostgreSQL: which one runs the pool.

Any number of `migrate-bot run` processes may share one PostgreSQL database; they all
answer Slack and write requests and presses to it. One of them, the holder of a
session-level `pg_try_advisory_lock` on a connection of its own, runs the pool: the
ticker, the event watcher and the migrations. PostgreSQL drops the lock when that
session ends: the process died (its socket closes at once), or its network to the
database is gone (TCP keepalives, asked for on this connection, notice within about ten
seconds). A follower asks for the lock every couple of seconds and takes over.

Fencing: the holder checks its session is alive before every XAPI step (`holds()`, one
round trip on the dedicated connection, bounded by a short timeout); a holder that cannot
tell stops issuing steps at once, and the next holder re-attaches to the tasks exactly as
a restarted bot does. The lock key is derived from the pool's name, so each pool has its
own leader.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

CHECK_TIMEOUT_MS = 2000  # a holder that cannot reach its session within this stops
# The server notices a silent client after idle + interval x count seconds.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2}
SERVER_KEEPALIVES = (
    "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
)


def lock_key(pool: str) -> int:
    """A stable signed 64-bit key for the pool's advisory lock."""
    digest = hashlib.sha256(f"migrate-bot:{pool}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def is_shared(url: str) -> bool:
    """Is this a database replicas can share (PostgreSQL)?"""
    return sa.make_url(url).get_backend_name() == "postgresql"


class Leadership:
    """The advisory lock of one pool, on a connection nothing else uses."""

    def __init__(self, url: str, pool: str) -> None:
        self.key = lock_key(pool)
        self.pool = pool
        connect_args: dict[str, Any] = {**KEEPALIVES, "options": SERVER_KEEPALIVES}
        self._engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
        self._conn: sa.Connection | None = None
        self._lock = threading.Lock()
        self.lost = False  # held once, then lost: this process never leads again

    @property
    def held(self) -> bool:
        """What this process last knew (no round trip)."""
        return self._conn is not None

    def acquire(self) -> bool:
        """Try for the lock once; True when this process holds it (now or already). A
        process that lost it does not take it again: its runs may still be winding down."""
        with self._lock:
            if self._conn is not None:
                return True
            if self.lost:
                return False
            try:
                conn = self._engine.connect()
                conn.exec_driver_sql(f"SET statement_timeout = {CHECK_TIMEOUT_MS}")
                got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar()
                conn.commit()  # session-level: the lock outlives the transaction
            except SQLAlchemyError as error:
                log.warning("asking for the leadership of %s failed: %s", self.pool, error)
                return False
            if not got:
                conn.close()
                return False
            self._conn = conn
            log.info("this replica now runs pool %s", self.pool)
            return True

    def holds(self) -> bool:
        """Fencing: is the session that holds the lock still alive? One round trip."""
        with self._lock:
            if self._conn is None:
                return False
            try:
                self._conn.exec_driver_sql("SELECT 1").scalar()
                self._conn.commit()
                return True
            except SQLAlchemyError as error:
                log.error("lost the leadership of %s: %s", self.pool, error)
                self.lost = True
                self._drop()
                return False

    def release(self) -> None:
        """Let go (at a clean stop): closing the session drops the lock."""
        with self._lock:
            self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):  # a dead session: nothing to close
                self._conn.close()
            self._conn = None
