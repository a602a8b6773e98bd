"""Shared fixtures: a simulated pool served over XML-RPC, a throwaway PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import postgres
from tests.support.pool import Pool, demo_pool


@pytest.fixture
def pool() -> Iterator[Pool]:
    yield from demo_pool()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One PostgreSQL cluster for the session (about a second to start); skipped, with the
    reason, where it cannot run."""
    why = postgres.missing()
    if why:
        pytest.skip(f"no PostgreSQL: {why}")
    with postgres.cluster() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The session's PostgreSQL, emptied for this test."""
    postgres.wipe(postgres_server)
    return postgres_server
