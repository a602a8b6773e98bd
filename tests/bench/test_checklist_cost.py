"""Checklist cost: `Planner.preview` on 100, 1,000 and 5,000 VMs (16 hosts, 40 SRs).

The bot reads the small classes in bulk and looks the VM up by name, so a checklist costs
a fixed number of XAPI calls whatever the pool's size. The baseline is the same
`Planner.preview` with bulk reads and lookups by name replaced by one call per object
(`get_all`, then `get_record` for each), as a client that reads object by object would do.

Run on demand (`make bench`); prints a table. Asserts only counts and ratios, never
absolute times. With 20 ms per call the naive version takes minutes at 5,000 VMs, so above
`BENCH_NAIVE_MAX_VMS` (default 1,000) its 20 ms time is estimated from the measured call
count: its time at 0 ms + calls x 20 ms (the table marks it `est.`).
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from bot.clock import ManualClock
from bot.planning.command import MigrateCommand, parse
from bot.planning.planner import Planner, PlannerConfig
from bot.planning.preview import Preview
from bot.simulator import Simulator, SimulatorServer
from bot.simulator.faults import Timing
from bot.simulator.scenario import generate, load
from bot.xen.connection import Xapi, XenConfig

T = TypeVar("T")

SIZES = (100, 1_000, 5_000)
HOSTS, SRS = 16, 40
LATENCY_S = 0.020
REPEATS = 5  # bot previews per size and latency; the table shows the median
NAIVE_MAX_VMS = int(os.environ.get("BENCH_NAIVE_MAX_VMS", "1000"))


# -- the pool ---------------------------------------------------------------------------


@dataclass
class Bench:
    vms: int
    sim: Simulator
    xapi: Xapi
    command: MigrateCommand
    text: str


def _command(data: dict[str, Any]) -> str:
    """The first running VM with disks, to the next host, onto a shared SR it is not on."""
    vm = next(v for v in data["vms"] if v["host"] and v["disks"])
    hosts = [h["name"] for h in data["hosts"]]
    dest = hosts[(hosts.index(vm["host"]) + 1) % len(hosts)]
    sr = next(
        s["name"] for s in data["srs"] if "host" not in s and s["name"] != vm["disks"][0]["sr"]
    )
    return f"{vm['name']} to {dest} sr={sr}"


@pytest.fixture(params=SIZES, ids=lambda n: f"{n}vms")
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    """A generated pool of N VMs on 16 hosts and 40 SRs, served over XML-RPC."""
    vms = request.param
    data = generate(vms=vms, hosts=HOSTS, srs=SRS, seed=1)
    sim = Simulator(clock=ManualClock(), timing=Timing())
    load(sim, data)
    text = _command(data)
    command = parse(text)
    assert isinstance(command, MigrateCommand), command
    with SimulatorServer(sim) as server:
        xapi = Xapi(XenConfig(server.url, "root", "secret", timeout=60))
        try:
            xapi.call(lambda x: x.pool.get_all())  # log in: a running bot's session is warm
            yield Bench(vms, sim, xapi, command, text)
        finally:
            xapi.close()


# -- the naive baseline -----------------------------------------------------------------


class _OneByOne:
    """One class of `x` without bulk reads or server-side lookups by name."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def get_all_records(self) -> dict[str, dict[str, Any]]:
        return {ref: self._inner.get_record(ref) for ref in self._inner.get_all()}

    def get_by_name_label(self, label: str) -> list[str]:
        return [ref for ref, r in self.get_all_records().items() if r["name_label"] == label]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _OnePerObject:
    """`session.xenapi` as a client that reads every object with a call of its own."""

    def __init__(self, x: Any) -> None:
        self._x = x

    def __getattr__(self, cls: str) -> _OneByOne:
        return _OneByOne(getattr(self._x, cls))


class NaiveXapi:
    """The bot's `Xapi`, handing the planner a one-call-per-object view of the session."""

    def __init__(self, xapi: Xapi) -> None:
        self._xapi = xapi

    def call(self, fn: Callable[[Any], T]) -> T:
        return self._xapi.call(lambda x: fn(_OnePerObject(x)))


# -- measuring --------------------------------------------------------------------------


@dataclass
class Run:
    counts: Counter[str]
    seconds: float
    preview: Preview

    @property
    def calls(self) -> int:
        return sum(self.counts.values())


@dataclass
class Row:
    vms: int
    verdict: str
    bot: Run  # at LATENCY_S, median time of REPEATS
    bot_0ms: Run
    naive_0ms: Run
    naive: Run | None  # at LATENCY_S; None when not measured (estimated)

    @property
    def naive_estimate(self) -> float:
        """The naive time at LATENCY_S from its run at 0 ms: calls x latency more."""
        return self.naive_0ms.seconds + self.naive_0ms.calls * LATENCY_S

    @property
    def naive_seconds(self) -> float:
        return self.naive.seconds if self.naive is not None else self.naive_estimate


