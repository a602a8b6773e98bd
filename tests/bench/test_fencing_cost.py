"""The cost of fencing: the leader asks its lock session before every XAPI step (one round
trip on a dedicated PostgreSQL connection). Printed beside a step's own XAPI calls."""

from __future__ import annotations

import statistics
import time

from bot.store.leader import Leadership

CHECKS = 2000
BUDGET_MS = 5.0  # a step waits on xapi for seconds; a check must stay a rounding error


def test_a_fencing_check_costs_a_fraction_of_a_millisecond(postgres_url: str) -> None:
    leadership = Leadership(postgres_url, "bench")
    try:
        assert leadership.acquire()
        took = []
        for _ in range(CHECKS):
            start = time.perf_counter()
            assert leadership.holds()
            took.append((time.perf_counter() - start) * 1000)
    finally:
        leadership.release()
    took.sort()
    median, p99 = statistics.median(took), took[int(len(took) * 0.99)]
    print(
        f"\nfencing check (SELECT 1 on the lock's session), {CHECKS} checks on a local "
        f"PostgreSQL: median {median:.3f} ms, p99 {p99:.3f} ms, max {took[-1]:.3f} ms"
    )
    assert p99 < BUDGET_MS
