"""Kill -9 the bot at random points of live and offline migrations, restart it, judge.

Each trial starts a simulated pool (its own process, real time, fast timings) and the bot
(`migrate-bot run`, HTTP mode, its own process), files a request through signed Slack
requests, approves it, kills the bot with SIGKILL after a random delay, starts it again on
the same database, and checks what an operator would: the request reached its true end,
the VM is where it was asked to be, the pool was asked each operation once, the audit log
moves through legal states without a gap, and the thread tells the outcome.

Every fifth trial is a batch: `evacuate host01` of a pool with ten VMs on that host, one
approval, killed while its moves run; the judge then wants all ten moved (each migrated
once), host01 still disabled, every child's audit without gap, and the outcome told.

`python -m tests.crash.trials [N] [--seed S]` runs N trials (default 20) and prints the
figures; `make crash` runs it; `tests/crash/test_crash_smoke.py` keeps a short version in
`make test`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import XenAPI

from bot.simulator.scenario import read
from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import Driver, until
from bot.states import State, can
from tests.support.processes import bot_env, db_rows, healthy

T = TypeVar("T")
SECRET, CHANNEL = "crash-secret", "C1"
USERS = {"U1": "alice", "ULEAD": "bob"}
FAST = {
    "storage_mb_per_s": 4000,
    "memory_mb_per_s": 4000,
    "clean_shutdown_s": 1,
    "start_s": 1,
    "agent_down_s": 1,
}
# (command, the operations it must issue exactly once, where the VM must end)
MOVES = {
    "live": ("vm02 to host3", {"Async.VM.pool_migrate": 1}, ("vm02", "host3", None)),
    "offline": (
        "dns01 to host1 sr=nfs2 mode=offline",
        {"Async.VM.clean_shutdown": 1, "Async.VM.migrate_send": 1, "Async.VM.start_on": 1},
        ("dns01", "host1", "nfs2"),
    ),
}
# The batch trial: ten VMs on host01 (the master) go to the three other hosts.
BATCH_POOL = "large:vms=30,hosts=4,srs=8,on_first=10"
BATCH = ("evacuate host01", {"Async.VM.pool_migrate": 10}, ("host01", 10))
# An audit action that moves the request, and the state it moves to.
MOVED_TO = {
    "created": State.PENDING,
    "approved": State.APPROVED,
    "queued": State.QUEUED,
    "started": State.RUNNING,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
    "stuck": State.STUCK,
    "cleared": State.SUCCEEDED,
}


def _steps(db: str) -> dict[str, str]:
    rows = db_rows(db, "SELECT name, state FROM steps WHERE request_id = 1 ORDER BY id")
    return dict(rows)


def _moved_not_started(xen_url: str) -> bool:
    """xapi finished the copy (the disks are new VDIs on nfs2), no start was issued yet."""
    if _calls(xen_url).get("Async.VM.start_on", 0):
        return False
    try:
        placed = _placement(xen_url, "dns01", "", "nfs2")
    except XenAPI.Failure:  # read while xapi swapped the VDIs: not yet
        return False
    return placed == ["dns01 is Halted on , not running on "]


# Kill points chosen on purpose (the rest are random delays): after xapi's copy made the
# disks new VDIs but before the bot issued the start, and while the start runs.
AIMED: dict[str, Callable[[str, str], bool]] = {
    "after the move": lambda db, xen_url: _moved_not_started(xen_url),
    "during start": lambda db, xen_url: _steps(db).get("start") in ("issuing", "running"),
}


@dataclass(frozen=True)
class Trial:
    number: int
    mode: str
    kill_after: float  # seconds after the approval press
    killed_during: str  # what the bot was doing: a step, or "after the end"
    state: str
    problems: tuple[str, ...]


def run_trials(count: int, seed: int, out: Callable[[str], None] = print) -> list[Trial]:
    """Odd trials are live, even ones offline; every other offline trial is killed at an
    aimed point (after the move, during the start) instead of after a random delay."""
    rng = random.Random(seed)
    trials = []
    aims = itertools.cycle([None, "after the move", None, "during start"])
    for number in range(1, count + 1):
        mode = "batch" if number % 5 == 0 else "live" if number % 2 else "offline"
        aim = next(aims) if mode == "offline" else None
        delay = rng.uniform(0.0, 3.0 if mode == "live" else 5.0)
        trial = one_trial(number, mode, delay, aim)
        trials.append(trial)
        verdict = "ok" if not trial.problems else "; ".join(trial.problems)
        out(
            f"trial {number:2d} {mode:7s} killed {trial.kill_after:4.2f} s after approval "
            f"({trial.killed_during}) -> {trial.state}: {verdict}"
        )
    return trials


def one_trial(number: int, mode: str, kill_after: float, aim: str | None = None) -> Trial:
    """`aim` names a point of AIMED to kill at instead of `kill_after` seconds; `mode`
    "batch" evacuates host01 (ten VMs) instead of moving one VM."""
    command, once, where = BATCH if mode == "batch" else MOVES[mode]
    with (
        tempfile.TemporaryDirectory() as folder,
        pool(Path(folder), BATCH_POOL if mode == "batch" else "demo") as xen_url,
        SlackDouble(usergroups={}, users=USERS, channels={CHANNEL: "ops"}) as slack,
    ):
        db = f"sqlite:///{folder}/bot.db"
        env = bot_env(xen_url, slack, SECRET, db, BOT_APPROVERS="ULEAD")
        with bot(env) as port:
            people = Driver(slack, f"http://127.0.0.1:{port}/slack/events", SECRET, CHANNEL)
            people.command(command, "U1")
            posted = until(lambda: slack.messages(CHANNEL), "the request message")
            if aim:  # calls a little slower, so the aimed moment lasts long enough to catch
                _control(xen_url, {"fault": "latency", "seconds": 0.05})
            people.press(posted[0], "approve", "ULEAD")
            started = time.monotonic()
            if aim:
                until(lambda: AIMED[aim](db, xen_url), f"the bot {aim}", timeout=60, pause=0.005)
            else:
                time.sleep(kill_after)
            kill_after = time.monotonic() - started
            during = f"{aim}: {_doing(db)}" if aim else _doing(db)
        _control(xen_url, {"fault": "latency", "seconds": 0.0})
        # the bot is dead (SIGKILL); a new one starts on the same database
        with bot(env):
            state = until(lambda: _final(db), "the request to end", timeout=90)
            ended = until(lambda: _told(slack, posted[0].ts), "the outcome in the thread")
        if mode == "batch":
            host, moves = where
            placed = _evacuated(xen_url, str(host), int(moves))
        else:
            vm, host, sr = where
            placed = _placement(xen_url, str(vm), str(host), sr)
        problems = _judge(xen_url, db, once, placed, state, ended)
    return Trial(number, mode, kill_after, during, state, tuple(problems))


# -- processes -------------------------------------------------------------------------------
@contextmanager
def pool(folder: Path, name: str = "demo") -> Iterator[str]:
    """A built-in pool with fast timings, served by `migrate-bot simulator` in its own
    process."""
    scenario = read(name)
    scenario["timing"] = {**scenario.get("timing", {}), **FAST}
    path = folder / "pool.json"
    path.write_text(json.dumps(scenario))
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "simulator", "--scenario", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def bot(env: dict[str, str]) -> Iterator[int]:
    """`migrate-bot run` until the block ends, then SIGKILL: no goodbye, like a crash."""
    port = int(env["BOT_HTTP_PORT"])
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: healthy(port), "the bot to serve")
        yield port
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)


def _calls(xen_url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{xen_url}/control/calls") as answer:
        return json.loads(answer.read())["counts"]


def _control(xen_url: str, fault: dict[str, object]) -> None:
    request = urllib.request.Request(
        f"{xen_url}/control", json.dumps(fault).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as answer:
        answer.read()


# -- what the store and the pool say ---------------------------------------------------------
def _doing(db: str) -> str:
    state = db_rows(db, "SELECT state FROM requests WHERE id = 1")[0][0]
    children = db_rows(db, "SELECT state FROM requests WHERE batch_id = 1")
    if children and state == "running":
        ended = sum(s in ("succeeded", "failed", "cancelled") for (s,) in children)
        return f"with {ended} of {len(children)} moves ended"
    steps = db_rows(db, "SELECT name, state FROM steps WHERE request_id = 1 ORDER BY id")
    open_steps = [name for name, step_state in steps if step_state in ("issuing", "running")]
    if open_steps:
        return f"during {open_steps[-1]}"
    return f"while {state}" if state not in ("succeeded", "failed") else "after the end"


def _final(db: str) -> str | None:
    state = db_rows(db, "SELECT state FROM requests WHERE id = 1")[0][0]
    return state if state in ("succeeded", "failed", "cancelled") else None


def _told(slack: SlackDouble, thread_ts: str) -> bool:
    return any(m.reply_broadcast for m in slack.replies(CHANNEL, thread_ts))


def _judge(
    xen_url: str, db: str, once: dict[str, int], placed: list[str], state: str, told: bool
) -> list[str]:
    problems = []
    if state != "succeeded":
        outcome = db_rows(db, "SELECT outcome FROM requests WHERE id = 1")[0][0]
        problems.append(f"ended {state}: {outcome}")
    counts = _calls(xen_url)
    for call, times in once.items():
        if counts.get(call, 0) != times:
            problems.append(f"{call} issued {counts.get(call, 0)} times, not {times}")
    problems += placed
    for (request_id,) in db_rows(db, "SELECT id FROM requests ORDER BY id"):
        problems += _audit_gaps(db, request_id)
    if not told:
        problems.append("the thread was not told the outcome")
    return problems


@contextmanager
def _xapi(xen_url: str) -> Iterator[XenAPI.Session]:
    session = XenAPI.Session(xen_url)
    session.xenapi.login_with_password("root", "secret", "1.0", "crash-trials")
    try:
        yield session.xenapi
    finally:
        session.xenapi.session.logout()
        session("close")()


def _evacuated(xen_url: str, host: str, moves: int) -> list[str]:
    """The host's VMs (all but its control domain) left it running, and it stays disabled."""
    with _xapi(xen_url) as x:
        (ref,) = x.host.get_by_name_label(host)
        left = [
            x.VM.get_name_label(vm)
            for vm in x.host.get_resident_VMs(ref)
            if not x.VM.get_is_control_domain(vm)
        ]
        problems = [f"{', '.join(sorted(left))} still on {host}"] if left else []
        if x.host.get_enabled(ref):
            problems.append(f"{host} is enabled again")
        names = [f"vm{i:05d}" for i in range(1, moves + 1)]
        for name in names:
            (vm,) = x.VM.get_by_name_label(name)
            if x.VM.get_power_state(vm) != "Running":
                problems.append(f"{name} is {x.VM.get_power_state(vm)}")
        return problems


