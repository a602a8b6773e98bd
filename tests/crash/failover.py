"""Failover trials: two replicas on one PostgreSQL, the leader killed (SIGKILL) at random
points of live and offline runs, the follower takes the pool over; judged as the crash
trials judge (the request's true end, the VM placed, each XAPI operation issued once, no
audit gap, the outcome in the thread), plus the takeover time.

Each trial runs its own simulated pool and Slack double and a fresh database on one
throwaway PostgreSQL cluster. The request is filed and approved through the follower, so
the leader runs what another replica queued. `python -m tests.crash.failover [N]
[--seed S]` runs N trials (default 20) and prints the figures; `make failover` runs it;
`tests/test_replica.py` keeps one trial in `make test`.
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import Driver, until
from tests.crash.trials import (
    CHANNEL,
    MOVES,
    SECRET,
    USERS,
    _doing,
    _final,
    _judge,
    _placement,
    _told,
    pool,
)
from tests.crash.two_pools import two_pool_trial
from tests.support import postgres
from tests.support.processes import bot_env, db_rows, healthy, leads


@dataclass(frozen=True)
class Failover:
    number: int
    mode: str
    killed_during: str
    takeover_s: float  # from the kill until the follower said it leads
    state: str
    problems: tuple[str, ...]


def run_trials(
    count: int, seed: int, db: str, out: Callable[[str], None] = print
) -> list[Failover]:
    """Odd trials live, even ones offline; the leader is killed after a random delay."""
    rng = random.Random(seed)
    trials = []
    for number in range(1, count + 1):
        mode = "live" if number % 2 else "offline"
        delay = rng.uniform(0.0, 3.0 if mode == "live" else 5.0)
        trial = one_failover(number, mode, db, delay)
        trials.append(trial)
        verdict = "ok" if not trial.problems else "; ".join(trial.problems)
        out(
            f"trial {number:2d} {mode:7s} leader killed ({trial.killed_during}), "
            f"follower led after {trial.takeover_s:.1f} s -> {trial.state}: {verdict}"
        )
    return trials


def one_failover(
    number: int, mode: str, db: str, kill_after: float | None, cut: bool = False
) -> Failover:
    """`kill_after` seconds after the approval, or (None) as soon as a step runs; `cut`:
    instead of killing the leader, end its lock's database session (its network to the
    database gone): it must stop issuing steps and exit with code 3."""
    command, once, (vm, host, sr) = MOVES[mode]
    postgres.wipe(db)
    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        xen_url = stack.enter_context(pool(Path(folder)))
        slack = stack.enter_context(
            SlackDouble(usergroups={}, users=USERS, channels={CHANNEL: "ops"})
        )
        envs = [bot_env(xen_url, slack, SECRET, db, BOT_APPROVERS="ULEAD") for _ in range(2)]
        processes = [stack.enter_context(replica(env)) for env in envs]
        ports = [int(env["BOT_HTTP_PORT"]) for env in envs]
        (leader,) = until(lambda: [i for i, p in enumerate(ports) if leads(p)], "one leader")
        follower = 1 - leader
        people = Driver(slack, f"http://127.0.0.1:{ports[follower]}/slack/events", SECRET, CHANNEL)
        people.command(command, "U1")
        posted = until(lambda: slack.messages(CHANNEL), "the request message")
        people.press(posted[0], "approve", "ULEAD")
        if kill_after is None:
            until(lambda: _running_steps(db), "a step to run on the leader", timeout=60)
        else:
            time.sleep(kill_after)
        during = _doing(db)
        if cut:
            _end_lock_session(db)
        else:
            processes[leader].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        until(lambda: leads(ports[follower]), "the follower to take over", timeout=60)
        takeover = time.monotonic() - killed
        if cut:
            code = processes[leader].wait(30)
            if code != 3:
                raise AssertionError(f"the cut-off leader exited {code}, not 3")
        state = until(lambda: _final(db), "the request to end", timeout=90)
        told = until(lambda: _told(slack, posted[0].ts), "the outcome in the thread")
        problems = _judge(xen_url, db, once, _placement(xen_url, vm, host, sr), state, told)
    return Failover(number, mode, during, takeover, state, tuple(problems))


@contextmanager
def replica(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`migrate-bot run` until the block ends, then SIGKILL (if it still runs)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        until(lambda: healthy(int(env["BOT_HTTP_PORT"])), "a replica to serve")
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)


def _end_lock_session(db: str) -> None:
    """What a network cut does, seen from PostgreSQL: the leader's lock session ends."""
    rows = db_rows(
        db,
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    )
    if rows != [(True,)]:
        raise AssertionError(f"expected one advisory lock session, found {rows}")


def _running_steps(db: str) -> int:
    return int(db_rows(db, "SELECT count(*) FROM steps WHERE state = 'running'")[0][0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    why = postgres.missing()
    if why:
        print(f"no PostgreSQL: {why}", file=sys.stderr)
        return 2
    started = time.monotonic()
    with postgres.cluster() as db:
        trials = run_trials(args.count, args.seed, db)
        two = two_pool_trial(db)
    print(
        f"two pools: led by replicas {two.leaders}; site-a's leader killed "
        f"{two.killed_during}, the other took it after {two.takeover_s:.1f} s: "
        f"{'; '.join(two.problems) or 'ok'}"
    )
    bad = [t for t in trials if t.problems] + ([two] if two.problems else [])
    takeovers = [t.takeover_s for t in trials]
    print(
        f"\n{len(trials)} failover trials, seed {args.seed}, {time.monotonic() - started:.0f} s; "
        f"takeover median {statistics.median(takeovers):.1f} s, max {max(takeovers):.1f} s; "
        f"{len(bad)} with a problem"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
