"""Slack budget: the same 50 migrations in one channel, the Slack double enforcing limits.

The run of `test_fifty_migrations.py` (the bot as `python -m bot run`, 50 live moves of
20/30/40 s filed with `/migrate`, approved, all at once) against a double created with
`enforce_limits=True`: Slack's published limits as token buckets on the wall clock (the
double's clock is `time.time`, the same clock as the bot's and the pool's):
`chat.postMessage` a burst of 3 then 1 per second per channel, `chat.update` (Tier 3) 50
per minute per workspace, refilled evenly. Over a limit the double answers HTTP 429 with
Retry-After; the bot's slack_sdk client waits it out and retries (up to 5 times), then the
outbox retries the job with back-off.

Reports every Web API call by method and phase (filing: the 50 commands until every
request message is posted; running: approvals to the last outcome; stopping: SIGTERM's
flush), the 429s among them, whether each request's outcome (the broadcast reply)
reached its thread and how long after xapi's task ended, and which thread lines were
still missing when the bot stopped.

Requirement: no 429 from a double that enforces Slack's published limits, and every final
state delivered. Asserts those two properties, after printing the table.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.slackdouble.limits import POST_BURST, POST_PER_SECOND, TIERS
from tests.bench._fleet import BOARD_TEXT, FleetRun, command_line, median, run_fleet

MIGRATE = "Async.VM.pool_migrate"
# One /migrate every 1.1 s, as one person types them, so the filing itself stays within
# chat.postMessage's 1 per second; BENCH_FILING_INTERVAL=0 sends all 50 at once.
FILING_INTERVAL = float(os.environ.get("BENCH_FILING_INTERVAL", "1.1"))
PHASES = (
    ("filing", "start", "filed"),
    ("running", "filed", "told"),
    ("stopping", "told", "stopped"),
)
LINES = ("approved by", "queued", "started", "migrating", "outcome")


def _limit(method: str) -> str:
    if method == "chat.postMessage":
        return f"burst {POST_BURST}, then {POST_PER_SECOND:.0f}/s per channel"
    return f"{TIERS[method]}/min per workspace" if method in TIERS else "none modelled"


def _kind(call: Any) -> str:
    """What a chat.postMessage was: the request message, a state line, the step, the outcome."""
    if call.method != "chat.postMessage":
        return call.method
    args = call.args
    if not args.get("thread_ts"):
        return "board" if str(args.get("text", "")).startswith(BOARD_TEXT) else "request message"
    if args.get("reply_broadcast") in (True, "true", "1", 1):
        return "outcome"
    text = str(args.get("text", ""))
    return "step message" if text[:1] in ("⏳", "✅", "❌") else "state line"


def _card_states(run: FleetRun) -> Counter[str]:
    """What each request message says its state is (the text after the last ' · ')."""
    return Counter(
        run.cards.get(r["message_ts"], "").rpartition(" · ")[2] or "?"
        for r in run.requests
        if r["message_ts"]
    )


def _missing(run: FleetRun) -> Counter[str]:
    """Thread lines each request should have and did not get before the bot stopped."""
    missing: Counter[str] = Counter()
    for replies in run.threads.values():
        texts = [m.text for m in replies]
        for line in LINES[:-1]:
            if not any(line in t for t in texts):
                missing[line] += 1
        if not any(m.reply_broadcast for m in replies):
            missing["outcome"] += 1
    return missing


def test_slack_budget(tmp_path: Path) -> None:
    started = time.monotonic()
    run = run_fleet(tmp_path, limits=True, filing_interval=FILING_INTERVAL, end_timeout=180.0)
    seconds = time.monotonic() - started
    migrates = run.recorder.labelled(MIGRATE)
    states = Counter(r["state"] for r in run.requests)
    filed = [r for r in run.requests if r["thread_ts"]]
    told = {r["id"]: run.in_thread(r["id"]) for r in filed}

    def after_end(when: Callable[[int], float | None]) -> list[float]:
        """For each request: `when` minus the time its migrate task ended."""
        out = []
        for r in filed:
            task, at = migrates.get(r["task"]), when(r["id"])
            if task is not None and task.finished and at is not None:
                out.append(at - task.finished)
        return out

    shown, delays = after_end(run.told), after_end(told.get)
    limited = [c for c in run.calls if c.status == 429]
    last_end = max((t.finished or 0.0) for t in migrates.values()) if migrates else 0.0
    last_told = max((t for t in told.values() if t), default=0.0)
    missing = _missing(run)
    warnings = run.log.count("Slack call failed")
    withdrawn = run.log.count("in post_request")
    gave_up = run.log.count("gave up on a Slack message")

    head = f"{'method':<18} | {'phase':<8} | {'calls':>5} | {'ok':>5} | {'429':>5} | limit"
    lines = [
        "",
        "",
        f"Slack budget: {len(run.requests)} requests in one channel, 50 live migrations at "
        "once, Slack double enforcing limits (token buckets on the wall clock)",
        f"command: {command_line(__file__)}",
        f"run took {seconds:.0f} s; one /migrate every {FILING_INTERVAL} s, then 50 approvals "
        f"at once; requests: {dict(states)}",
        "",
        head,
        "-" * 90,
    ]
    for method in sorted({c.method for c in run.calls}):
        for phase, start, end in PHASES:
            calls = [c for c in run.calls_in(start, end) if c.method == method]
            if not calls:
                continue
            ok = sum(c.status == 200 for c in calls)
            over = sum(c.status == 429 for c in calls)
            lines.append(
                f"{method:<18} | {phase:<8} | {len(calls):>5} | {ok:>5} | {over:>5} | "
                f"{_limit(method)}"
            )
    lines += [
        "",
        f"429s in all: {len(limited)}; chat.postMessage 429s by message kind: "
        + ", ".join(f"{k} {n}" for k, n in Counter(_kind(c) for c in limited).most_common()),
        f"bot log: {withdrawn} request posts failed for good (request withdrawn), "
        f"{warnings} outbox retries ('Slack call failed'), {gave_up} outbox give-ups",
        f"outcomes in their threads: {sum(t is not None for t in told.values())} of "
        f"{len(filed)} filed ({len(run.requests) - len(filed)} requests never got a message)",
        "outcome delay (xapi task ended -> broadcast reply, real s): "
        + (
            f"min {min(delays):.1f}, median {median(delays):.1f}, max {max(delays):.1f}"
            if delays
            else "none delivered"
        ),
        "outcome shown (xapi task ended -> board or thread, real s): "
        + (
            f"min {min(shown):.1f}, median {median(shown):.1f}, max {max(shown):.1f}"
            if shown
            else "none shown"
        ),
        f"last task ended {last_end - run.marks['filed']:.0f} s after filing ended; last outcome "
        f"told {last_told - run.marks['filed']:.0f} s after",
        "request messages (edited in place) when the bot stopped: "
        + ", ".join(f"{n} show '{w}'" for w, n in _card_states(run).most_common()),
        f"thread lines missing when the bot stopped (of {len(filed)} each): "
        + (", ".join(f"{k} {v}" for k, v in sorted(missing.items())) or "none"),
    ]
    print("\n".join(lines))

    checks = {
        "every request posted": len(filed) == len(run.requests) == 50,
        "every final state in its thread": all(t is not None for t in told.values()),
        "no HTTP 429": not limited,
    }
    assert all(checks.values()), "not met: " + "; ".join(k for k, ok in checks.items() if not ok)
