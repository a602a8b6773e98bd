"""Requests filed together share one read of the pool; a later one reads afresh."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.planning.planner import SharedRead
from bot.slackdouble.driver import until


def test_callers_during_a_read_share_it_and_a_later_caller_reads_again() -> None:
    started, release, reads = threading.Event(), threading.Event(), []

    def read(_: object) -> int:
        reads.append(1)
        started.set()
        release.wait(5)
        return len(reads)

    shared = SharedRead(read)
    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(shared, None)
        started.wait(5)
        others = [pool.submit(shared, None) for _ in range(4)]
        until(lambda: all(f.running() for f in others), "the others to ask")
        time.sleep(0.05)  # from running to waiting on the read under way: a few bytecodes
        release.set()
        assert [f.result(5) for f in (first, *others)] == [1] * 5
    assert shared(None) == 2  # nothing is kept once a read ended


def test_a_failed_read_fails_everyone_who_waited_for_it() -> None:
    started, release = threading.Event(), threading.Event()

    def read(_: object) -> int:
        started.set()
        release.wait(5)
        raise OSError("pool master silent")

    shared = SharedRead(read)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(shared, None)
        started.wait(5)
        second = pool.submit(shared, None)
        release.set()
        for future in (first, second):
            with pytest.raises(OSError, match="silent"):
                future.result(5)
