"""The open-loop load: Poisson arrivals of signed commands and presses, sent from a process
of its own (`python -m tests.bench.ack_latency.load`), told what the channel shows by a
watcher in the bot's process."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import as_shown
from bot.slackdouble.driver import buttons as shown_buttons
from bot.slackdouble.payloads import (
    block_actions,
    form_body,
    payload_body,
    signed_headers,
    slash_command,
)
from tests.bench.ack_latency.measure import DEADLINE_S, Result, Run, ThreadCpu
from tests.support.slack_rig import CHANNEL, SECRET

RATE = float(os.environ.get("BENCH_RATE", "50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
SEED = int(os.environ.get("BENCH_SEED", "1"))
ROOT = Path(__file__).resolve().parents[3]  # the repository: `python -m tests.bench...` runs here

VMS = (
    "vm01",
    "vm02",
    "archive01",
    "bigdb",
    "build01",
    "legacy01",
    "dns01",
    "dns02",
    "mail01",
    "monitor01",
    "ci-runner-1",
    "ci-runner-2",
    "win-rdp01",
    "web",  # two VMs have this name: the desk asks which one
)
HOSTS = ("host1", "host2", "host3")
OPTIONS = ("", "", "", " sr=nfs2", " mode=offline", " dry-run")
TYPOS = ("vm0l to host3", "dsn01 to host1", "mial01 to host2", "vm02 to hots3", "bigbd to host2")
USAGE_ERRORS = ("vm01 host3", "vm01 to", "vm01 to host3 mode=fast", "list all", "to host2")
STATUS = ("status 1", "status #3", "status vm02", "status nosuch", "status 999")
# (kind, weight): commands and presses, about 60:40
MIX = (
    ("migrate", 28),
    ("typo", 8),
    ("usage", 8),
    ("list", 4),
    ("status", 8),
    ("cancel", 4),
    ("press", 40),
)
# (action, weight) a press aims for, and (user, weight) who presses
PRESS_ACTIONS = (("approve", 30), ("recheck", 30), ("cancel", 15), ("reject", 10), ("fix", 15))
PRESSERS = (("ULEAD", 35), ("ULEAD2", 15), ("U1", 25), ("U3", 25))  # approvers, requester, other
REQUESTERS = ("U1", "U1", "U3")


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the start
    kind: str
    text: str  # the command's text, or the action a press aims for
    user: str


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


def plan(rate: float, seconds: float, seed: int) -> list[Planned]:
    """Poisson arrivals at `rate` for `seconds`, each a command or a press."""
    rng = random.Random(seed)
    out, at = [], rng.expovariate(rate)
    while at < seconds:
        kind = _pick(rng, MIX)
        user = rng.choice(REQUESTERS)
        if kind == "migrate":
            text = f"{rng.choice(VMS)} to {rng.choice(HOSTS)}{rng.choice(OPTIONS)}"
        elif kind == "typo":
            text = rng.choice(TYPOS)
        elif kind == "usage":
            text = rng.choice(USAGE_ERRORS)
        elif kind == "status":
            text = rng.choice(STATUS)
        elif kind == "cancel":
            text = f"cancel {rng.randint(1, 12)}"
        elif kind == "list":
            text = "list"
        else:
            text, user = _pick(rng, PRESS_ACTIONS), _pick(rng, PRESSERS)
        out.append(Planned(at, kind, text, user))
        at += rng.expovariate(rate)
    return out


class Watcher:
    """Looks at the channel in the bot's process and tells the load process what it shows.

    The double deep-copies the whole channel (thread replies too) to answer, so one thread
    looks, at most every half second and never more than 5% of the time, and writes the
    request messages that show buttons to the load process as one JSON line.
    """

    def __init__(self, slack: SlackDouble) -> None:
        self.slack = slack
        self.sinks: list[Any] = []  # text streams: the load processes' stdin
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="watcher", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def shown(self) -> list[dict[str, Any]]:
        return [m for m in map(as_shown, self.slack.messages(CHANNEL)) if shown_buttons(m)]

    def tell(self, sink: Any, line: dict[str, Any]) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):  # the load has ended
            sink.write(json.dumps(line) + "\n")
            sink.flush()

    def _watch(self) -> None:
        pause = 0.5
        while not self._stop.wait(pause):
            started = time.perf_counter()
            line = {"shown": self.shown()}
            for sink in list(self.sinks):
                self.tell(sink, line)
            pause = max(0.5, 20 * (time.perf_counter() - started))


class Screens:
    """What people see, in the load process: the request messages, as the watcher says.

    A press is made on a message as shown, on a button it shows; when no message shows the
    wanted action, another button of a shown message; when none shows any, an outdated
    copy of a request message (a stale screen: the bot refuses it as out of date).
    """

    def __init__(self, lines: Any) -> None:
        first = json.loads(lines.readline())
        self.stale: list[dict[str, Any]] = first["stale"]
        self.shown: list[dict[str, Any]] = first["shown"]
        self._lines = lines
        threading.Thread(target=self._listen, name="screens", daemon=True).start()

    def _listen(self) -> None:
        for line in self._lines:
            self.shown = json.loads(line)["shown"]

    def choose(self, want: str, rng: random.Random) -> tuple[dict[str, Any], str]:
        shown = self.shown
        matching = [(m, a) for m in shown for a in shown_buttons(m) if a.startswith(want)]
        if matching:
            return rng.choice(matching)
        if shown:
            message = rng.choice(shown)
            return message, rng.choice(shown_buttons(message))
        message = rng.choice(self.stale)
        return message, shown_buttons(message)[0]


@dataclass
class Generator:
    """The open-loop load, in a process of its own: it does not take the bot's GIL."""

    url: str  # the app's POST /slack/events
    response_base: str  # the double's response URLs: `{base}/{prefix}-{i}`, issued already
    prefix: str
    screens: Screens
    seed: int

    def run(
        self, planned: list[Planned], started: Callable[[], None]
    ) -> tuple[list[Result], float]:
        """Send each request at its time from its own thread; the results and the wall time."""
        workers = int(max(RATE, 1) * DEADLINE_S * 2) + 32  # every request in flight has one
        with ThreadPoolExecutor(workers, thread_name_prefix="load") as pool:
            started()
            start = time.perf_counter() + 0.2
            futures = []
            for i, p in enumerate(planned):
                due = start + p.at
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(self._one, i, p, due))
            results = [f.result() for f in futures]
            return results, time.perf_counter() - start

    def _body(self, i: int, p: Planned) -> bytes:
        response_url = f"{self.response_base}/{self.prefix}-{i}"
        if p.kind != "press":
            fields = slash_command(
                p.text, user_id=p.user, channel_id=CHANNEL, response_url=response_url
            )
            return form_body(fields)
        message, action = self.screens.choose(p.text, random.Random(self.seed * 1_000_003 + i))
        payload = block_actions(
            user_id=p.user,
            channel_id=CHANNEL,
            message_ts=message["ts"],
            action_id=action,
            response_url=response_url,
            message=message,
        )
        return payload_body(payload)

    def _one(self, i: int, p: Planned, due: float) -> Result:
        body = self._body(i, p)
        headers = signed_headers(SECRET, body)
        sent = time.perf_counter()
        try:
            status = post_within(self.url, body, headers, DEADLINE_S)
        except OSError as error:  # timeouts, resets, refused: Slack sees no ack
            spent = time.perf_counter() - sent
            return Result(p.kind, None, spent, sent - due, type(error).__name__, sent)
        return Result(p.kind, status, time.perf_counter() - sent, sent - due, "", sent)


