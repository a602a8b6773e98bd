"""What the migration benchmarks share: a pool with 50 movable VMs, the bot at real speed,
recorders on the simulator, and reading progress back out of the Slack double.

Everything here runs on the wall clock (`SystemClock`): the simulator's tasks, the bot's
clock and the Slack double all read `time.time()`, so "simulated seconds" and "real
seconds" are the same seconds and a delay measured between xapi and Slack is a real one.
(The test rig's `serving()` moves a manual clock 50x faster than real time, which is
right for functional tests and wrong for latency.)
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.clock import SystemClock
from bot.simulator import Simulator, SimulatorServer
from bot.simulator.faults import Timing
from bot.simulator.scenario import GIB, generate, load
from bot.slack.outbox import Outbox
from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import Driver, until
from bot.wiring import Service, start
from tests.support.processes import bot_env, db_rows, healthy
from tests.support.slack_rig import CHANNEL, GROUPS, SECRET, USERS, settings_for

T = TypeVar("T")

MOVES = 50
HOSTS, SRS = 4, 8
MEMORY_GIB = (2, 3, 4)  # the 50 VMs' memory, in turn: live moves of 20, 30 and 40 s
SECONDS_PER_GIB = 10.0
MEMORY_BYTES_PER_S = GIB / SECONDS_PER_GIB
REQUESTER, APPROVER = "U1", "ULEAD"


def command_line(test_file: str) -> str:
    """How to run one bench file (`make bench` runs them all)."""
    name = Path(test_file).name
    return f".venv/bin/python -m pytest tests/bench/{name} -q -s -p no:randomly  (or make bench)"


# -- the pool -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fleet:
    data: dict[str, Any]  # the scenario (generate() format, with timing)
    moves: list[tuple[str, str]]  # (vm, destination host), one live move each


def fleet(moves: int = MOVES, seed: int = 1) -> Fleet:
    """A generated pool (4 hosts, shared SRs) and `moves` running VMs, each to the next host.

    The disks stay on their shared SR, so each move is a live `VM.pool_migrate` that copies
    memory only: 2, 3 or 4 GiB at `MEMORY_BYTES_PER_S`, 20 to 40 s of the pool's time.
    """
    data = generate(vms=moves + moves // 2, hosts=HOSTS, srs=SRS, seed=seed)
    hosts = [h["name"] for h in data["hosts"]]
    running = [v for v in data["vms"] if v["host"]]
    assert len(running) >= moves, f"only {len(running)} running VMs"
    chosen = []
    for index, vm in enumerate(running[:moves]):
        vm["memory_gib"] = MEMORY_GIB[index % len(MEMORY_GIB)]
        vm["cpu"] = min(vm["cpu"], 0.5)
        chosen.append((vm["name"], hosts[(hosts.index(vm["host"]) + 1) % len(hosts)]))
    data["timing"] = {"memory_bytes_per_s": MEMORY_BYTES_PER_S}
    return Fleet(data, chosen)


def simulator(data: dict[str, Any], **timing: Any) -> Simulator:
    """The scenario on the wall clock (the simulator ticks its tasks in a thread)."""
    sim = Simulator(clock=SystemClock(), timing=Timing(**{**data.get("timing", {}), **timing}))
    load(sim, data)
    return sim


# -- recording what xapi did, when ------------------------------------------------------------
@dataclass
class TaskLog:
    label: str
    created: float  # wall clock
    progress: list[tuple[float, float]] = field(default_factory=list)  # (when, fraction)
    finished: float | None = None
    status: str = "pending"


class Recorder:
    """Wraps the simulator's database writes and call log to timestamp tasks and calls.

    Reads only; the simulator behaves as before. Times are `time.time()` at the write.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.tasks: dict[str, TaskLog] = {}
        self.calls: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        db, log = sim.db, sim.calls
        create, update, record = db.create, db.update, log.record

        def on_create(cls: str, **fields: Any) -> str:
            ref = create(cls, **fields)
            if cls == "task":
                self.tasks[ref] = TaskLog(fields.get("name_label", ""), time.time())
            return ref

        def on_update(cls: str, ref: str, **changes: Any) -> None:
            update(cls, ref, **changes)
            task = self.tasks.get(ref) if cls == "task" else None
            if task is None:
                return
            now = time.time()
            if "progress" in changes and changes.get("status", "pending") == "pending":
                task.progress.append((now, float(changes["progress"])))
            if changes.get("status", "pending") != "pending" and task.finished is None:
                task.finished, task.status = now, changes["status"]

        def on_record(method: str) -> None:
            record(method)
            with self._lock:
                self.calls.append((time.time(), method))

        db.create = on_create  # type: ignore[method-assign]
        db.update = on_update  # type: ignore[method-assign]
        log.record = on_record  # type: ignore[method-assign]

    def labelled(self, label: str) -> dict[str, TaskLog]:
        return {ref: t for ref, t in self.tasks.items() if t.label == label}

    def calls_between(self, start: float, end: float) -> list[str]:
        with self._lock:
            return [m for at, m in self.calls if start <= at < end]


