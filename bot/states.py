"""The life of a migration request: its states and the only moves between them.

Pure. The store applies every move as a compare-and-set against this table, so two hands
at once (an Approve press and the expiry job, two approvers) can never both move a
request: the loser's update matches no row.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from bot.errors import BotError


class State(enum.StrEnum):
    """A request's state; the values are what the database stores."""

    PENDING = "pending"  # waiting for approval, or for the requester's Start (approval off)
    APPROVED = "approved"  # transient: approved, about to be queued or scheduled
    SCHEDULED = "scheduled"  # approved, waiting for its at= window
    QUEUED = "queued"  # waiting for a concurrency slot
    RUNNING = "running"
    STUCK = "stuck"  # a leftover migrate operation after the task ended
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    MISSED = "missed"  # approved, but its window passed while the bot was down


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.APPROVED, State.REJECTED, State.CANCELLED, State.EXPIRED}),
    State.APPROVED: frozenset({State.SCHEDULED, State.QUEUED, State.CANCELLED, State.FAILED}),
    State.SCHEDULED: frozenset({State.QUEUED, State.CANCELLED, State.MISSED, State.FAILED}),
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.FAILED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.STUCK}),
    # A toolstack restart clears the leftover operation: the request goes back to how it
    # ended, or an offline run carries on (it still has to start the VM on the destination).
    State.STUCK: frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED, State.RUNNING}),
    # The outcome is posted as soon as the run ends; stuck is a follow-up of any end.
    State.SUCCEEDED: frozenset({State.STUCK}),
    State.FAILED: frozenset({State.STUCK}),
    State.CANCELLED: frozenset({State.STUCK}),
    State.REJECTED: frozenset(),
    State.EXPIRED: frozenset(),
    State.MISSED: frozenset(),
}

# States that hold the VM: the store lets at most one request per VM be in one of them.
ACTIVE = frozenset({State.APPROVED, State.SCHEDULED, State.QUEUED, State.RUNNING, State.STUCK})
# What `/migrate list` shows as open.
OPEN = ACTIVE | {State.PENDING}
# Done, for listings. A run's end (succeeded, failed, cancelled) can still turn STUCK.
FINISHED = frozenset(
    {State.SUCCEEDED, State.FAILED, State.CANCELLED, State.REJECTED, State.EXPIRED, State.MISSED}
)


class IllegalTransition(BotError, ValueError):
    """A move the table forbids: a bug in the caller, never a lost race."""

    def __init__(self, to: State, sources: Iterable[State]) -> None:
        self.to = to
        self.sources = frozenset(sources)
        names = ", ".join(sorted(self.sources)) or "any state"
        super().__init__(f"no transition to {to} from {names}")


def can(current: State, to: State) -> bool:
    return to in TRANSITIONS[current]


def sources(to: State) -> frozenset[State]:
    """Every state that may move to `to`: what a compare-and-set expects by default."""
    return frozenset(state for state, targets in TRANSITIONS.items() if to in targets)
