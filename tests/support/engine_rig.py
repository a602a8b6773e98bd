"""The engine wired to a simulated pool, a SQLite store and one manual clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.engine import events as ev
from bot.engine.engine import Engine, EngineConfig
from bot.planning.command import MigrateCommand, parse
from bot.planning.planner import Planner, PlannerConfig
from bot.store.records import Request
from bot.store.store import Store
from bot.xen.connection import Xapi, XenConfig
from bot.xen.gateway import Xen
from bot.xen.watch import TaskWatcher
from tests.support.pool import Pool, Ticker


@dataclass
class Rig:
    pool: Pool
    db_path: Path
    xapi: Xapi
    store: Store
    watcher: TaskWatcher
    engine: Engine
    events: list[ev.Event] = field(default_factory=list)

    @property
    def dispatched(self) -> list[int]:
        """The requests the engine queued for a run (what the scheduler would take)."""
        return [e.request_id for e in self.events if isinstance(e, ev.Queued)]

    def command(self, text: str) -> MigrateCommand:
        command = parse(text)
        assert isinstance(command, MigrateCommand), command
        return command

    def request(self, text: str, requester: str = "U1") -> Request:
        command = self.command(text)
        return self.engine.submit(command, self.engine.preview(command), requester, "C1")

    def approved(self, text: str) -> Request:
        req = self.request(text)
        self.engine.approve(req.id, "ULEAD")
        return req

    def run(self, request_id: int) -> Request:
        """Run to the end with the clock moving as real time would."""
        with Ticker(self.pool.clock, step=0.5):
            return self.engine.run(request_id)

    def of(self, kind: type, request_id: int | None = None) -> list:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (request_id is None or e.request_id == request_id)
        ]

    def close(self) -> None:
        self.watcher.stop()
        self.xapi.close()
        self.store.close()


def build(
    pool: Pool, db_path: Path, fence: Callable[[], bool] | None = None, **config: float
) -> Rig:
    """A fresh bot process on the same pool and database file; `fence` as a replica's."""
    xapi = Xapi(XenConfig(pool.server.url, "root", "secret", timeout=10))
    store = Store(f"sqlite:///{db_path}", pool.clock)
    # The pool clock runs ~50x real time here: pause between event batches accordingly.
    watcher = TaskWatcher(xapi, poll_seconds=5.0, retry_seconds=0.05, batch_pause=0.01).start()
    planner = Planner(xapi, PlannerConfig(throughput_mbps=200), store.measured_throughput)
    xen = Xen(xapi, watcher)
    engine = Engine(store, planner, xen, pool.clock, EngineConfig(**config), fence)  # type: ignore[arg-type]
    rig = Rig(pool, db_path, xapi, store, watcher, engine)
    engine.subscribe(rig.events.append)
    return rig


def rig_for(pool: Pool, tmp_path: Path) -> Iterator[Rig]:
    rig = build(pool, tmp_path / "bot.db", stuck_grace_seconds=120, stall_seconds=600)
    yield rig
    rig.close()


def in_thread(target, *args) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread
