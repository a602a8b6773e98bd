"""The pool's lock on PostgreSQL: one holder per pool, a dead session drops it, and the
holder's check (fencing) sees the loss at once."""

from __future__ import annotations

import sqlalchemy as sa

from bot.store.leader import Leadership, lock_key


def test_one_holder_per_pool_and_the_lock_goes_with_its_session(postgres_url: str) -> None:
    first, second = Leadership(postgres_url, "pool-a"), Leadership(postgres_url, "pool-a")
    other = Leadership(postgres_url, "pool-b")
    try:
        assert first.acquire() and first.held and first.holds()
        assert not second.acquire() and not second.held
        assert other.acquire()  # each pool has its own leader
        # The leader's session dies (its process, or its network): PostgreSQL drops the
        # lock; the old holder's check says so, and another replica takes the pool.
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND objid = :low AND granted"
                ),
                {"low": lock_key("pool-a") & 0xFFFFFFFF},
            ).all()
        engine.dispose()
        assert killed == [(True,)]
        assert not first.holds() and not first.held
        assert second.acquire()
        first.release()
        assert not first.acquire()  # the pool is second's now
    finally:
        for leadership in (first, second, other):
            leadership.release()


def test_a_clean_release_hands_the_pool_over(postgres_url: str) -> None:
    first, second = Leadership(postgres_url, "pool"), Leadership(postgres_url, "pool")
    try:
        assert first.acquire()
        first.release()
        assert second.acquire()
    finally:
        first.release()
        second.release()


def test_a_process_that_lost_the_lock_never_takes_it_again(postgres_url: str) -> None:
    """Its runs may still be winding down: leading again from the same process would let
    them issue steps beside the new leader's."""
    leadership = Leadership(postgres_url, "pool")
    try:
        assert leadership.acquire()
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            )
        engine.dispose()
        assert not leadership.holds() and leadership.lost
        assert not leadership.acquire()  # the lock is free, and still not taken
    finally:
        leadership.release()
