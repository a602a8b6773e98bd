"""What the ack-latency benchmark measures: each request's answer time, the CPU by thread
and the garbage collector's pauses in the bot's process, and one run's figures."""

from __future__ import annotations

import gc
import math
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

DEADLINE_S = 3.0  # Slack's: an answer later than this is a timeout for the person


@dataclass(frozen=True)
class Result:
    kind: str
    status: int | None  # None: no HTTP answer (timeout, reset)
    seconds: float  # send -> response (or -> giving up)
    lag: float  # how late the generator sent it (open loop: should stay near 0)
    error: str = ""
    sent: float = 0.0  # time.perf_counter() when sent: the system's monotonic clock

    @property
    def acked(self) -> bool:
        return self.status == 200 and self.seconds <= DEADLINE_S


@dataclass(frozen=True)
class Pause:
    generation: int
    start: float  # time.perf_counter(): comparable with the load process's `Result.sent`
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class ThreadCpu:
    """CPU seconds by thread kind over a stretch of time (Linux: /proc/self/task).

    The bot shares its process with the Slack double (and with the pool when inline): this
    says who used the CPU (and the GIL) while the bot was answering. Threads that ended
    during the stretch are counted together as "ended threads".
    """

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self.process = time.process_time()
        self.wall = time.perf_counter()
        self.before = self._by_thread()
        self.pauses: list[Pause] = []  # the world stops
        self._gc_started = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            ended = time.perf_counter()
            self.pauses.append(Pause(info["generation"], self._gc_started, ended))

    @classmethod
    def _seconds(cls, tid: int) -> float | None:
        try:
            with open(f"/proc/self/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / cls.TICK  # utime + stime

    @classmethod
    def _by_thread(cls) -> dict[int, tuple[str, float]]:
        out = {}
        for thread in threading.enumerate():
            seconds = cls._seconds(thread.native_id or 0)
            if seconds is not None:
                out[thread.native_id or 0] = (_kind_of(thread), seconds)
        return out

    def stop(self) -> tuple[float, float, Counter[str]]:
        """(wall, process CPU, CPU by thread kind) since the start."""
        gc.callbacks.remove(self._gc)
        wall = time.perf_counter() - self.wall
        process = time.process_time() - self.process
        used: Counter[str] = Counter()
        for tid, (kind, seconds) in self._by_thread().items():
            used[kind] += seconds - self.before.get(tid, (kind, 0.0))[1]
        used["ended threads"] += max(0.0, process - sum(used.values()))
        return wall, process, used


def _kind_of(thread: threading.Thread) -> str:
    """`desk`, `waitress`, `http`, or for a server's per-connection thread, whose server."""
    owner = getattr(getattr(thread, "_target", None), "__self__", None)
    if owner is not None and "process_request_thread" in thread.name:
        module = type(owner).__module__
        return "pool (XML-RPC)" if "simulator" in module else "Slack double (HTTP)"
    name = re.sub(r"\s*\(.*\)$", "", thread.name)
    name = re.sub(r"[-_]?\d+", "", name)
    if name == "ThreadPoolExecutor":
        return "bolt listeners"
    if name == "Thread":
        target = getattr(getattr(thread, "_target", None), "__qualname__", "?")
        return f"other ({target})"
    return name


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Run:
    results: list[Result]
    wall: float
    cpu: tuple[float, float, Counter[str]]
    gc_pauses: list[Pause]
    design: str = ""
    drain: str = ""
    did: Counter[str] = field(default_factory=Counter)  # what the requests made happen

    @property
    def unacked(self) -> int:
        return sum(not r.acked for r in self.results)

    def ms(self, q: float, kind: str | None = None) -> float:
        chosen = [r.seconds for r in self.results if kind in (None, r.kind)]
        return 1000 * percentile(chosen, q) if chosen else float("nan")

    @property
    def p99(self) -> float:
        return self.ms(0.99)
