"""Shared fixtures: a simulated pool served over XML-RPC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pool import Pool, demo_pool


@pytest.fixture
def pool() -> Iterator[Pool]:
    yield from demo_pool()
