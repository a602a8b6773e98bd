"""The pools one bot serves, each with its own engine (its concurrency limit, watcher,
silent-master wait and, among replicas, its leader): which engine a stored request
belongs to. Which pool a new command means is `bot.planning.pool_finder`'s question.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.engine import events as ev
from bot.engine.engine import Engine
from bot.planning.pool_finder import PoolFinder
from bot.store.records import Request


class Fleet:
    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self.engines = dict(engines)
        self.finder = PoolFinder({name: e.planner for name, e in self.engines.items()})

    @property
    def names(self) -> list[str]:
        return list(self.engines)

    @property
    def several(self) -> bool:
        return len(self.engines) > 1

    def engine(self, req: Request) -> Engine:
        """The engine of the request's pool."""
        return self.pool(req.pool)

    def pool(self, name: str) -> Engine:
        self.finder.known(name)
        return self.engines[name]

    def subscribe(self, listener: Callable[[ev.Event], None]) -> None:
        for engine in self.engines.values():
            engine.subscribe(listener)

    def stop(self) -> None:
        self.finder.stop()
