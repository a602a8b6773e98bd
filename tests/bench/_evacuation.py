"""What the evacuation benchmarks share: a generated pool in its own process, one batch run
through the real bot (a `/migrate` typed, one approval, every move to its end), the
schedule its moves kept, and what the bot asked of Slack.

The rigs are `_fleet`'s: the real XenAPI client over XML-RPC to the simulator, the bot as
`python -m bot run` (HTTP mode, signed Slack requests) against the Slack double, every
clock the wall clock (a simulated second is a real second).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.simulator import SimulatorServer
from bot.simulator.control import control
from bot.slackdouble.blockkit import problems
from bot.slackdouble.driver import buttons
from tests.bench._fleet import (
    APPROVER,
    REQUESTER,
    Recorder,
    bot_process,
    simulator,
    slack_double,
    wait_for,
)
from tests.bench.ack_latency.load import post_within
from tests.support.slack_rig import CHANNEL

LATENCY_S = 0.020  # real seconds added to every XAPI call, as in the other benchmarks
FINISHED = ("succeeded", "failed", "cancelled")


# -- a generated pool, served by `python -m bot simulator` in its own process -----------------
@dataclass
class PoolProcess:
    """A pool as a real one is: another process, so its XML-RPC work takes no GIL of ours."""

    url: str
    process: subprocess.Popen[str]

    def control(self, fault: dict[str, Any]) -> None:
        headers = {"Content-Type": "application/json"}
        body = json.dumps(fault).encode()
        status = post_within(f"{self.url}/control", body, headers, 30)
        assert status == 200, f"control {fault}: HTTP {status}"

    def counts(self) -> Counter[str]:
        """Every call served so far, by method (the simulator's call log)."""
        with urllib.request.urlopen(f"{self.url}/control/calls", timeout=30) as answer:
            return Counter(json.loads(answer.read())["counts"])


@contextlib.contextmanager
def pool_process(scenario: str, latency: float = LATENCY_S) -> Iterator[PoolProcess]:
    """`python -m bot simulator --scenario <scenario>`, `latency` added to every call."""
    command = [sys.executable, "-m", "bot", "simulator", "--scenario", scenario, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http"), f"the simulator did not start: {url!r}"
        out = process.stdout  # its description follows: read it so the pipe never fills
        threading.Thread(target=out.read, daemon=True).start()
        pool = PoolProcess(url, process)
        pool.control({"fault": "latency", "seconds": latency})
        yield pool
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


# -- one batch through the bot ---------------------------------------------------------------
@dataclass
class BatchRun:
    command: str
    slots: int
    batch: dict[str, Any]  # the batch's row (see BATCH)
    children: list[dict[str, Any]]  # each move's row (see CHILD), in id order
    recorder: Recorder  # XAPI calls and tasks, timestamped
    calls: list[Any]  # every Web API call the Slack double saw
    thread: list[Any]  # the batch's thread as Slack had it when the bot stopped
    marks: dict[str, float]  # wall-clock times: typed, posted, approved, ended, told, stopped
    log: str
    extra: dict[str, Any] = field(default_factory=dict)  # what a caller's `after` returned

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.children if c["state"] == "failed"]

    def outcome_told(self) -> bool:
        return any(m.reply_broadcast for m in self.thread)

    def failure_replies(self) -> dict[int, bool]:
        """For each failed move: did a reply of its own (`#<id> ...`) reach the thread?"""
        return {
            c["id"]: any(f"#{c['id']} " in m.text and not m.reply_broadcast for m in self.thread)
            for c in self.failed
        }

    def slack_calls(self, start: str = "typed", end: str = "stopped") -> list[Any]:
        return [c for c in self.calls if self.marks[start] <= c.at <= self.marks[end]]


BATCH = ("id", "state", "started_at", "finished_at", "message_ts", "thread_ts", "outcome")
CHILD = ("id", "vm_name", "state", "started_at", "finished_at", "announced", "outcome")


def run_batch(
    folder: Path,
    data: dict[str, Any],
    command: str,
    slots: int,
    *,
    limits: bool = True,
    latency: float = LATENCY_S,
    faults: tuple[dict[str, Any], ...] = (),
    timeout: float = 1800.0,
    after: Any = None,
) -> BatchRun:
    """Type `/migrate <command>` (a batch), approve its request message once, wait until
    every move ended and Slack was told (the outcome broadcast, each failed move's reply,
    a board showing every end), then `after(bot, slack)` if given, and stop the bot
    (SIGTERM: it flushes its outbox)."""
    sim = simulator(data)
    sim.faults.latency_s = latency
    for fault in faults:
        control(sim, fault)
    recorder = Recorder(sim)
    marks: dict[str, float] = {}
    extra: dict[str, Any] = {}
    try:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(SimulatorServer(sim))
            slack = stack.enter_context(slack_double(enforce_limits=limits))
            with bot_process(
                server.url, slack, folder, BOT_MAX_CONCURRENT_MIGRATIONS=str(slots)
            ) as bot:
                time.sleep(1.0)

                def batch() -> dict[str, Any] | None:
                    rows = bot.rows(f"SELECT {', '.join(BATCH)} FROM requests WHERE kind='batch'")
                    return dict(zip(BATCH, rows[0], strict=True)) if rows else None

                marks["typed"] = time.time()
                bot.driver.command(command, REQUESTER)
                posted = wait_for(lambda: (b := batch()) and b["message_ts"] and b, 300)
                assert posted, f"no request message for {command!r}"
                marks["posted"] = time.time()
                message = slack.message(CHANNEL, posted["message_ts"])
                assert "approve" in buttons(message), f"no approve button: {message.text}"
                bot.driver.press(message, "approve", APPROVER)
                marks["approved"] = time.time()
                ended = wait_for(lambda: (b := batch()) and b["state"] in FINISHED and b, timeout)
                assert ended, f"the batch did not end within {timeout:.0f} s"
                marks["ended"] = time.time()

                def children() -> list[dict[str, Any]]:
                    rows = bot.rows(
                        f"SELECT {', '.join(CHILD)} FROM requests WHERE batch_id={ended['id']} "
                        "ORDER BY id"
                    )
                    return [dict(zip(CHILD, r, strict=True)) for r in rows]

                def told() -> bool:
                    thread = slack.replies(CHANNEL, ended["thread_ts"])
                    kids = children()
                    return (
                        any(m.reply_broadcast for m in thread)
                        and all(c["announced"] == c["state"] for c in kids)
                        and all(
                            any(f"#{c['id']} " in m.text for m in thread)
                            for c in kids
                            if c["state"] == "failed"
                        )
                    )

                wait_for(told, 180)
                marks["told"] = time.time()
                kids = children()
                if after is not None:
                    extra = after(bot, slack) or {}
                marks["stopping"] = time.time()
            marks["stopped"] = time.time()
            thread = slack.replies(CHANNEL, ended["thread_ts"])
            calls = slack.calls
            log = bot.log.read_text(errors="replace")
    finally:
        sim.close()
    return BatchRun(command, slots, ended, kids, recorder, calls, thread, marks, log, extra)


# -- the schedule the moves kept ---------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """The moves' own spans (a child's started_at..finished_at, from the store) against the
    slots, over the batch's run (its started_at..finished_at)."""

    slots: int
    start: float
    end: float
    spans: tuple[tuple[float, float], ...]

    @property
    def total(self) -> float:
        return self.end - self.start

    @property
    def own(self) -> float:
        return sum(f - s for s, f in self.spans)

    @property
    def ideal(self) -> float:
        """Every slot busy from the first second to the last: the moves' time / slots."""
        return self.own / self.slots

    @property
    def ratio(self) -> float:
        return self.total / self.ideal

    def idle_while_waiting(self) -> float:
        """Slot-seconds left idle while a move waited for one (from the run's start to the
        last move's start): what "no idle slot while moves wait" rules out."""
        last_start = max(s for s, _ in self.spans)
        cuts = sorted({self.start, last_start, *(t for span in self.spans for t in span)})
        idle = 0.0
        for a, b in itertools.pairwise(cuts):
            if a >= last_start:
                break
            mid = (a + b) / 2
            running = sum(s <= mid < f for s, f in self.spans)
            waiting = sum(s > mid for s, _ in self.spans)
            idle += max(0, min(self.slots - running, waiting)) * (b - a)
        return idle

    def tail(self) -> float:
        """Slot-seconds idle once nothing waits (the last moves end unevenly)."""
        last_start = max(s for s, _ in self.spans)
        busy = sum(f - max(s, last_start) for s, f in self.spans if f > last_start)
        return self.slots * (self.end - last_start) - busy

    def refills(self) -> list[float]:
        """For each move that ended while others waited: seconds until the next one started."""
        starts = sorted(s for s, _ in self.spans)
        out = []
        for _, f in self.spans:
            later = [s for s in starts if s >= f]
            if later:
                out.append(later[0] - f)
        return out


def schedule(run: BatchRun) -> Schedule:
    spans = tuple(
        (c["started_at"], c["finished_at"])
        for c in run.children
        if c["started_at"] is not None and c["finished_at"] is not None
    )
    return Schedule(run.slots, run.batch["started_at"], run.batch["finished_at"], spans)


# -- what the bot asked of Slack -----------------------------------------------------------------
MESSAGE_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url")


def blocks_of(call: Any) -> list[dict[str, Any]]:
    blocks = call.args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def block_kit_problems(calls: list[Any]) -> list[tuple[str, str]]:
    """(method, problem) for every message the bot sent that breaks a Block Kit limit: 50
    blocks, 3,000 characters a section, and the rest `bot.slackdouble.blockkit` knows."""
    found = []
    for call in calls:
        if call.method in MESSAGE_METHODS and call.args.get("blocks"):
            found += [(call.method, p) for p in problems(blocks_of(call), 50)]
    return found


def largest(calls: list[Any]) -> tuple[int, int]:
    """The most blocks in one message, and the longest section text, of all sent."""
    most, longest = 0, 0
    for call in calls:
        if call.method in MESSAGE_METHODS and call.args.get("blocks"):
            blocks = blocks_of(call)
            most = max(most, len(blocks))
            longest = max(
                [longest]
                + [len(b.get("text", {}).get("text", "")) for b in blocks if b["type"] == "section"]
            )
    return most, longest


def per_method(calls: list[Any]) -> Counter[tuple[str, int]]:
    return Counter((c.method, c.status) for c in calls)
