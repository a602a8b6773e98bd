"""What the engine reports while it works, as typed events (the Slack front renders them).

Subscribers get every event in order for a request; they must not block for long (the
Slack notifier queues and coalesces; the CLI prints).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("migrate_bot.events")  # the name operators filter on


@dataclass(frozen=True)
class Event:
    request_id: int


@dataclass(frozen=True)
class StateChanged(Event):
    state: str
    actor: str
    text: str  # one line for the thread: "approved by @lead", "queued: 3 migrations running"
    # The window a "scheduled for its window" line is about: a value, so each front writes
    # it its own way (Slack: a date in each reader's zone; the terminal: local time).
    window: float | None = None


@dataclass(frozen=True)
class Queued(Event):
    """The request is to be run (approved, its window came, or it is unstuck): whoever runs
    requests (the scheduler) takes it."""


@dataclass(frozen=True)
class Revised(Event):
    """The request message changed before approval (a fix applied, the checklist re-run)."""

    actor: str
    text: str


@dataclass(frozen=True)
class StepStarted(Event):
    step: str  # shutdown, migrate, start, affinity, verify, restart, restart_toolstack
    text: str


@dataclass(frozen=True)
class StepProgress(Event):
    step: str
    fraction: float  # 0..1 as xapi reports it
    eta_seconds: float | None


@dataclass(frozen=True)
class StepDone(Event):
    step: str
    seconds: float
    text: str


@dataclass(frozen=True)
class StepStalled(Event):
    step: str
    seconds: float  # without progress


@dataclass(frozen=True)
class Succeeded(Event):
    text: str  # "vm01 is running on host3, disks on nfs1, 6 min 12 s (downtime 4 min 3 s)"
    seconds: float
    downtime_seconds: float


@dataclass(frozen=True)
class Failed(Event):
    text: str  # what happened, in plain words
    next_step: str
    code: str
    retry_offline: bool
    vm_down: bool = False  # the VM was shut down and could not be started again


@dataclass(frozen=True)
class Stuck(Event):
    host_ref: str
    host_name: str
    text: str
    other_tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cleared(Event):
    text: str


@dataclass(frozen=True)
class Note(Event):
    """A line for the thread that changes no state: news, or a warning to act on."""

    text: str
    warning: bool = True


def log_line(event: Event) -> None:
    """Engine subscriber: one log line per event (progress only at debug level)."""
    extra = {"request_id": event.request_id}
    match event:
        case StepProgress(step=step, fraction=fraction):
            log.debug("%s at %.0f%%", step, fraction * 100, extra=extra)
        case StateChanged(state=state, text=text):
            log.info("%s: %s", state, text, extra=extra)
        case Failed(code=code, text=text):
            log.warning("failed (%s): %s", code, text, extra=extra)
        case Stuck(host_name=host):
            log.warning(
                "stuck: a migrate operation is left; toolstack on %s clears it", host, extra=extra
            )
        case _:
            text = getattr(event, "text", "")
            log.info("%s %s", type(event).__name__, text, extra=extra)
