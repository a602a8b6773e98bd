"""Slack for a 200-VM plan: no 429, every outcome delivered, every message within Block Kit.

`/migrate evacuate host01` on a generated pool with 200 VMs running on host01
(`large:vms=400,hosts=8,srs=16,on_first=200`), typed and approved once through the real
bot (`python -m bot run`, HTTP mode, signed requests) against the Slack double enforcing
Slack's published limits (`chat.postMessage` a burst of 3 then 1 a second per channel,
`chat.update` 50 a minute per workspace; over them HTTP 429 with Retry-After). The moves
are live at the simulator's default speed (1 GB/s: 1 to 4 s of copying) on
`BENCH_SLACK_SLOTS` slots (default 10), 20 ms added to every XAPI call: 200 moves end in
about a minute and a half, which asks more of Slack per second than slow moves would.
`FAILURES` of the VMs fail their migration half-way (injected), so the thread must carry a
reply for each (with its Retry offline) besides the batch's outcome.

Counts every Web API call the bot made from the `/migrate` to its stop (SIGTERM: it
flushes its outbox): posts, edits, 429s; checks every message it sent against Block Kit's
limits (`bot.slackdouble.blockkit`: 50 blocks, 3,000 characters a section, ...) and its
text against Slack's 40,000 characters; and that every outcome reached Slack: the batch's
outcome broadcast in its thread, each failed move's reply, and each move's end on the
board (the bot marks a move `announced` once a board showing its end was accepted).

The naive design is 200 single requests in the channel (one `/migrate` and one approval
per VM). Measuring it would take the channel's post budget for a quarter of an hour, so
it is estimated: `NAIVE_SINGLES` single requests are filed, approved and run one after
another on the same bot after the batch, their Slack calls counted, and the mean scaled
to 200 (the table says so).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import pytest

from bot.simulator.scenario import generate
from bot.slackdouble.driver import buttons
from bot.slackdouble.limits import POST_PER_SECOND, TIERS
from bot.slackdouble.methods import MAX_TEXT
from tests.bench._evacuation import (
    MESSAGE_METHODS,
    BatchRun,
    block_kit_problems,
    largest,
    run_batch,
)
from tests.bench._fleet import APPROVER, REQUESTER, command_line, wait_for
from tests.support.slack_rig import CHANNEL

VMS, HOSTS, SRS, ON_FIRST = 400, 8, 16, 200
SLOTS = int(os.environ.get("BENCH_SLACK_SLOTS", "10"))
FAILURES = 5
NAIVE_SINGLES = 4
CHAT = ("chat.postMessage", "chat.update")


def _failing(data: dict[str, Any]) -> list[str]:
    """Every 40th VM on host01 fails its migration half-way."""
    on_first = [v["name"] for v in data["vms"] if v["host"] == "host01"]
    return on_first[:: len(on_first) // FAILURES][:FAILURES]


def _singles(data: dict[str, Any]) -> list[tuple[str, str]]:
    """VMs running on host02, each to host03: single requests after the batch."""
    on_second = [v["name"] for v in data["vms"] if v["host"] == "host02"]
    return [(vm, "host03") for vm in on_second[:NAIVE_SINGLES]]


def _quiet(slack: Any, seconds: float = 2.0) -> bool:
    calls = slack.calls
    return not calls or time.time() - calls[-1].at >= seconds


def _file_singles(moves: list[tuple[str, str]]) -> Any:
    """`after` for `run_batch`: file each move as a single request, approve it, wait for its
    outcome in its thread and for Slack to go quiet; the Slack calls of each."""

    def after(bot: Any, slack: Any) -> dict[str, Any]:
        wait_for(lambda: _quiet(slack), 60)
        spans = []
        for vm, dest in moves:
            start = time.time()
            bot.driver.command(f"{vm} to {dest}", REQUESTER)

            def row(vm: str = vm) -> tuple[Any, ...] | None:
                rows = bot.rows(
                    "SELECT id, state, message_ts, thread_ts FROM requests "
                    f"WHERE kind='move' AND batch_id IS NULL AND vm_name='{vm}'"
                )
                return rows[0] if rows and rows[0][2] else None

            found = wait_for(row, 60)
            assert found, f"no request message for {vm}"
            message = slack.message(CHANNEL, found[2])
            assert "approve" in buttons(message), message.text
            bot.driver.press(message, "approve", APPROVER)
            wait_for(
                lambda ts=found[3]: any(m.reply_broadcast for m in slack.replies(CHANNEL, ts)),
                120,
            )
            wait_for(lambda: _quiet(slack), 60)
            state = bot.rows(f"SELECT state FROM requests WHERE id={found[0]}")[0][0]
            spans.append((start, time.time(), state))
        return {"singles": spans}

    return after


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> BatchRun:
    started = time.monotonic()
    data = generate(vms=VMS, hosts=HOSTS, srs=SRS, seed=1, on_first=ON_FIRST)
    failing = _failing(data)
    faults = tuple({"fault": "fail_next_migration", "vm": vm, "at": 0.5} for vm in failing)
    result = run_batch(
        tmp_path_factory.mktemp("slack"),
        data,
        "evacuate host01",
        SLOTS,
        faults=faults,
        after=_file_singles(_singles(data)),
    )
    result.extra["wall"] = time.monotonic() - started
    result.extra["failing"] = failing
    _report(result)
    return result


def _kinds(calls: list[Any]) -> Counter[str]:
    return Counter(c.method for c in calls)


def _report(run: BatchRun) -> None:
    batch_calls = [c for c in run.calls if run.marks["typed"] <= c.at < run.marks["stopping"]]
    singles = run.extra["singles"]
    single_calls = [[c for c in run.calls if start <= c.at <= end] for start, end, _ in singles]
    batch_calls = [c for c in batch_calls if not any(s <= c.at <= e for s, e, _ in singles)]
    flush = [c for c in run.calls if c.at >= run.marks["stopping"]]
    everything = batch_calls + flush
    kinds = _kinds(everything)
    limited = [c for c in everything if c.status == 429]
    other = [c for c in everything if c.status not in (200, 429)]
    per_single = Counter()
    for calls in single_calls:
        per_single.update(_kinds(calls))
    n = len(singles)
    mean = {m: k / n for m, k in per_single.items()}
    moves = len(run.children)
    naive = {m: k * moves for m, k in mean.items()}
    naive_posts = naive.get("chat.postMessage", 0.0)
    naive_edits = naive.get("chat.update", 0.0)
    posts, edits = kinds["chat.postMessage"], kinds["chat.update"]
    problems = block_kit_problems(everything)
    too_long = [c for c in everything if len(str(c.args.get("text") or "")) > MAX_TEXT]
    blocks, section = largest(everything)
    replies = run.failure_replies()
    announced = sum(c["announced"] == c["state"] for c in run.children)
    states = Counter(c["state"] for c in run.children)
    told_after = run.marks["told"] - run.marks["ended"]
    naive_channel = naive_posts / POST_PER_SECOND
    naive_updates = naive_edits / TIERS["chat.update"]
    fails = run.log.count("Slack call failed")
    others = ", ".join(f"{m} {k}" for m, k in kinds.items() if m not in CHAT)
    head = f"{'figure':<56} | {'bot: one batch':>16} | {'naive: ' + str(moves) + ' singles':>18}"
    lines = [
        "",
        "",
        f"Slack for a {moves}-VM evacuation (large:vms={VMS},hosts={HOSTS},srs={SRS},"
        f"on_first={ON_FIRST}), {SLOTS} slots, {FAILURES} failures injected; bot = "
        "`python -m bot run`; Slack double enforcing limits; naive = "
        f"{moves} single requests, estimated from {n} measured one after another",
        f"command: {command_line(__file__)}",
        f"bench took {run.extra['wall']:.0f} s; batch {run.batch['state']} "
        f"{run.marks['ended'] - run.marks['approved']:.0f} s after its approval: "
        f"{(run.batch['outcome'] or '')[:160]!r}...; moves {dict(states)}",
        "",
        head,
        "-" * len(head),
        f"{'Web API calls (typed -> stopped)':<56} | {len(everything):>16} | "
        f"{sum(naive.values()):>18.0f}",
        f"{'  chat.postMessage (posts)':<56} | {posts:>16} | {naive_posts:>18.0f}",
        f"{'  chat.update (edits)':<56} | {edits:>16} | {naive_edits:>18.0f}",
        f"{'  other: ' + others:<56} | {sum(kinds[m] for m in kinds if m not in CHAT):>16} | "
        f"{sum(v for m, v in naive.items() if m not in CHAT):>18.0f}",
        f"{'HTTP 429 (target 0)':<56} | {len(limited):>16} | {'':>18}",
        f"{'other failed calls (status not 200)':<56} | {len(other):>16} | {'':>18}",
        f"{'channel time its posts need at 1 a second (s)':<56} | "
        f"{posts / POST_PER_SECOND:>16.0f} | {naive_channel:>18.0f}",
        f"{'chat.update budget its edits need at 50 a minute (min)':<56} | "
        f"{edits / TIERS['chat.update']:>16.1f} | {naive_updates:>18.1f}",
        f"{'batch outcome broadcast in its thread':<56} | "
        f"{'yes' if run.outcome_told() else 'NO':>16} | {'':>18}",
        f"{'failed moves with their own reply in the thread':<56} | "
        f"{f'{sum(replies.values())} of {len(replies)}':>16} | {'':>18}",
        f"{'moves whose end a board showed (announced)':<56} | "
        f"{f'{announced} of {moves}':>16} | {'':>18}",
        f"{'Block Kit problems in messages sent (target 0)':<56} | {len(problems):>16} | {'':>18}",
        f"{'texts over 40,000 characters':<56} | {len(too_long):>16} | {'':>18}",
        "",
        f"largest message: {blocks} blocks (limit 50); longest section: {section} characters "
        "(limit 3,000); messages checked: "
        f"{sum(c.method in MESSAGE_METHODS for c in everything)}",
        f"everything told {told_after:.1f} s after the batch ended; calls during SIGTERM's "
        f"flush: {len(flush)}; bot log: {fails} outbox retries ('Slack call failed')",
        "per single request (measured, mean of "
        f"{n}): "
        + ", ".join(f"{m} {k:.1f}" for m, k in sorted(mean.items()))
        + "; their states: "
        + ", ".join(state for _, _, state in singles),
        "batch posts by kind: " + _post_kinds(everything, run),
        "single requests' posts by kind: "
        + _post_kinds([c for calls in single_calls for c in calls], run),
    ]
    if problems:
        lines.append("Block Kit problems: " + "; ".join(f"{m}: {p}" for m, p in problems[:5]))
    print("\n".join(lines))


def _post_kinds(calls: list[Any], run: BatchRun) -> str:
    kinds: Counter[str] = Counter()
    for call in calls:
        if call.method != "chat.postMessage":
            continue
        text = str(call.args.get("text", ""))
        if not call.args.get("thread_ts"):
            kinds["request message"] += 1
        elif call.args.get("reply_broadcast") in (True, "true", "1", 1):
            kinds["outcome (broadcast)"] += 1
        elif any(f"#{c['id']} " in text for c in run.failed):
            kinds["failed move's reply"] += 1
        else:
            kinds["thread: " + text[:30]] += 1
    return ", ".join(f"{k} {v}" for k, v in kinds.most_common())


def test_no_429(run: BatchRun) -> None:
    limited = [c for c in run.calls if c.status == 429 and c.at < run.marks["stopped"]]
    assert not limited, Counter(c.method for c in limited)


def test_every_outcome_delivered(run: BatchRun) -> None:
    assert len(run.children) == ON_FIRST
    assert len(run.failed) == FAILURES, Counter(c["state"] for c in run.children)
    assert run.outcome_told(), "no outcome broadcast in the batch's thread"
    assert all(run.failure_replies().values()), run.failure_replies()
    assert all(c["announced"] == c["state"] for c in run.children)


def test_block_kit_limits(run: BatchRun) -> None:
    assert block_kit_problems(run.calls) == []
    assert all(len(str(c.args.get("text") or "")) <= MAX_TEXT for c in run.calls)
