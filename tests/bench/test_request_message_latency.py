"""From `/migrate` to its request message: a burst of 20 single requests, 20 ms a call.

What a person waits for beyond the ack: the request message with its checklist in the
channel. The bot (in this process, HTTP mode, production's outbox, the wall clock) serves
a generated pool in its own process (`large:vms=1000,hosts=16,srs=40`, as
`tests/bench/ack_latency/rig.py` runs the demo pool) with 20 ms added to every XAPI call.
Twenty people type `/migrate <vm> to <host>` at the same instant (twenty distinct running
VMs, each to the next host): signed slash commands sent by `ack_latency.load.post_within`
(Slack's 3 s deadline), each on its own thread. Per command: the ack (send -> HTTP answer,
as `test_ack_latency.py` measures it) and the request message (send -> the Slack double's
`chat.postMessage` of the message naming the VM).

The naive design is `ack_latency.naive`'s: the same bolt app doing the work before the ack,
so its checklist comes back in the ack (no request is filed); the same twenty commands. A
checklist later than Slack's 3 s never reaches the person.

Then the burst again (twenty other VMs) with the double enforcing Slack's limits: one
channel takes a burst of 3 posts, then 1 a second, so the twentieth message cannot appear
within 2 s whatever the bot does; reported, not asserted.

Target (issue 16): p99 under 2 s for the request messages (nearest rank: of 20, the
slowest). Asserts it, and that every command was acked within 3 s.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.simulator.scenario import read
from bot.slackdouble.payloads import form_body, signed_headers, slash_command
from bot.web import WebServer, wsgi_app
from tests.bench._evacuation import LATENCY_S, pool_process
from tests.bench._fleet import REQUESTER, command_line, real_time_bot, slack_double, wait_for
from tests.bench.ack_latency.load import post_within
from tests.bench.ack_latency.measure import DEADLINE_S, percentile
from tests.bench.ack_latency.naive import naive_app
from tests.support.slack_rig import CHANNEL, SECRET

SCENARIO = "large:vms=1000,hosts=16,srs=40"
BURST = 20
TARGET_S = 2.0
ACK_BENCH_P99_MS = 47  # README, "Ack latency": the bot's p99 at 50 requests/s


@dataclass(frozen=True)
class Sent:
    vm: str
    sent: float  # time.time() just before the send
    ack: float | None  # seconds to the HTTP answer; None: no answer within Slack's 3 s
    status: int | None


def _moves(count: int, skip: int = 0) -> list[tuple[str, str]]:
    data = read(SCENARIO)
    hosts = [h["name"] for h in data["hosts"]]
    running = [v for v in data["vms"] if v["host"]][skip : skip + count]
    return [(v["name"], hosts[(hosts.index(v["host"]) + 1) % len(hosts)]) for v in running]


def _burst(url: str, slack: Any, prefix: str, moves: list[tuple[str, str]]) -> list[Sent]:
    """Every command sent at the same instant, each from its own thread."""
    ready = threading.Barrier(len(moves))

    def one(index: int, vm: str, dest: str) -> Sent:
        fields = slash_command(
            f"{vm} to {dest}",
            user_id=REQUESTER,
            channel_id=CHANNEL,
            response_url=slack.response_url(f"{prefix}-{index}"),
        )
        body = form_body(fields)
        headers = signed_headers(SECRET, body)
        ready.wait()
        sent, start = time.time(), time.perf_counter()
        try:
            status = post_within(url, body, headers, DEADLINE_S)
        except OSError:
            return Sent(vm, sent, None, None)
        return Sent(vm, sent, time.perf_counter() - start, status)

    with ThreadPoolExecutor(len(moves)) as pool:
        futures = [pool.submit(one, i, vm, dest) for i, (vm, dest) in enumerate(moves)]
        return [f.result() for f in futures]


def _posted(slack: Any, sent: list[Sent], since: float) -> dict[str, float]:
    """When each VM's request message was accepted by the double (its chat.postMessage)."""
    found = {}
    for call in slack.calls_to("chat.postMessage"):
        if call.status != 200 or call.at < since or call.args.get("thread_ts"):
            continue
        text = str(call.args.get("text", ""))
        for s in sent:
            if s.vm not in found and s.vm in text:
                found[s.vm] = call.at
    return found


@dataclass
class Burst:
    design: str
    sent: list[Sent]
    shown: dict[str, float]  # vm -> seconds from its send to its checklist in Slack
    filed: dict[str, float] = field(default_factory=dict)  # vm -> send to request stored

    def stored(self) -> list[float]:
        return [self.filed.get(s.vm, float("inf")) for s in self.sent]

    def acks(self) -> list[float]:
        return [s.ack if s.ack is not None else float("inf") for s in self.sent]

    def checklists(self) -> list[float]:
        return [self.shown.get(s.vm, float("inf")) for s in self.sent]


def _line(name: str, values: list[float]) -> str:
    ms = [1000 * v for v in values]
    return (
        f"{name:<58} | {percentile(ms, 0.5):>7.0f} | {percentile(ms, 0.95):>7.0f} | "
        f"{percentile(ms, 0.99):>7.0f} | {max(ms):>7.0f}"
    )


