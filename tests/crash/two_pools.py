"""Two pools led by different replicas: one bot configuration (BOT_POOLS_FILE with two
simulated pools, both naming their VMs vm01, vm02, dns01, …), two `migrate-bot run`
processes on one PostgreSQL started together, which share the pools out (one leads
site-a, the other site-b).

Presses spread across replicas: each move is filed through one replica and approved
through the other; each runs on its own pool's leader. Then an offline move of site-a is
filed, approved, and site-a's leader is killed (SIGKILL) while a step runs: the other
replica, which leads site-b, takes site-a too and carries the move to its end, while
site-b's move is untouched. Judged as the crash trials judge, per pool: each XAPI
operation once, the VM placed, no audit gap, the outcome in each thread.

`make failover` runs it after its kill trials; `tests/test_replica.py` keeps it in
`make test`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import Driver, until
from tests.crash.trials import CHANNEL, SECRET, USERS, _audit_gaps, _calls, _placement, pool
from tests.support import postgres
from tests.support.processes import bot_env, db_rows, healthy, leads

POOLS = ("site-a", "site-b")
LIVE_B = ("vm02@site-b to host3", ("vm02", "host3", None))
LIVE_A = ("vm02@site-a to host3", ("vm02", "host3", None))
OFFLINE_A = ("dns01@site-a to host1 sr=nfs2 mode=offline", ("dns01", "host1", "nfs2"))
ONCE = {  # per pool, every operation the three moves issue, each exactly once
    "site-a": {
        "Async.VM.pool_migrate": 1,
        "Async.VM.clean_shutdown": 1,
        "Async.VM.migrate_send": 1,
        "Async.VM.start_on": 1,
    },
    "site-b": {"Async.VM.pool_migrate": 1},
}


@dataclass(frozen=True)
class TwoPools:
    leaders: dict[str, int]  # pool -> the replica that led it first
    killed_during: str
    takeover_s: float  # from the kill until the survivor said it leads site-a
    problems: tuple[str, ...]


def two_pool_trial(db: str) -> TwoPools:
    postgres.wipe(db)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (folder / "a").mkdir()
        (folder / "b").mkdir()
        urls = {
            "site-a": stack.enter_context(pool(folder / "a")),
            "site-b": stack.enter_context(pool(folder / "b", "old")),
        }
        pools_file = folder / "pools.yaml"
        entries = [
            {"name": name, "url": url, "username": "root", "password_env": "POOL_PASSWORD"}
            for name, url in urls.items()
        ]
        pools_file.write_text(yaml.safe_dump({"pools": entries}))
        slack = stack.enter_context(
            SlackDouble(usergroups={}, users=USERS, channels={CHANNEL: "ops"})
        )
        envs = [
            bot_env(
                urls["site-a"],
                slack,
                SECRET,
                db,
                BOT_APPROVERS="ULEAD",
                BOT_POOLS_FILE=str(pools_file),
                POOL_PASSWORD="secret",
            )
            for _ in range(2)
        ]
        processes = stack.enter_context(replicas(envs))
        ports = [int(env["BOT_HTTP_PORT"]) for env in envs]
        leaders = until(lambda: _leaders(ports), "both pools led", timeout=60)
        problems = []
        if leaders["site-a"] == leaders["site-b"]:
            problems.append(f"replica {leaders['site-a']} leads both pools")
        people = [
            Driver(slack, f"http://127.0.0.1:{port}/slack/events", SECRET, CHANNEL)
            for port in ports
        ]
        a, b = leaders["site-a"], 1 - leaders["site-a"]
        # Filed through one replica, approved through the other: each runs on its leader.
        live_b = _file_and_approve(slack, db, people[a], people[b], LIVE_B[0])
        live_a = _file_and_approve(slack, db, people[b], people[a], LIVE_A[0])
        for request_id in (live_a, live_b):
            until(lambda r=request_id: _ended(db, r), "the live moves to end", timeout=90)
        offline_a = _file_and_approve(slack, db, people[b], people[a], OFFLINE_A[0])
        until(lambda: _running_steps(db, offline_a), "a step of site-a's move", timeout=60)
        during = _step_running(db, offline_a)
        processes[a].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        until(lambda: leads(ports[b], "site-a"), "the survivor to take site-a", timeout=60)
        takeover = time.monotonic() - killed
        until(lambda: _ended(db, offline_a), "site-a's offline move to end", timeout=90)
        for request_id, (_, (vm, host, sr)), name in (
            (live_a, LIVE_A, "site-a"),
            (live_b, LIVE_B, "site-b"),
            (offline_a, OFFLINE_A, "site-a"),
        ):
            problems += _judged(slack, db, request_id, name)
            problems += _placement(urls[name], vm, host, sr)
        for name, once in ONCE.items():
            counts = _calls(urls[name])
            problems += [
                f"{name}: {call} issued {counts.get(call, 0)} times, not {times}"
                for call, times in once.items()
                if counts.get(call, 0) != times
            ]
    return TwoPools(leaders, during, takeover, tuple(problems))


@contextmanager
def replicas(envs: list[dict[str, str]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`migrate-bot run` once per environment, started together (so they share the pools
    out), until the block ends; then SIGKILL."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stderr=subprocess.DEVNULL)
        for env in envs
    ]
    try:
        for env in envs:
            until(lambda e=env: healthy(int(e["BOT_HTTP_PORT"])), "a replica to serve")
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGKILL)
            process.wait(10)


def _leaders(ports: list[int]) -> dict[str, int] | None:
    """Pool -> the replica leading it, once every pool has one."""
    found = {name: i for name in POOLS for i, port in enumerate(ports) if leads(port, name)}
    return found if len(found) == len(POOLS) else None


def _file_and_approve(
    slack: SlackDouble, db: str, filer: Driver, approver: Driver, command: str
) -> int:
    """`command` typed through one replica, Approve pressed through the other; the id."""
    before = _request_ids(db)
    filer.command(command, "U1")
    (request_id,) = until(lambda: _posted(db, before), f"the request message of {command!r}")
    (ts,) = db_rows(db, f"SELECT message_ts FROM requests WHERE id = {request_id}")[0]
    approver.press(slack.message(CHANNEL, ts), "approve", "ULEAD")
    return request_id


def _request_ids(db: str) -> set[int]:
    return {row[0] for row in db_rows(db, "SELECT id FROM requests")}


def _posted(db: str, before: set[int]) -> list[int] | None:
    rows = db_rows(db, "SELECT id FROM requests WHERE message_ts IS NOT NULL")
    new = [row[0] for row in rows if row[0] not in before]
    return new or None


def _ended(db: str, request_id: int) -> str | None:
    (state,) = db_rows(db, f"SELECT state FROM requests WHERE id = {request_id}")[0]
    return state if state in ("succeeded", "failed", "cancelled") else None


def _running_steps(db: str, request_id: int) -> int:
    query = f"SELECT count(*) FROM steps WHERE request_id = {request_id} AND state = 'running'"
    return int(db_rows(db, query)[0][0])


def _step_running(db: str, request_id: int) -> str:
    query = f"SELECT name FROM steps WHERE request_id = {request_id} AND state = 'running'"
    return f"during {', '.join(row[0] for row in db_rows(db, query))}"


def _judged(slack: SlackDouble, db: str, request_id: int, pool_name: str) -> list[str]:
    """The request ended succeeded in its pool, its audit has no gap, its thread was told."""
    query = f"SELECT state, pool, outcome, thread_ts FROM requests WHERE id = {request_id}"
    state, pool_of, outcome, thread = db_rows(db, query)[0]
    problems = [] if state == "succeeded" else [f"#{request_id} ended {state}: {outcome}"]
    if pool_of != pool_name:
        problems.append(f"#{request_id} filed in {pool_of}, not {pool_name}")
    problems += _audit_gaps(db, request_id)
    if not any(m.reply_broadcast for m in slack.replies(CHANNEL, thread)):
        problems.append(f"#{request_id}'s thread was not told the outcome")
    return problems
