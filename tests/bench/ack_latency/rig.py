"""The demo pool with 20 ms added to every XAPI call, and the whole bot serving HTTP on it:
the pool in its own process (as a real pool is) or in the bot's."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from bot.clock import SystemClock
from bot.slack.outbox import Outbox
from bot.slackdouble.driver import Driver
from bot.wiring import start
from tests.bench.ack_latency.load import post_within
from tests.support.pool import demo_pool
from tests.support.slack_rig import CHANNEL, SECRET, Bot, serving, settings_for, slack_double

LATENCY_S = 0.020  # real seconds added to every XAPI call


@dataclass
class Rig:
    bot: Bot
    pool_url: str
    xapi_calls: Callable[[], int]  # served by the pool so far
    where: str


@contextlib.contextmanager
def inline(tmp_path: Path) -> Iterator[Rig]:
    """`tests.support.slack_rig.serving` as the tests use it: the pool in the bot's own process."""
    with contextlib.contextmanager(demo_pool)() as pool:
        pool.sim.faults.latency_s = LATENCY_S
        with serving(pool, tmp_path) as bot:
            yield Rig(bot, pool.server.url, lambda: pool.sim.calls.total, "in the bot's process")


@contextlib.contextmanager
def own_process(tmp_path: Path) -> Iterator[Rig]:
    """The demo pool served by `python -m bot simulator` in its own process (real time), and
    the bot started as `tests.support.slack_rig.running_bot` does, on the system clock.

    A real bot does not share its interpreter with the pool it manages: in one process the
    simulator's XML-RPC parsing and ticking take the GIL from the bot's HTTP threads.
    """
    command = [sys.executable, "-m", "bot", "simulator", "--scenario", "demo", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        _control(url, {"fault": "latency", "seconds": LATENCY_S})
        with slack_double() as slack:
            settings = settings_for(url, slack, tmp_path / "bot.db")
            target: Any = SimpleNamespace(server=SimpleNamespace(url=url))  # no Pool object here
            service = start(settings, "127.0.0.1", SystemClock(), Outbox(0.2, retry_seconds=0.1))
            try:
                events = f"{service.web.url}/slack/events"
                bot = Bot(target, slack, service, Driver(slack, events, SECRET, CHANNEL))
                yield Rig(bot, url, lambda: _calls(url), "in its own process")
            finally:
                service.stop()
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _control(url: str, fault: dict[str, Any]) -> None:
    headers = {"Content-Type": "application/json"}
    status = post_within(f"{url}/control", json.dumps(fault).encode(), headers, 10)
    assert status == 200, status


def _calls(url: str) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request("GET", "/control/calls")
        return int(json.loads(connection.getresponse().read())["total"])
    finally:
        connection.close()