# -- the bot, at real speed -------------------------------------------------------------------
@dataclass
class RealTimeBot:
    service: Service
    slack: SlackDouble
    driver: Driver

    @property
    def store(self) -> Any:
        return self.service.core.store


@contextlib.contextmanager
def real_time_bot(
    xen_url: str, slack: SlackDouble, tmp_path: Path, **overrides: Any
) -> Iterator[RealTimeBot]:
    """The whole bot in-process (HTTP mode), on the wall clock, with production's outbox."""
    settings = settings_for(xen_url, slack, tmp_path / "bot.db", **overrides)
    service = start(settings, "127.0.0.1", SystemClock(), Outbox())
    try:
        yield RealTimeBot(
            service, slack, Driver(slack, f"{service.web.url}/slack/events", SECRET, CHANNEL)
        )
    finally:
        service.stop()


@dataclass
class BotProcess:
    """`migrate-bot run` in its own process (HTTP mode), as production runs it."""

    process: subprocess.Popen[bytes]
    driver: Driver
    db_url: str
    log: Path
    rss: RssSampler

    @property
    def pid(self) -> int:
        return self.process.pid

    def rows(self, query: str) -> list[Any]:
        return db_rows(self.db_url, query)


@contextlib.contextmanager
def bot_process(xen_url: str, slack: SlackDouble, folder: Path, **env: str) -> Iterator[BotProcess]:
    """Start `python -m bot run`; on exit SIGTERM it (it flushes its outbox) and wait."""
    db_url = f"sqlite:///{folder / 'bot.db'}"
    environ = bot_env(xen_url, slack, SECRET, db_url, BOT_APPROVERS=f"{APPROVER},S1", **env)
    port = int(environ["BOT_HTTP_PORT"])
    log = folder / "bot.log"
    with log.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=environ, stderr=err)
    sampler = RssSampler(process.pid).start()
    try:
        until(lambda: healthy(port), "the bot to serve", timeout=30)
        driver = Driver(slack, f"http://127.0.0.1:{port}/slack/events", SECRET, CHANNEL)
        yield BotProcess(process, driver, db_url, log, sampler)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        sampler.stop()


