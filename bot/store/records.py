"""What the store hands out: typed records of requests, steps and audit events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.errors import UserError
from bot.models import Intent, Mode, ShutdownKind
from bot.settings import SINGLE
from bot.states import State

StepState = Literal["issuing", "running", "done", "failed", "cancelled"]


@dataclass(frozen=True)
class Request:
    id: int
    state: State
    revision: int  # bumped whenever the request message changes; button values carry it
    created_at: float
    updated_at: float
    requester: str
    channel: str | None
    message_ts: str | None
    thread_ts: str | None
    command_text: str
    vm_uuid: str
    vm_name: str
    dest_host_uuid: str
    dest_host_name: str
    mode: Mode
    shutdown: ShutdownKind
    plan: dict[str, Any]
    run_at: float | None
    approved_by: str | None
    approved_at: float | None
    parent_id: int | None  # the failed request a "Retry offline" came from
    outcome: str | None
    error: dict[str, Any] | None
    tags_added: tuple[str, ...]  # VM tags the bot added and removes after success
    started_at: float | None
    finished_at: float | None
    announced: str | None = None  # the last state whose news reached Slack
    shown_revision: int | None = None  # the revision the request message last showed
    ended_by: str | None = None  # who rejected or cancelled it (None: the bot, or not ended)
    kind: str = "move"  # "batch": many VMs, each moved by a child request
    batch_id: int | None = None  # the batch a child request belongs to
    board_ts: str | None = None  # a batch's board message in its thread
    pool: str = SINGLE  # the pool the VM is in (bot.settings.pool_configs)

    @property
    def people(self) -> tuple[str, ...]:
        """Everyone its texts may name: who asked, who approved, who ended it."""
        return tuple(p for p in (self.requester, self.approved_by, self.ended_by) if p)

    @property
    def is_batch(self) -> bool:
        return self.kind == "batch"

    @property
    def intent(self) -> Intent:
        """The plan as the request stores it, typed."""
        return Intent.from_json(self.plan["intent"])


@dataclass(frozen=True)
class Step:
    id: int
    request_id: int
    position: int  # order of issue within the request
    name: str  # "shutdown", "migrate", "start", "verify", "delete_snapshots", ...
    attempt: int
    state: StepState
    task_ref: str | None
    started_at: float
    progressed_at: float  # when progress last moved: stalls are judged from it
    ended_at: float | None
    progress: float
    error: dict[str, Any] | None


@dataclass(frozen=True)
class AuditEvent:
    id: int
    request_id: int | None
    at: float
    actor: str
    action: str
    details: dict[str, Any]


class VMBusy(UserError):
    """The VM already has an active request, so this one cannot become active too."""

    def __init__(self, request_id: int, vm_name: str = "") -> None:
        self.request_id = request_id
        super().__init__(f"{vm_name or 'the VM'} already has active request #{request_id}")