def _run(bench: Bench, planner: Planner, latency: float, repeats: int) -> Run:
    bench.sim.faults.latency_s = latency
    runs = []
    for _ in range(repeats):
        bench.sim.calls.reset()
        start = time.perf_counter()
        preview = planner.preview(bench.command)
        seconds = time.perf_counter() - start
        runs.append(Run(Counter(bench.sim.calls.counts), seconds, preview))
    bench.sim.faults.latency_s = 0.0
    assert all(r.counts == runs[0].counts for r in runs), "call counts differ between runs"
    median = statistics.median(r.seconds for r in runs)
    return Run(runs[0].counts, median, runs[0].preview)


def _verdict(preview: Preview) -> str:
    blockers = [c.key for c in preview.checks if str(c.severity) == "blocker"]
    return f"blocked: {', '.join(blockers)}" if blockers else "pass"


@pytest.fixture(scope="module")
def rows() -> dict[int, Row]:
    return {}


def test_checklist_cost(bench: Bench, rows: dict[int, Row]) -> None:
    """One pool size: the bot's and the naive preview, the same checklist, their cost."""
    started = time.perf_counter()
    planner = Planner(bench.xapi, PlannerConfig())
    naive_planner = Planner(NaiveXapi(bench.xapi), PlannerConfig())  # type: ignore[arg-type]
    bot_0ms = _run(bench, planner, 0.0, REPEATS)
    bot = _run(bench, planner, LATENCY_S, REPEATS)
    naive_0ms = _run(bench, naive_planner, 0.0, 1)
    naive = _run(bench, naive_planner, LATENCY_S, 1) if bench.vms <= NAIVE_MAX_VMS else None

    assert naive_0ms.preview.summary() == bot.preview.summary(), "not the same checklist"
    assert bot.counts == bot_0ms.counts
    assert naive is None or naive.counts == naive_0ms.counts
    assert "VM.get_all_records" not in bot.counts
    assert naive_0ms.calls > bot.calls
    rows[bench.vms] = Row(bench.vms, _verdict(bot.preview), bot, bot_0ms, naive_0ms, naive)
    print(
        f"\n  {bench.vms:,} VMs ({bench.text!r}) measured in {time.perf_counter() - started:.1f} s",
        end="",
    )


def test_cost_table(rows: dict[int, Row], request: pytest.FixtureRequest) -> None:
    """The table; the bot's calls are the same at every size, the naive calls grow."""
    if set(rows) != set(SIZES):
        pytest.skip(f"needs every size measured, have {sorted(rows)}")
    table = [rows[n] for n in SIZES]
    ms = f"{LATENCY_S * 1000:.0f} ms"
    head = (
        f"{'VMs':>6} | {'bot calls':>9} | {'bot s':>6} | {'bot s 0ms':>9} | "
        f"{'naive calls':>11} | {'naive s':>12} | {'x calls':>7} | {'x time':>6} | checklist"
    )
    lines = [
        "",
        "",
        f"Checklist cost: Planner.preview, {HOSTS} hosts, {SRS} SRs, {ms} added to every "
        f"XAPI call (s = median of {REPEATS} for the bot, one run for the naive version)",
        head,
        "-" * len(head),
    ]
    for r in table:
        naive_s = f"{r.naive_seconds:.2f}" + ("" if r.naive else " est.")
        call_ratio = r.naive_0ms.calls / r.bot.calls
        time_ratio = r.naive_seconds / r.bot.seconds
        lines.append(
            f"{r.vms:>6,} | {r.bot.calls:>9} | {r.bot.seconds:>6.2f} | {r.bot_0ms.seconds:>9.3f} | "
            f"{r.naive_0ms.calls:>11,} | {naive_s:>12} | "
            f"{call_ratio:>6.0f}x | {time_ratio:>5.0f}x | {r.verdict}"
        )
    per_method = ", ".join(f"{m} {n}" for m, n in sorted(table[0].bot.counts.items()))
    lines.append(f"\nbot calls per checklist, at every size: {per_method}")
    growing = sorted(
        m
        for m in table[-1].naive_0ms.counts
        if table[-1].naive_0ms.counts[m] > table[0].naive_0ms.counts[m]
    )
    for method in growing:
        counts = " / ".join(f"{r.naive_0ms.counts[method]:,}" for r in table)
        lines.append(f"naive calls that grow with the pool: {method} {counts}")
    fixed = sum(n for m, n in table[0].naive_0ms.counts.items() if m not in growing)
    lines.append(f"naive calls that do not grow (hosts, metrics, PBDs, SRs, the VM's own): {fixed}")
    if any(r.naive is None for r in table):
        checked = "; ".join(
            f"{r.vms:,} VMs {r.naive_estimate:.2f} s est. vs {r.naive.seconds:.2f} s measured"
            for r in table
            if r.naive is not None
        )
        lines.append(
            f"est. = the naive version's time at 0 ms + its calls x {ms}, not run above "
            f"BENCH_NAIVE_MAX_VMS={NAIVE_MAX_VMS} (the same estimate where measured: {checked})"
        )
    print("\n".join(lines))

    assert len({frozenset(r.bot.counts.items()) for r in table}) == 1, "bot calls vary"
    naive_calls = [r.naive_0ms.calls for r in table]
    assert naive_calls == sorted(naive_calls) and naive_calls[0] < naive_calls[-1]
    assert all(r.naive_0ms.calls > r.bot.calls for r in table)
    assert all(r.naive_seconds > r.bot.seconds for r in table if r.naive)
