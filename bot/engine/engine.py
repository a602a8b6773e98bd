"""The migration state machine at work, behind one small facade.

Every state change is a compare-and-set in the store, so two presses or two workers never
start one migration twice. The work is done by four parts that share the store, the
planner and the pool (`part.Shared`):

    Requests    a request's life before and beside its run (`requests.py`)
    Runner      a run's steps, once each, and the recovery of a VM it shut down (`runner.py`)
    StuckVMs    leftover operations and the toolstack restart that clears them (`stuck.py`)
    Deadlines   windows, expiry, the stuck grace, the guest agent's report (`deadlines.py`)
    Batches     many moves under one approval: a child request per VM (`batches.py`)

Whoever runs queued requests (the scheduler) subscribes to `events.Queued`.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.clock import Clock
from bot.engine import events as ev
from bot.engine.batches import Batches
from bot.engine.deadlines import Deadlines, Due
from bot.engine.part import EngineConfig, Shared
from bot.engine.requests import Requests
from bot.engine.runner import Runner
from bot.engine.stuck import StuckVMs
from bot.planning.batch_planner import BatchPlanner
from bot.planning.planner import Planner
from bot.states import State
from bot.store.records import Request
from bot.store.store import Store
from bot.xen.gateway import Xen

__all__ = ["Engine", "EngineConfig"]


class Engine:
    def __init__(
        self,
        store: Store,
        planner: Planner,
        xen: Xen,
        clock: Clock,
        config: EngineConfig,
        fence: Callable[[], bool] | None = None,
    ) -> None:
        """`fence`: asked before every XAPI step whether this process may still issue it
        (replicas: it leads the pool); always yes without."""
        self.shared = Shared(store, planner, xen, clock, config)
        if fence is not None:
            self.shared.fence = fence
        self.store, self.planner, self.clock, self.config = store, planner, clock, config
        stuck = StuckVMs(self.shared)
        batches = Batches(self.shared, BatchPlanner(planner, config.max_concurrent))
        requests, runner, deadlines = (
            Requests(self.shared, stuck, batches),
            Runner(self.shared, stuck, batches),
            Deadlines(self.shared),
        )
        # What the rest of the bot asks of the engine, part by part.
        self.preview, self.submit, self.recheck = (
            requests.preview,
            requests.submit,
            requests.recheck,
        )
        self.approve, self.reject, self.cancel = requests.approve, requests.reject, requests.cancel
        self.revise, self.withdraw = requests.revise, requests.withdraw
        self.retry_offline, self.refile = requests.retry_offline, requests.refile
        self.run: Callable[[int], Request] = runner.run
        self.check_stuck, self.restart_toolstack = stuck.check_stuck, stuck.restart_toolstack
        self.due: Callable[[], list[Due]] = deadlines.due
        self.expire, self.miss, self.start_window = (
            deadlines.expire,
            deadlines.miss,
            deadlines.start_window,
        )
        self.mark_checked, self.check_agent = deadlines.mark_checked, deadlines.check_agent
        self.preview_batch, self.submit_batch = batches.preview, batches.submit
        self.enable_host, self.reenable_host = batches.enable, batches.reenable

    def subscribe(self, listener: Callable[[ev.Event], None]) -> None:
        self.shared.listeners.append(listener)

    def stop(self) -> None:
        """Stop issuing steps; running tasks are left for the next start to re-attach."""
        self.shared.stopping.set()

    def recoverable(self) -> list[Request]:
        """Requests a fresh start must pick up (queued, running); a batch's children held
        for its run are its to queue."""
        found = self.store.in_states(State.APPROVED, State.QUEUED, State.RUNNING)
        return [r for r in found if not (r.batch_id and r.state == State.APPROVED)]