class RssSampler:
    """/proc/<pid>/status every 0.2 s: VmRSS samples, and VmHWM (the kernel's peak)."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []  # (wall clock, VmRSS kB)
        self.hwm_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            status = proc_status(self.pid)
            if not status:
                continue
            self.samples.append((time.time(), status.get("VmRSS", 0)))
            self.hwm_kb = max(self.hwm_kb, status.get("VmHWM", 0))

    def peak_between(self, start: float, end: float) -> int:
        return max((kb for at, kb in self.samples if start <= at <= end), default=0)


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status (empty once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0])
    return out


def slack_double(enforce_limits: bool = False) -> SlackDouble:
    """A workspace on the wall clock (`time.time`, the double's default)."""
    return SlackDouble(
        users=USERS,
        usergroups=GROUPS,
        channels={CHANNEL: "ops"},
        clock=time.time,
        enforce_limits=enforce_limits,
    )


# -- reading progress back out of Slack --------------------------------------------------------
_PERCENT = re.compile(r"(\d+)%")


@dataclass
class SlackStep:
    """One step message as Slack saw it: when it was posted and each edit's shown value."""

    posted: float
    shown: list[tuple[float, float, str]]  # (when, percent shown 0..100, text)

    def done_at(self) -> float | None:
        return next((at for at, _, text in self.shown if text.startswith("✅")), None)


def step_message(slack: SlackDouble, thread_ts: str, marker: str) -> SlackStep | None:
    """The step message in a thread whose text contains `marker`, with its edits."""
    found = [m for m in slack.replies(CHANNEL, thread_ts) if marker in m.text]
    if not found:
        return None
    message = found[0]
    posted = float(message.ts)  # the double's ts is its clock at the post
    texts = [message.history[0].text if message.history else message.text]
    shown = [(posted, _percent(texts[0]), texts[0])]
    for call in slack.calls_to("chat.update"):
        if call.status == 200 and call.args.get("ts") == message.ts:
            text = str(call.args.get("text", ""))
            shown.append((call.at, _percent(text), text))
    return SlackStep(posted, shown)


# A board row: `⏳ #12 *vm00001* → host02 · migrating 45%` (bot.blocks.board.board_line).
_ROW = re.compile(r"^(\S+) #(\d+) .*? · (.*)$", re.M)
BOARD_TEXT = "migrations in this channel"


def board_rows(slack: SlackDouble) -> dict[int, list[tuple[float, str]]]:
    """Every version of each request's row on the channel's boards: (when Slack had it,
    the row), from each board's post and each of its edits."""
    rows: dict[int, list[tuple[float, str]]] = {}
    for board in slack.messages(CHANNEL):
        if not board.text.startswith(BOARD_TEXT):
            continue
        first = board.history[0] if board.history else board
        versions = [(float(board.ts), first.blocks)]
        versions += [
            (c.at, c.args.get("blocks", []))
            for c in slack.calls_to("chat.update")
            if c.status == 200 and c.args.get("ts") == board.ts
        ]
        for at, blocks in versions:
            for match in _ROW.finditer(_section_text(blocks)):
                rows.setdefault(int(match[2]), []).append((at, match[0]))
    return rows


def _section_text(blocks: Any) -> str:
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return "\n".join(b["text"]["text"] for b in blocks if b.get("type") == "section")


def with_board(step: SlackStep | None, rows: list[tuple[float, str]]) -> SlackStep | None:
    """The migrate step as Slack showed it anywhere: its thread message or its board row."""
    shown = []
    for at, row in rows:
        icon, _, what = row.partition(" ")
        if icon in ("✅", "❌") or " · migrate done" in what:
            shown.append((at, 100.0, "✅ " + what))
        elif " · migrating" in what:
            shown.append((at, _percent(what), what))
    if step is not None:
        shown += step.shown
    if not shown:
        return None
    shown.sort(key=lambda s: s[0])
    return SlackStep(shown[0][0], shown)


def board_outcome(rows: list[tuple[float, str]]) -> float | None:
    """When the board first showed how the request ended."""
    return next((at for at, row in sorted(rows) if row[:1] in ("✅", "❌")), None)


def _percent(text: str) -> float:
    if text.startswith("✅"):
        return 100.0
    found = _PERCENT.search(text)
    return float(found.group(1)) if found else 0.0


def staleness(
    task: TaskLog, step: SlackStep, start: float = -math.inf, end: float = math.inf
) -> list[float]:
    """For each progress change xapi made (between `start` and `end`): how long until Slack
    showed at least that much. Slack shows whole percents (rounded), so "at least" is the
    change's floor percent."""
    out = []
    for at, fraction in task.progress:
        if not start <= at < end:
            continue
        floor = int(fraction * 100 + 1e-9)
        first = next((t for t, shown, _ in step.shown if shown >= floor), None)
        if first is None:
            continue
        out.append(max(0.0, first - at))
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- one run of the 50 migrations, the bot in its own process ---------------------------------
@dataclass
class FleetRun:
    fleet: Fleet
    recorder: Recorder
    hosts: int
    limits: bool
    requests: list[dict[str, Any]]  # id, state, thread_ts, message_ts, task (migrate task ref)
    threads: dict[int, list[Any]]  # request id -> its thread's replies (Slack double copies)
    steps: dict[int, SlackStep | None]  # request id -> its migrate step, thread or board
    board: dict[int, list[tuple[float, str]]]  # request id -> its board row's versions
    cards: dict[str, str]  # request message ts -> its text (the card's one line) at the end
    calls: list[Any]  # every Web API call the double saw (with status and time)
    marks: dict[str, float]  # wall-clock times of the run's phases
    rss: RssSampler
    pid: int
    log: str

    def told(self, request_id: int) -> float | None:
        """When the outcome reached Slack: the broadcast reply, or the board if earlier."""
        found = [float(m.ts) for m in self.threads[request_id] if m.reply_broadcast]
        found += [at for at in [board_outcome(self.board.get(request_id, []))] if at]
        return min(found) if found else None

    def in_thread(self, request_id: int) -> float | None:
        """When the outcome (the broadcast reply) reached the request's thread."""
        found = [float(m.ts) for m in self.threads[request_id] if m.reply_broadcast]
        return min(found) if found else None

    def calls_in(self, start: str, end: str) -> list[Any]:
        return [c for c in self.calls if self.marks[start] <= c.at < self.marks[end]]


def wait_for(probe: Callable[[], T | None], timeout: float) -> T | None:
    """Like `until`, but answers None at the deadline (the bench reports what it got)."""
    try:
        return until(probe, "", timeout)
    except TimeoutError:
        return None


def run_fleet(
    folder: Path, limits: bool, filing_interval: float = 0.0, end_timeout: float = 150.0
) -> FleetRun:
    """File the 50 moves (one `/migrate` every `filing_interval` s), approve them all, wait
    for every outcome in Slack, stop the bot (SIGTERM: it flushes its outbox for 10 s)."""
    plan = fleet()
    sim = simulator(plan.data)
    recorder = Recorder(sim)
    marks: dict[str, float] = {}
    try:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(SimulatorServer(sim))
            slack = stack.enter_context(slack_double(enforce_limits=limits))
            with bot_process(
                server.url, slack, folder, BOT_MAX_CONCURRENT_MIGRATIONS=str(MOVES)
            ) as bot:
                time.sleep(1.0)
                marks["start"] = time.time()
                for vm, dest in plan.moves:
                    typed = time.monotonic()
                    bot.driver.command(f"{vm} to {dest}", REQUESTER)
                    time.sleep(max(0.0, filing_interval - (time.monotonic() - typed)))
                wait_for(lambda: _all_filed(bot), timeout=end_timeout)
                marks["filed"] = time.time()
                for message in slack.messages(CHANNEL):
                    bot.driver.press(message, "approve", APPROVER)
                marks["approved"] = time.time()
                wait_for(lambda: _all_ended(bot), timeout=end_timeout)
                marks["ended"] = time.time()
                rows = bot.rows(
                    "SELECT r.id, r.state, r.thread_ts, r.message_ts, s.task_ref FROM requests r "
                    "LEFT JOIN steps s ON s.request_id = r.id AND s.name = 'migrate' "
                    "ORDER BY r.id"
                )
                keys = ("id", "state", "thread_ts", "message_ts", "task")
                requests = [dict(zip(keys, r, strict=True)) for r in rows]
                threads = [r for r in requests if r["thread_ts"]]
                wait_for(
                    lambda: all(
                        any(m.reply_broadcast for m in slack.replies(CHANNEL, r["thread_ts"]))
                        for r in threads
                    ),
                    timeout=end_timeout,
                )
                marks["told"] = time.time()
                pid = bot.pid
            marks["stopped"] = time.time()
            replies = {r["id"]: slack.replies(CHANNEL, r["thread_ts"]) for r in threads}
            board = board_rows(slack)
            steps = {
                r["id"]: with_board(
                    step_message(slack, r["thread_ts"], "migrating"), board.get(r["id"], [])
                )
                for r in threads
            }
            cards = {m.ts: m.text for m in slack.messages(CHANNEL)}
            calls = slack.calls
            log = bot.log.read_text(errors="replace")
    finally:
        sim.close()
    return FleetRun(
        plan,
        recorder,
        len(sim.db.tables["host"]),
        limits,
        requests,
        replies,
        steps,
        board,
        cards,
        calls,
        marks,
        bot.rss,
        pid,
        log,
    )


def _all_filed(bot: BotProcess) -> bool:
    rows = bot.rows("SELECT state, message_ts FROM requests")
    return len(rows) >= MOVES and all(ts or state == "cancelled" for state, ts in rows)


def _all_ended(bot: BotProcess) -> bool:
    rows = bot.rows("SELECT state FROM requests")
    return bool(rows) and all(s in ("succeeded", "failed", "cancelled") for (s,) in rows)
