"""A demo pool on a manual clock, served over HTTP, and real XenAPI sessions to it."""

from __future__ import annotations

import threading
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import XenAPI

from bot.clock import ManualClock
from bot.simulator import Simulator, SimulatorServer, simulator
from bot.simulator.faults import Timing
from bot.simulator.scenario import load


@dataclass
class Pool:
    sim: Simulator
    server: SimulatorServer
    clock: ManualClock
    session: XenAPI.Session
    opened: list[XenAPI.Session]

    @property
    def x(self) -> Any:
        return self.session.xenapi

    def ref(self, cls: str, name: str) -> str:
        """The one object of `cls` with this name-label (VMs: not templates, snapshots)."""
        refs = [
            r
            for r in getattr(self.x, cls).get_by_name_label(name)
            if cls != "VM" or not self.x.VM.get_is_a_snapshot(r)
        ]
        assert len(refs) == 1, f"{cls} {name!r}: {refs}"
        return refs[0]

    def disks(self, vm: str) -> list[str]:
        return [
            self.x.VBD.get_VDI(vbd)
            for vbd in self.x.VM.get_VBDs(vm)
            if self.x.VBD.get_type(vbd) == "Disk"
        ]

    def run(self, task: str, step: float = 1.0, limit: float = 3600.0) -> dict[str, Any]:
        """Advance the clock until the task settles; its final record."""
        spent = 0.0
        while self.x.task.get_status(task) == "pending":
            assert spent < limit, "task did not settle"
            self.clock.advance(step)
            spent += step
        return self.x.task.get_record(task)

    def receive(self, host: str) -> dict[str, str]:
        return self.x.host.migrate_receive(host, self.x.network.get_all()[0], {})

    def login(self, url: str | None = None) -> XenAPI.Session:
        session = XenAPI.Session(url or self.server.url)
        self.opened.append(session)
        session.xenapi.login_with_password("root", "secret", "1.0", "tests")
        return session

    def raw(self) -> xmlrpc.client.ServerProxy:
        """A plain XML-RPC proxy, to see xapi's envelope without the client's handling."""
        proxy = xmlrpc.client.ServerProxy(self.server.url)
        self.opened.append(proxy)  # type: ignore[arg-type]
        return proxy

    def close(self) -> None:
        for session in self.opened:
            session("close")()


class Ticker:
    """Moves the manual clock in the background, as real time would."""

    def __init__(self, clock: ManualClock, step: float = 0.2, every: float = 0.01) -> None:
        self.clock, self.step, self.every = clock, step, every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            self.clock.advance(self.step)

    def __enter__(self) -> Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


def demo_pool() -> Iterator[Pool]:
    """The built-in demo scenario on a manual clock, served on 127.0.0.N."""
    clock = ManualClock()
    yield from _serve(simulator("demo", clock=clock), clock)


def scenario_pool(data: dict[str, Any], clock: ManualClock | None = None) -> Iterator[Pool]:
    """A scenario (e.g. `scenario.generate()`'s) on a manual clock, served like the demo;
    pass `clock` to run it on another pool's (one bot, several pools)."""
    clock = clock or ManualClock()
    sim = Simulator(clock=clock, timing=Timing(**data.get("timing", {})))
    load(sim, data)
    yield from _serve(sim, clock)


def _serve(sim: Simulator, clock: ManualClock) -> Iterator[Pool]:
    with SimulatorServer(sim) as server:
        p = Pool(sim, server, clock, None, [])  # type: ignore[arg-type]
        p.session = p.login()
        yield p
        p.close()
