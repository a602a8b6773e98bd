"""Button values and action ids: `id:revision` values, the Action enum, access per Action."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.models import Fix
from bot.slack.access import APPROVERS_ONLY, REQUESTER_OR_APPROVER, refusal
from bot.slack.actions import FIXES, Action
from bot.slack.blocks import batch, button_value, parse_button_value
from bot.states import State
from tests.slack.blockkit import batch_card, buttons, every_message, every_state_card, worst_card


def test_every_button_value_parses_back_to_id_and_revision():
    """Each button's value is `id:revision` and parses back to the pair."""
    for c in every_state_card(worst_card(id=7, revision=12)):
        for message in every_message(c):
            for b in buttons(message):
                assert b["value"] == button_value(7, 12) == "7:12"
                assert parse_button_value(b["value"]) == (7, 12)


@pytest.mark.parametrize(
    "value",
    ["", "42", "42:", ":3", "a:b", "42:3:1", " 42:3", "-1:3", "4٢:3", "1" * 19 + ":1", None],
)
def test_parse_button_value_rejects_garbage(value):
    """Anything but two plain decimal numbers is refused with None."""
    assert parse_button_value(value) is None


@given(st.text())
def test_parse_button_value_never_raises(value):
    """Any text, edited by a client, parses to a pair or None and never raises."""
    parsed = parse_button_value(value)
    assert parsed is None or button_value(*parsed) == value


@given(st.integers(0, 10**18 - 1), st.integers(0, 10**18 - 1))
def test_button_value_round_trips(request_id, revision):
    """Every id and revision survives the trip through a button value."""
    assert parse_button_value(button_value(request_id, revision)) == (request_id, revision)


def test_action_is_every_action_id_a_builder_emits():
    """Action is exactly the set of action_ids the message builders can emit."""
    emitted = {
        b["action_id"]
        for variant in (worst_card(), worst_card(retry_offline=False, refile=True))
        for c in every_state_card(variant)
        for message in every_message(c)
        for b in buttons(message)
    }
    ended = batch_card(State.SUCCEEDED)
    emitted |= {b["action_id"] for b in buttons(batch.outcome_message(ended, "done", "host1"))}
    assert emitted == set(Action)


def test_action_ids_on_the_wire_never_change():
    """Messages already posted carry these action_ids, so each Action keeps its value."""
    assert sorted(Action) == [
        "approve",
        "cancel",
        "fix_delete_snapshots",
        "fix_exclude_backup",
        "fix_hard_shutdown",
        "fix_switch_offline",
        "recheck",
        "reenable_host",
        "refile",
        "reject",
        "restart_toolstack",
        "retry_offline",
        "start",
    ]
    assert {fix: str(action) for action, fix in FIXES.items()} == {f: f"fix_{f}" for f in Fix}


def test_every_action_has_one_access_rule():
    """Each Action has exactly one access rule: approvers only, or requester or approver."""
    assert APPROVERS_ONLY.keys() | REQUESTER_OR_APPROVER == set(Action)
    assert not APPROVERS_ONLY.keys() & REQUESTER_OR_APPROVER


@pytest.mark.parametrize("action", list(Action))
def test_a_bystander_is_refused_every_button_in_words(action):
    """A user who neither filed the request nor approves is refused every button, in words."""
    why = refusal(action, user="U3", requester="U1", approver=False, allow_self_approval=False)
    assert why is not None and why.startswith("Only ")
