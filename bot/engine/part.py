"""What the parts of the engine share: the store, the planner, the pool, the clock and
the listeners; and the one way a request moves (a compare-and-set, its event, and the
backup-exclusion tag it gives back when it ends)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot import messages as say
from bot.clock import Clock
from bot.engine import events as ev
from bot.errors import BotError, UserError
from bot.models import SnapshotFacts
from bot.planning.planner import Planner
from bot.states import FINISHED, State
from bot.store.records import Request
from bot.store.store import Store
from bot.xen.gateway import Xen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    max_concurrent: int = 3
    stuck_grace_seconds: float = 120.0
    stall_seconds: float = 600.0
    backup_tag: str = "xo:no-bak"
    approval_ttl_seconds: float = 1800.0
    missed_window_grace_seconds: float = 900.0


@dataclass
class Shared:
    store: Store
    planner: Planner
    xen: Xen
    clock: Clock
    config: EngineConfig
    listeners: list[Callable[[ev.Event], None]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    running_tasks: dict[int, str] = field(default_factory=dict)  # request id -> its task
    # Replicas: may this process still issue an XAPI step (it leads the pool)? `bot.replica`
    fence: Callable[[], bool] = lambda: True


class Part:
    """A part of the engine: the shared things under short names, and the moves."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.store, self.planner, self.xen = shared.store, shared.planner, shared.xen
        self.clock, self.config = shared.clock, shared.config

    def _emit(self, event: ev.Event) -> None:
        for listener in self.shared.listeners:
            try:
                listener(event)
            except Exception:  # a broken renderer must not break a migration
                log.exception("event listener failed on %s", event)

    def _move(
        self, req: Request, to: State, actor: str, action: str, text: str, **changes: Any
    ) -> Request | None:
        if to in FINISHED and actor != "bot":
            changes["ended_by"] = actor
        new = self.store.transition(
            req.id, to, actor=actor, action=action, details={"text": text}, **changes
        )
        if new is not None:
            window = new.run_at if to == State.SCHEDULED else None
            self._emit(ev.StateChanged(req.id, str(to), actor, text, window))
            if to in FINISHED and req.state not in FINISHED | {State.STUCK}:
                self._untag(new)
        return new

    def _untag(self, req: Request) -> None:
        """The backup-exclusion tag is the bot's to remove when the request ends, moved or
        not: the VM goes back to its backups. Failing to is a warning, never a failure."""
        tagged = [(req.vm_uuid, req.vm_name, tag) for tag in req.tags_added]
        if req.is_batch:  # tags of a batch never approved (approval hands them to children)
            names = {row["intent"]["vm_uuid"]: row["vm"] for row in req.plan["batch"]["rows"]}
            for vm, tags in req.plan["batch"].get("tags", {}).items():
                tagged += [(vm, names.get(vm, vm), tag) for tag in tags]
        for vm, name, tag in tagged:
            try:
                self.xen.remove_tag(vm, tag)
                self.store.audit(req.id, "bot", "untagged", {"tag": tag, "vm": name})
            except BotError as error:
                self.store.audit(req.id, "bot", "untag_failed", {"tag": tag, "error": str(error)})
                self._emit(ev.Note(req.id, say.untag_failed(name, tag, say.reason(error))))

    def _destroy_snapshots(self, snapshots: Iterable[SnapshotFacts]) -> tuple[list[str], str]:
        """Delete each snapshot and then the disks that are its own (xapi's VM.destroy keeps
        them); the names deleted, and where it stopped ("" when it did not)."""
        deleted: list[str] = []
        for snap in snapshots:
            try:
                self.xen.destroy_snapshot_vm(snap.ref)
            except BotError as error:
                return deleted, f"{snap.name}: {say.reason(error)}"
            deleted.append(snap.name)
            for vdi in snap.vdi_refs:
                try:
                    self.xen.destroy_vdi(vdi)
                except BotError as error:
                    return (
                        deleted,
                        f"{snap.name} is gone but one of its disks is not ({say.reason(error)})",
                    )
        return deleted, ""

    def _get(self, request_id: int) -> Request:
        req = self.store.get(request_id)
        if req is None:
            raise UserError(say.no_request(request_id))
        return req

    def _has_step(self, req: Request, name: str) -> bool:
        return any(s.name == name for s in self.store.steps(req.id))