@contextlib.contextmanager
def _naive_server(bot: Any) -> Iterator[str]:
    executor = ThreadPoolExecutor(5, thread_name_prefix="naive-listener")  # bolt's default
    app = naive_app(bot.service.core, bot.service.front.desk, bot.service.front.client, executor)
    web = WebServer(wsgi_app(bot.service.core.readiness, app), "127.0.0.1", 0).start()
    try:
        yield f"{web.url}/slack/events"
    finally:
        web.stop()
        executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory: pytest.TempPathFactory) -> list[Burst]:
    started = time.monotonic()
    moves = _moves(BURST * 2 + 2)
    warm, alone = moves[:1], moves[1:2]
    ours, limited = moves[2 : BURST + 2], moves[BURST + 2 :]
    out = []
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(pool_process(SCENARIO))
        slack = stack.enter_context(slack_double())
        bot = stack.enter_context(real_time_bot(pool.url, slack, tmp_path_factory.mktemp("rq")))
        url = bot.driver.events_url

        def measure(design: str, moves: list[tuple[str, str]], limits: bool) -> Burst:
            slack.enforce_limits = limits
            since = time.time()
            sent = _burst(url, slack, design, moves)
            wait_for(lambda: len(_posted(slack, sent, since)) == len(sent), 90)
            posted = _posted(slack, sent, since)
            stored = {r.vm_name: r.created_at for r in bot.store.open_requests()}
            time.sleep(2.0)
            return Burst(
                design,
                sent,
                {s.vm: posted[s.vm] - s.sent for s in sent if s.vm in posted},
                {s.vm: stored[s.vm] - s.sent for s in sent if s.vm in stored},
            )

        measure("warm", warm, False)  # as a running bot is: its sessions logged in
        out += [measure("alone", alone, False), measure("bot", ours, False)]
        out.append(measure("limits", limited, True))
        workers = bot.service.front.desk._pool._max_workers
        slack.enforce_limits = False
        with _naive_server(bot) as naive_url:
            sent = _burst(naive_url, slack, "naive", ours)
            shown = {s.vm: s.ack for s in sent if s.ack is not None and s.status == 200}
            out.append(Burst("naive", sent, shown))
    _report(out, time.monotonic() - started, workers)
    return out


def _report(runs: list[Burst], seconds: float, workers: int) -> None:
    alone, ours, limited, naive = runs
    head = f"{'from /migrate to ... (ms)':<58} | {'p50':>7} | {'p95':>7} | {'p99':>7} | {'max':>7}"
    unacked = {r.design: sum(s.ack is None or s.status != 200 for s in r.sent) for r in runs}
    lines = [
        "",
        "",
        f"Request message latency: a burst of {BURST} `/migrate <vm> to <host>` at once "
        f"({SCENARIO}, the pool in its own process), {LATENCY_S * 1000:.0f} ms per XAPI call, "
        "the bot in this process (production's outbox, wall clock)",
        f"command: {command_line(__file__)}",
        f"bench took {seconds:.0f} s; unacknowledged within {DEADLINE_S:.0f} s: {unacked}",
        head,
        "-" * len(head),
        _line("one /migrate alone: the request stored", alone.stored()),
        _line("one /migrate alone: the request message", alone.checklists()),
        _line("bot: the ack (HTTP answer)", ours.acks()),
        _line("bot: the request stored (checklist done, not yet posted)", ours.stored()),
        _line("bot: the request message with its checklist", ours.checklists()),
        _line("naive (work before the ack): its checklist, in the ack", naive.checklists()),
        _line("bot, Slack limits enforced: the ack", limited.acks()),
        _line("bot, Slack limits enforced: the request message", limited.checklists()),
        "",
        f"the ack benchmark (test_ack_latency.py, 50 requests/s for 30 s): bot p99 "
        f"{ACK_BENCH_P99_MS} ms (README)",
        f"the desk checks and files on {workers} threads: {BURST} checklists of "
        f"{alone.stored()[0]:.2f} s each (alone) queue {BURST / workers:.0f} deep",
        f"target: request message p99 < {TARGET_S:.0f} s: "
        + ("met" if percentile(ours.checklists(), 0.99) < TARGET_S else "NOT met")
        + f" ({percentile(ours.checklists(), 0.99):.2f} s); naive checklists later than "
        f"{DEADLINE_S:.0f} s (lost): {sum(v > DEADLINE_S for v in naive.checklists())}",
        "with limits: Slack takes a burst of 3 posts in a channel, then 1 a second, so the "
        f"{BURST}th message comes {BURST - 3} s or more after the burst whatever the bot does",
    ]
    print("\n".join(lines))


def test_request_message_p99(bursts: list[Burst]) -> None:
    ours = bursts[1]
    assert all(s.status == 200 and s.ack is not None for s in ours.sent)
    assert len(ours.shown) == BURST
    p99 = percentile(ours.checklists(), 0.99)
    assert p99 < TARGET_S, f"request message p99 {p99:.2f} s for a burst of {BURST}"
