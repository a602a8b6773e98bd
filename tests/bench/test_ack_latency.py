"""Ack latency: `/migrate` and button presses over HTTP at 50 requests/s for 30 s.

The whole bot runs in HTTP mode (waitress, bolt, the desk, the engine; `tests.support.slack_rig`)
on the demo pool with 20 ms added to every XAPI call. An open-loop generator, in a process
of its own, sends signed slash commands and block_actions presses on the request messages
as currently shown, at their scheduled times (Poisson arrivals, one thread per request in
flight, so a slow answer never delays a later send) and measures, per request, the time
from send to the HTTP response: the ack Slack waits for. Slack gives up after 3 s; so does
the generator (connect, send, wait and read in all), and a timeout or any status but 200
counts as unacknowledged.

The naive design is the same bolt App pattern on the same core, with the work done before
the ack: its `/migrate` previews the migration (XAPI in the request path) and acks the
checklist; `list`/`status`/`cancel` and presses run the desk's method on the listener
thread and ack after it. It files nothing for `/migrate` (no request, no post), so it does
less work per command than the bot: the ratio is conservative. It runs on its own waitress
server against the same load, right after the bot's run and once the bot's desk is idle.

The pool runs in its own process by default (`python -m bot simulator`, as
`tests/crash/trials.py` does): in the bot's process the simulator's XML-RPC server and
clock ticks compete with the bot's HTTP threads for the GIL, which a real pool does not.
`BENCH_POOL=inline` runs it in-process as `tests.support.slack_rig.serving` does in the tests. The
load runs in its own process for the same reason (`python -m tests.bench.ack_latency.load`,
told what the channel shows over its stdin). The Slack double stays in the bot's process,
so the figures include its share of the GIL. The table says who used the CPU there.

The parts are in `tests/bench/ack_latency/`: the load (`load`), the naive design (`naive`),
what is measured (`measure`), the pool and the bot (`rig`); this file runs and reports.

Run on demand (`make bench`). `BENCH_RATE` (requests/s, default 50), `BENCH_SECONDS`
(default 30), `BENCH_NAIVE_SECONDS` (default: the same), `BENCH_SEED` (default 1),
`BENCH_POOL` (`process` or `inline`), `BENCH_DRAIN_SECONDS` (how long to wait for the bot's
desk to answer everything after its run, default 300), `BENCH_GC_FREEZE` (default 0; 1
calls `gc.freeze()` before the load, to see what the collector's full passes cost the
tail). Prints a table; asserts that the bot
acknowledged every request and that its p99 is below the naive p99, never an absolute time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.slack.desk import Desk
from bot.slackdouble.driver import as_shown, until
from bot.slackdouble.driver import buttons as shown_buttons
from bot.web import WebServer, wsgi_app
from tests.bench.ack_latency.load import MIX, RATE, SECONDS, SEED, Watcher, plan, send_load
from tests.bench.ack_latency.measure import DEADLINE_S, Pause, Result, Run, percentile
from tests.bench.ack_latency.naive import naive_app
from tests.bench.ack_latency.rig import LATENCY_S, inline, own_process
from tests.support.slack_rig import CHANNEL, Bot

NAIVE_SECONDS = float(os.environ.get("BENCH_NAIVE_SECONDS", str(SECONDS)))
POOL = os.environ.get("BENCH_POOL", "process")  # "process": its own; "inline": the bot's
GC_FREEZE = os.environ.get("BENCH_GC_FREEZE", "0") == "1"  # an experiment: see the report
DRAIN_SECONDS = float(os.environ.get("BENCH_DRAIN_SECONDS", "300"))
TARGET_MS = 100.0  # the requirement's p99 (printed, not asserted)
SETUP = ("vm02 to host3", "dns01 to host1", "mail01 to host1", "vm01 to host3 sr=nfs1")


def _idle(desk: Desk, timeout: float) -> float | None:
    """Seconds until the desk has done everything queued (None: not within `timeout`).

    Its workers take tasks in order: once one task per worker is running at the same time,
    every task queued before them has finished.
    """
    workers = desk._pool._max_workers
    barrier = threading.Barrier(workers + 1)
    started = time.perf_counter()
    for _ in range(workers):
        desk.in_background(lambda reply: barrier.wait(), reply=lambda said: None)
    try:
        barrier.wait(timeout)
    except threading.BrokenBarrierError:
        return None
    return time.perf_counter() - started


def _activity(bot: Bot) -> Counter[str]:
    """Audit entries by action, request messages, ephemeral answers: what the load did."""
    done = Counter(event.action for event in bot.core.store.audit_events())
    done["answers"] = len(bot.slack.responses)
    return done


def _drain(desk: Desk, timeout: float) -> str:
    """Wait for the desk to answer everything; past `timeout`, drop what is still queued."""
    idle = _idle(desk, timeout)
    if idle is not None:
        return f"{idle:.1f} s"
    desk._pool.shutdown(wait=False, cancel_futures=True)  # else stopping waits for it all
    return f"more than {timeout:.0f} s (the rest was dropped)"


def _setup(bot: Bot) -> list[dict[str, Any]]:
    """A few request messages to press on; their first copies (for stale presses)."""
    for text in SETUP:
        bot.command(text)
    until(
        lambda: len([m for m in bot.slack.messages(CHANNEL) if shown_buttons(m)]) >= 3,
        "three request messages with buttons",
        60,
    )
    return [as_shown(m) for m in bot.slack.messages(CHANNEL) if shown_buttons(m)]


def test_ack_latency(tmp_path: Path) -> None:
    """Every request is acked within Slack's 3 s, and the bot's p99 beats the naive design's."""
    started = time.perf_counter()
    bot_plan = plan(RATE, SECONDS, SEED)
    with contextlib.ExitStack() as stack:
        rig = stack.enter_context({"inline": inline, "process": own_process}[POOL](tmp_path))
        bot = rig.bot
        stale = _setup(bot)
        watcher = stack.enter_context(Watcher(bot.slack))
        desk = bot.service.front.desk
        before = _activity(bot)
        if GC_FREEZE:  # what everything made so far is left out of every later collection
            gc.collect()
            gc.freeze()
        ours = send_load(f"{bot.service.web.url}/slack/events", watcher, stale, "bot", SECONDS)
        ours.design, ours.drain = "bot", _drain(desk, DRAIN_SECONDS)
        tracked = len(gc.get_objects())
        ours.did = _activity(bot) - before

        executor = ThreadPoolExecutor(5, thread_name_prefix="naive-listener")  # bolt's default
        app = naive_app(bot.core, desk, bot.service.front.client, executor)
        web = WebServer(wsgi_app(bot.core.readiness, app), "127.0.0.1", 0).start()
        try:
            naive = send_load(f"{web.url}/slack/events", watcher, stale, "naive", NAIVE_SECONDS)
        finally:
            web.stop()
            executor.shutdown(wait=True, cancel_futures=True)
        naive.design, naive.did = "naive", _activity(bot) - before - ours.did
        xapi_calls = rig.xapi_calls()
    gc.unfreeze()
    frozen = " (the rest frozen: BENCH_GC_FREEZE=1)" if GC_FREEZE else ""
    notes = [f"objects the collector tracks in the bot's process: {tracked:,}{frozen}"]
    report([ours, naive], time.perf_counter() - started, xapi_calls, notes, rig.where)

    assert len(ours.results) == len(bot_plan)
    missed = Counter((r.kind, r.status, r.error) for r in ours.results if not r.acked)
    assert ours.unacked == 0, missed
    assert naive.p99 > ours.p99, "the naive design acked as fast as the bot"