def load_main(url: str, response_base: str, prefix: str, seconds: str) -> int:
    """The load process: the plan's first `seconds`; screens on stdin; results on stdout."""
    planned = [p for p in plan(RATE, SECONDS, SEED) if p.at < float(seconds)]
    generator = Generator(url, response_base, prefix, Screens(sys.stdin), SEED)
    results, wall = generator.run(planned, lambda: print("go", flush=True))
    rows = [[r.kind, r.status, r.seconds, r.lag, r.error, r.sent] for r in results]
    print(json.dumps({"wall": wall, "results": rows}), flush=True)
    return 0


def send_load(
    url: str, watcher: Watcher, stale: list[dict[str, Any]], prefix: str, seconds: float
) -> Run:
    """Run the load process against `url`; what it measured, and the CPU used meanwhile here."""
    count = len([p for p in plan(RATE, SECONDS, SEED) if p.at < seconds])
    keys = [watcher.slack.response_url(f"{prefix}-{i}") for i in range(count)]
    response_base = keys[0].rsplit("/", 1)[0] if keys else ""
    module = "tests.bench.ack_latency.load"
    command = [sys.executable, "-m", module, url, response_base, prefix, str(seconds)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as load:
        assert load.stdin is not None and load.stdout is not None
        watcher.tell(load.stdin, {"stale": stale, "shown": watcher.shown()})
        watcher.sinks.append(load.stdin)
        try:
            assert load.stdout.readline().strip() == "go", "the load process did not start"
            cpu = ThreadCpu()
            answer = json.loads(load.stdout.readline())
            used = cpu.stop()
        finally:
            watcher.sinks.remove(load.stdin)
    assert load.returncode == 0, load.returncode
    results = [Result(*row) for row in answer["results"]]
    return Run(results, answer["wall"], used, cpu.pauses)


def post_within(url: str, body: bytes, headers: dict[str, str], budget: float) -> int:
    """POST and read the answer within `budget` seconds in all (connect, send, wait, read).

    A new connection per request, as Slack makes; urllib's timeout is per socket call, so
    a slow accept plus a slow answer could take twice the budget.
    """
    parts = urlsplit(url)
    start = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=budget)
    try:
        connection.request("POST", parts.path, body, headers)
        left = budget - (time.perf_counter() - start)
        if left <= 0 or connection.sock is None:
            raise TimeoutError("no time left to wait for the answer")
        connection.sock.settimeout(left)
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


if __name__ == "__main__":  # the load process (see `send_load`)
    sys.exit(load_main(*sys.argv[1:]))
