"""The request state machine: the transition table and the state groups built on it."""

from __future__ import annotations

import itertools

import pytest

from bot.states import (
    ACTIVE,
    FINISHED,
    OPEN,
    TRANSITIONS,
    IllegalTransition,
    State,
    can,
    sources,
)

S = State

# The design's table, written out independently of bot/states.py.
ALLOWED = {
    (S.PENDING, S.APPROVED),
    (S.PENDING, S.REJECTED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED),
    (S.APPROVED, S.SCHEDULED),
    (S.APPROVED, S.QUEUED),
    (S.APPROVED, S.CANCELLED),
    (S.APPROVED, S.FAILED),
    (S.SCHEDULED, S.QUEUED),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.MISSED),
    (S.SCHEDULED, S.FAILED),
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.FAILED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.STUCK),
    (S.STUCK, S.SUCCEEDED),
    (S.STUCK, S.FAILED),
    (S.STUCK, S.CANCELLED),
    (S.STUCK, S.RUNNING),
    (S.SUCCEEDED, S.STUCK),  # a leftover operation can follow any end of a run
    (S.FAILED, S.STUCK),
    (S.CANCELLED, S.STUCK),
}


@pytest.mark.parametrize(("current", "to"), sorted(ALLOWED))
def test_allowed(current: State, to: State) -> None:
    """Every move the design allows is in the table."""
    assert can(current, to)


@pytest.mark.parametrize(
    ("current", "to"),
    [
        (S.PENDING, S.RUNNING),  # no run without approval
        (S.PENDING, S.QUEUED),
        (S.REJECTED, S.APPROVED),  # a rejection is final
        (S.EXPIRED, S.APPROVED),
        (S.CANCELLED, S.RUNNING),
        (S.QUEUED, S.SCHEDULED),
        (S.RUNNING, S.PENDING),
        (S.SUCCEEDED, S.FAILED),  # success is never taken back
        (S.FAILED, S.SUCCEEDED),  # a failure is never turned into success
        (S.MISSED, S.QUEUED),
        (S.APPROVED, S.APPROVED),
    ],
)
def test_forbidden_sample(current: State, to: State) -> None:
    """Moves that would skip approval, revive a finished request or undo success are refused."""
    assert not can(current, to)


def test_table_is_exactly_the_design() -> None:
    """No move exists beyond the design's list, so every other pair is forbidden."""
    table = {(current, to) for current, targets in TRANSITIONS.items() for to in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize("state", [S.REJECTED, S.EXPIRED, S.MISSED])
def test_terminal_states_have_no_way_out(state: State) -> None:
    """Rejected, expired and missed requests never ran: they never move again."""
    assert not any(can(state, to) for to in State)


@pytest.mark.parametrize("state", [S.SUCCEEDED, S.FAILED, S.CANCELLED])
def test_a_runs_end_moves_only_to_stuck(state: State) -> None:
    """A run's end stays as it is, but for a leftover operation found after it."""
    assert {to for to in State if can(state, to)} == {S.STUCK}


def test_groups() -> None:
    """ACTIVE holds the VM, OPEN adds PENDING, FINISHED is the rest, SUCCEEDED included."""
    assert {S.APPROVED, S.SCHEDULED, S.QUEUED, S.RUNNING, S.STUCK} == ACTIVE
    assert ACTIVE | {S.PENDING} == OPEN
    assert {S.SUCCEEDED, S.FAILED, S.CANCELLED, S.REJECTED, S.EXPIRED, S.MISSED} == FINISHED
    assert not OPEN & FINISHED
    assert set(State) == OPEN | FINISHED


def test_only_open_states_reach_active_ones() -> None:
    """A request enters an ACTIVE state only from PENDING or another ACTIVE state, or
    from a run's end when a leftover operation is found."""
    ends = {S.SUCCEEDED, S.FAILED, S.CANCELLED}
    for current, to in itertools.product(State, ACTIVE):
        if can(current, to):
            assert current in OPEN or (current in ends and to == S.STUCK)


@pytest.mark.parametrize("to", list(State))
def test_sources_inverts_the_table(to: State) -> None:
    """`sources(to)` is every state that may move to `to`, and nothing else."""
    assert sources(to) == {current for current in State if can(current, to)}


def test_values_are_stored_names() -> None:
    """State values are the lowercase names the database holds, so renaming needs a migration."""
    assert [state.value for state in State] == [state.name.lower() for state in State]


def test_illegal_transition_is_a_value_error() -> None:
    """IllegalTransition is a ValueError that names the target and the offending sources."""
    error = IllegalTransition(S.RUNNING, [S.PENDING])
    assert isinstance(error, ValueError)
    assert (error.to, error.sources) == (S.RUNNING, {S.PENDING})
    assert str(error) == "no transition to running from pending"