def _placement(xen_url: str, vm: str, host: str, sr: str | None) -> list[str]:
    with _xapi(xen_url) as x:
        (ref,) = [r for r in x.VM.get_by_name_label(vm) if not x.VM.get_is_a_snapshot(r)]
        record = x.VM.get_record(ref)
        host_ref = record["resident_on"]
        where = x.host.get_name_label(host_ref) if host_ref != "OpaqueRef:NULL" else ""
        problems = []
        if record["power_state"] != "Running" or where != host:
            problems.append(f"{vm} is {record['power_state']} on {where}, not running on {host}")
        if sr is not None:
            disks = [x.VBD.get_VDI(v) for v in record["VBDs"] if x.VBD.get_type(v) == "Disk"]
            srs = {x.SR.get_name_label(x.VDI.get_SR(d)) for d in disks}
            if srs != {sr}:
                problems.append(f"{vm}'s disks are on {sorted(srs)}, not {sr}")
        return problems


def _audit_gaps(db: str, request_id: int) -> list[str]:
    """Every state change follows the transition table from `pending` (a batch's child
    from `approved`, as it is created): no gap, no jump."""
    query = f"SELECT action FROM audit WHERE request_id = {int(request_id)} ORDER BY id"
    moves = [MOVED_TO[a] for (a,) in db_rows(db, query) if a in MOVED_TO]
    (batch_id,) = db_rows(db, f"SELECT batch_id FROM requests WHERE id = {int(request_id)}")[0]
    first = State.APPROVED if batch_id else State.PENDING
    problems = []
    if not moves or moves[0] != first:
        problems.append(f"#{request_id}'s audit log does not start with its creation")
    for before, after in itertools.pairwise(moves):
        if not can(before, after):
            problems.append(f"#{request_id}'s audit log jumps from {before} to {after}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    trials = run_trials(args.count, args.seed)
    bad = [t for t in trials if t.problems]
    kinds = sorted({t.killed_during for t in trials})
    print(
        f"\n{len(trials)} trials ({sum(t.mode == 'live' for t in trials)} live, "
        f"{sum(t.mode == 'offline' for t in trials)} offline, "
        f"{sum(t.mode == 'batch' for t in trials)} batches of 10), seed {args.seed}, "
        f"{time.monotonic() - started:.0f} s; killed: {', '.join(kinds)}; "
        f"{len(bad)} with a problem"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
