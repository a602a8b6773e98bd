"""Which pool a command means, when one bot serves several.

A command names its pool (`vm01@pool-b`, `pool=pool-b`) or the pool is the one that has
the names it gives: the VMs (or the host it empties, or a tag), looked up in every pool the
requester may use, side by side, so a pool that does not answer costs one lookup's
timeout and never decides for another. Hosts and SRs then belong to that pool; one found
only in another pool is a cross-pool move, which the bot does not do (yet).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from bot.errors import UserError
from bot.planning.command import BatchCommand, MigrateCommand
from bot.planning.planner import Planner
from bot.planning.resolve import NotFound, did_you_mean

log = logging.getLogger(__name__)
LOOKUP_SECONDS = 10.0  # a pool that has not said whether it has a name by then: not asked
Command = TypeVar("Command", MigrateCommand, BatchCommand)
T = TypeVar("T")


class PoolFinder:
    def __init__(self, planners: Mapping[str, Planner]) -> None:
        self.planners = dict(planners)
        self._lookups = ThreadPoolExecutor(max(4, 2 * len(planners)), thread_name_prefix="lookup")

    def stop(self) -> None:
        self._lookups.shutdown(wait=False, cancel_futures=True)

    def known(self, name: str) -> None:
        """Raise a plain sentence unless this bot serves a pool named `name`."""
        if name not in self.planners:
            raise UserError(
                f"This bot does not serve a pool named {name!r} "
                f"(it serves {_listed(list(self.planners))})."
            )

    def choose(self, command: Command, allowed: Sequence[str]) -> tuple[str, Command]:
        """The pool `command` is for, among `allowed` (those the requester may use), and the
        command with its names bare (`vm01@pool-b` -> `vm01`)."""
        command, named = self._named_pool(command)
        if named is not None:
            if named not in allowed:
                raise UserError(f"You may not file migrations in pool {named}.")
            return named, command
        if not allowed:
            raise UserError("You may not file migrations in any pool this bot serves.")
        if len(allowed) == 1:
            return allowed[0], command
        kind, names = _subject(command)
        return self.holder(kind, names, allowed), command

    def enable_pool(self, host: str) -> tuple[str, str]:
        """`enable host1[@pool]`: the host's pool and its bare name (who may act there is
        that pool's question)."""
        bare, named = self._split(host)
        if named is not None:
            return named, bare
        if len(self.planners) == 1:
            return next(iter(self.planners)), bare
        return self.holder("host", [bare], list(self.planners), takes_option=False), bare

    def within(self, pool: str, call: Callable[[], T]) -> T:
        """Run a preview in `pool`; a host or SR found only in another pool is a cross-pool
        move, said as such instead of "no host"."""
        try:
            return call()
        except NotFound as missing:
            if missing.kind not in ("host", "SR") or len(self.planners) == 1:
                raise
            others = [name for name in self.planners if name != pool]
            found = self._ask(others, missing.kind, [missing.text])
            elsewhere = [name for name, has in found.items() if has and missing.text in has]
            if not elsewhere:
                raise
            raise UserError(
                f"Cross-pool migration is not supported (yet): the VM is in pool {pool} and "
                f"{missing.kind} {missing.text} in pool {elsewhere[0]}. Choose a {missing.kind} "
                f"of {pool}."
            ) from None

    def _named_pool(self, command: Command) -> tuple[Command, str | None]:
        """The pool the command names, by `pool=` or a `@pool` suffix, and the bare names."""
        named = {command.pool} if command.pool else set()
        if isinstance(command, MigrateCommand):
            vm, suffix = self._split(command.vm)
            named |= {suffix} if suffix else set()
            command = dataclasses.replace(command, vm=vm, pool=None)
        else:
            split = [self._split(vm) for vm in command.vms]
            host, suffix = self._split(command.evacuate) if command.evacuate else (None, None)
            named |= {p for _, p in split if p} | ({suffix} if suffix else set())
            command = dataclasses.replace(
                command, vms=tuple(vm for vm, _ in split), evacuate=host, pool=None
            )
        if len(named) > 1:
            raise UserError(f"One request moves VMs of one pool, not {_listed(sorted(named))}.")
        pool = named.pop() if named else None
        if pool is not None:
            self.known(pool)
        return command, pool

    def _split(self, name: str) -> tuple[str, str | None]:
        """`vm01@pool-b` -> ("vm01", "pool-b") when pool-b is one of ours; a name that only
        holds an @ stays whole."""
        bare, at, suffix = name.rpartition("@")
        if at and bare and suffix in self.planners:
            return bare, suffix
        return name, None

    def holder(
        self, kind: str, names: Sequence[str], allowed: Sequence[str], takes_option: bool = True
    ) -> str:
        """The one pool that has the names; a plain question when several do or none
        (`takes_option`: the command takes `pool=`, so the question may offer it)."""
        found = self._ask(allowed, kind, names)
        answered = {pool: has for pool, has in found.items() if has is not None}
        having = [pool for pool, has in answered.items() if has]
        silent = [pool for pool in allowed if pool not in answered]
        if silent:
            log.warning("pools %s did not answer the lookup of %s", silent, names)
        complete = [pool for pool in having if set(names) <= answered[pool]]
        if len(complete) == 1:
            return complete[0]
        if len(complete) > 1:
            first = next(n for n in names if all(n in answered[p] for p in complete))
            pool = complete[-1]
            hints = [] if kind == "tag" else [f"{first}@{pool}"]
            hints += [f"pool={pool}"] if takes_option else []
            like = " or ".join(hints)
            raise UserError(
                f"{kind} {first} is in more than one pool ({_listed(complete)}): say which, "
                f"like {like}."
            )
        if len(having) > 1:
            where = "; ".join(f"{p}: {', '.join(sorted(answered[p]))}" for p in having)
            raise UserError(f"These VMs are in different pools ({where}): one request per pool.")
        if silent and not answered:
            raise UserError(
                f"No pool answered ({_listed(silent)}): try again shortly, or name the pool "
                f"(pool={silent[0]})."
            )
        missing = next(n for n in names if not any(n in has for has in answered.values()))
        miss = NotFound(kind, missing, self._near(list(answered), kind, missing))
        if silent:
            raise UserError(
                f"Not in {_listed(list(answered))}: {miss}. {_listed(silent)} did not answer: "
                f"if it is there, name the pool ({missing}@{silent[0]})."
            )
        raise miss

    def _ask(
        self, pools: Iterable[str], kind: str, names: Sequence[str]
    ) -> dict[str, set[str] | None]:
        """Each pool's answer (the names it has), side by side; None: it did not answer."""
        futures = {
            pool: self._lookups.submit(self.planners[pool].has, kind, names) for pool in pools
        }
        wait(futures.values(), timeout=LOOKUP_SECONDS)
        answers: dict[str, set[str] | None] = {}
        for pool, future in futures.items():
            try:
                answers[pool] = future.result(timeout=0) if future.done() else None
            except UserError as error:
                log.info("pool %s: %s", pool, error)
                answers[pool] = None
        return answers

    def _near(self, pools: Sequence[str], kind: str, text: str) -> list[str]:
        names = [n for pool in pools for n in self.planners[pool].names_of(kind)]
        return did_you_mean(text, sorted(set(names)))


def _subject(command: MigrateCommand | BatchCommand) -> tuple[str, list[str]]:
    """What decides the pool: the VMs, the host an evacuation empties, or the tag."""
    if isinstance(command, MigrateCommand):
        return "VM", [command.vm]
    if command.evacuate is not None:
        return "host", [command.evacuate]
    if command.tag is not None:
        return "tag", [command.tag]
    return "VM", list(command.vms)


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names)