def report(runs: list[Run], total: float, xapi_calls: int, notes: list[str], where: str) -> None:
    ours, naive = runs
    env = " ".join(
        f"{k}={os.environ[k]}"
        for k in (
            "BENCH_RATE",
            "BENCH_SECONDS",
            "BENCH_NAIVE_SECONDS",
            "BENCH_SEED",
            "BENCH_POOL",
            "BENCH_DRAIN_SECONDS",
            "BENCH_GC_FREEZE",
        )
        if k in os.environ
    )
    command = f"{env} {Path(sys.executable).name} -m pytest {' '.join(sys.argv[1:])}".strip()
    head = (
        f"{'design':<6} | {'requests':>8} | {'unacked':>7} | {'p50 ms':>7} | {'p95 ms':>7} | "
        f"{'p99 ms':>7} | {'max ms':>7} | {'p99 naive/bot':>13}"
    )
    lines = [
        "",
        "",
        f"Ack latency: /migrate and presses over HTTP, open loop, Poisson arrivals at "
        f"{RATE:g}/s for {SECONDS:g} s (naive: {NAIVE_SECONDS:g} s), {LATENCY_S * 1000:.0f} ms "
        f"added to every XAPI call, {DEADLINE_S:g} s timeout (Slack's)",
        f"machine: nproc={len(os.sched_getaffinity(0))}, {platform.machine()}, "
        f"Python {platform.python_version()}; the pool {where} (BENCH_POOL={POOL}); the bot "
        "and the Slack double in the test's process; the load in a process of its own",
        f"command: {command}",
        head,
        "-" * len(head),
    ]
    for run in runs:
        ratio = f"{naive.p99 / ours.p99:.0f}x" if run is naive else ""
        lines.append(
            f"{run.design:<6} | {len(run.results):>8} | {run.unacked:>7} | {run.ms(0.5):>7.1f} | "
            f"{run.ms(0.95):>7.1f} | {run.ms(0.99):>7.1f} | {run.ms(1.0):>7.1f} | {ratio:>13}"
        )
    lines.append("")
    lines.append("p99 ms by kind   " + " ".join(f"{k:>8}" for k, _ in MIX))
    for run in runs:
        by_kind = " ".join(f"{run.ms(0.99, k):>8.1f}" for k, _ in MIX)
        lines.append(f"  {run.design:<14} {by_kind}")
    for run in runs:
        failed = Counter(f"{r.kind}:{r.status or r.error}" for r in run.results if not r.acked)
        lag = [r.lag for r in run.results]
        lines.append(
            f"{run.design}: sent in {run.wall:.1f} s, send lag p99 "
            f"{1000 * percentile(lag, 0.99):.1f} ms, max {1000 * max(lag):.1f} ms; "
            f"unacknowledged {dict(failed) or 'none'}"
        )
    lines.append(f"bot's desk answered everything {ours.drain} after its last request was sent")
    for run in runs:
        did = ", ".join(f"{action} {n}" for action, n in run.did.most_common())
        lines.append(f"what the {run.design}'s requests did (audit entries, answers): {did}")
    for run in runs:
        wall, process, used = run.cpu
        top = ", ".join(f"{kind} {seconds:.1f}" for kind, seconds in used.most_common(10))
        lines.append(
            f"CPU during the {run.design}'s run: {process:.1f} s in {wall:.1f} s "
            f"({100 * process / wall:.0f}% of one core); by thread, s: {top}"
        )
        pauses = [p.seconds for p in run.gc_pauses]
        full = sum(p.generation == 2 for p in run.gc_pauses)
        slowest = sorted(run.results, key=lambda r: r.seconds)[-max(1, len(run.results) // 100) :]
        long_pauses = [p for p in run.gc_pauses if p.seconds >= 0.010]
        hit = [r for r in slowest if any(_overlap(r, p) for p in long_pauses)]
        tail = (
            f"; of the slowest 1% ({len(slowest)}, from {1000 * slowest[0].seconds:.0f} ms), "
            f"{len(hit)} were waiting during a collection of 10 ms or more"
        )
        lines.append(
            f"  garbage collections in the bot's process meanwhile: {len(pauses)} ({full} full), "
            f"longest {1000 * max(pauses, default=0):.1f} ms, {1000 * sum(pauses):.0f} ms in all"
            + (tail if run is ours else "")
        )
    verdict = "met" if ours.p99 < TARGET_MS else "NOT met"
    lines.append(
        f"target bot p99 < {TARGET_MS:.0f} ms: {verdict}; XAPI calls served: {xapi_calls:,}; "
        f"total wall time {total:.1f} s"
    )
    lines.extend(notes)
    print("\n".join(lines))


def _overlap(result: Result, pause: Pause) -> bool:
    return result.sent < pause.end and pause.start < result.sent + result.seconds
