"""Random and malformed Slack payloads, signed and sent for real: never a crash, never a 5xx.

One bot serves all the examples of a test (hypothesis draws inside it), so a payload that
leaves the bot in a bad state also shows in the examples after it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.slack.actions import Action
from bot.slackdouble import (
    block_actions,
    block_suggestion,
    form_body,
    payload_body,
    slash_command,
    view_submission,
)
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, Bot, serving

users = st.sampled_from(["U1", "ULEAD", "U3", "W0"]) | st.text(min_size=1, max_size=12)
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = itertools.count()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    with serving(pool, tmp_path) as running:
        yield running


def answered_well(bot: Bot, body: bytes) -> bytes:
    status, answer = bot.send(body)
    assert status in (200, 404), (status, answer[:300])  # 404: no listener for that action
    assert not [r for r in bot.slack.responses if "Something went wrong" in str(r.body)]
    return answer


def fresh_url(bot: Bot) -> str:
    """A response_url of its own per example (Slack allows five answers on one)."""
    return bot.slack.response_url(f"fuzz-{next(KEYS)}")


def every_answer_was_well(bot: Bot) -> None:
    """Once the desk has answered everything (on response_urls, or in ephemeral messages where
    there is none): something was answered, nothing refused, no "Something went wrong"."""
    bot.service.front.desk.stop()  # waits for the answers still being worked out
    calls = bot.slack.calls_to("response_url")
    posts = bot.slack.calls_to("chat.postEphemeral")
    assert calls or posts, "nothing was answered"
    assert all(c.status == 200 for c in calls), {c.status for c in calls}
    refused = len(posts) - len(bot.slack.ephemerals())
    assert not refused, f"Slack refused {refused} of {len(posts)} ephemeral messages"
    assert not [c for c in calls + posts if "Something went wrong" in str(c.args)]


def test_any_command_text(bot: Bot) -> None:
    """Whatever follows /migrate, from anyone: an answer or nothing filed, never a crash."""

    @FUZZ
    @given(text=st.text(max_size=300), user=users)
    def send(text: str, user: str) -> None:
        fields = slash_command(text, user_id=user, channel_id=CHANNEL, response_url=fresh_url(bot))
        answered_well(bot, form_body(fields))

    send()
    every_answer_was_well(bot)


def test_any_button_press(bot: Bot) -> None:
    """Any action id with any value from anyone: refused or ignored, never a crash."""

    @FUZZ
    @given(
        action=st.sampled_from(sorted(Action)) | st.text(min_size=1, max_size=20),
        value=junk,
        user=users,
    )
    def send(action: str, value: Any, user: str) -> None:
        payload = block_actions(
            user_id=user,
            channel_id=CHANNEL,
            message_ts="1.000001",
            action_id=action,
            response_url=fresh_url(bot),
            value=value if isinstance(value, str) else json.dumps(value),
        )
        answered_well(bot, payload_body(payload))

    send()
    every_answer_was_well(bot)


def state(kind: str, *values: str | None) -> st.SearchStrategy[Any]:
    """A modal block's state: its element holding one of `values` or any text, or junk."""
    value = st.sampled_from(values) | st.text(max_size=20)
    if kind == "plain_text_input":
        element = st.builds(lambda v: {"type": kind, "value": v}, value)
    elif kind.startswith("multi_"):
        chosen = st.lists(st.builds(lambda v: {"value": v}, value), max_size=4)
        element = st.builds(lambda os: {"type": kind, "selected_options": os}, chosen)
    else:
        element = st.builds(lambda v: {"type": kind, "selected_option": {"value": v}}, value)
    return st.dictionaries(st.just("a"), element, min_size=1) | junk


def test_any_modal_submission(bot: Bot) -> None:
    """A modal submitted with any shape of values: a field error or a request, never a crash."""
    form = st.fixed_dictionaries(
        {
            "vm": state("external_select", "vm01", "vm02", "web", "nosuch"),
            "host": state("external_select", "host1", "host3"),
        },
        optional={
            "sr": state("external_select", "nfs1", "nfs2"),
            "disk_0": state("static_select", "nfs1", "nfs2"),
            "mode": state("radio_buttons", "live", "offline"),
            "shutdown": state("radio_buttons", "clean", "hard"),
            "at": state("plain_text_input", None, "02:00", "2020-01-01T02:00"),
            "what": state("radio_buttons", "one", "several", "evacuate"),
            "vms": state("multi_external_select", "vm01", "vm02", "web", "nosuch"),
            "tag": state("plain_text_input", None, "web", "nosuch"),
            "to": state("multi_external_select", "host1", "host2", "host3"),
            "evacuate": state("external_select", "host1", "host2", "nosuch"),
        },
    )
    blocks = st.sampled_from(
        ["what", "vm", "host", "sr", "mode", "shutdown", "at", "disk_0", "vms", "tag", "to", "x"]
    )
    opened_in = json.dumps({"channel": CHANNEL})  # what the bot put in the modal it opened
    unknown_vm = {
        "vm": {"a": {"type": "external_select", "selected_option": {"value": "nosuch"}}},
        "host": {"a": {"type": "external_select", "selected_option": {"value": "host3"}}},
    }
    evacuation = {
        "what": {"a": {"type": "radio_buttons", "selected_option": {"value": "evacuate"}}},
        "evacuate": {"a": {"type": "external_select", "selected_option": {"value": "host2"}}},
    }

    @FUZZ
    @given(
        values=form | st.dictionaries(blocks, junk, max_size=6),
        metadata=st.just(opened_in) | st.text(max_size=30),
    )
    @example(values=unknown_vm, metadata=opened_in)  # an ephemeral answer, whatever is drawn
    @example(values=unknown_vm, metadata="")  # a form that names no channel to answer in
    @example(values=evacuation, metadata=opened_in)  # a batch, filed
    def send(values: dict[str, Any], metadata: str) -> None:
        view = {
            "id": "V1",
            "type": "modal",
            "callback_id": "migrate_modal",
            "private_metadata": metadata,
            "blocks": [],
        }
        body = payload_body(view_submission(user_id="U1", view=view, values=values))
        answer = answered_well(bot, body)
        if answer:  # a field error; else the form closes and the desk answers in the channel
            said = json.loads(answer)
            assert said["response_action"] == "errors", said
            assert said["errors"] and all(isinstance(e, str) and e for e in said["errors"].values())

    send()
    every_answer_was_well(bot)


def test_any_search_text(bot: Bot) -> None:
    """Whatever is typed in a modal select, the options answer is well formed."""

    @FUZZ
    @given(kind=st.sampled_from(["vm", "host", "sr", "vms", "hosts"]), typed=st.text(max_size=50))
    def send(kind: str, typed: str) -> None:
        element = {"type": "external_select", "action_id": kind}
        view = {
            "id": "V1",
            "type": "modal",
            "blocks": [{"type": "input", "block_id": kind, "element": element}],
        }
        answer = answered_well(
            bot,
            payload_body(block_suggestion(user_id="U1", action_id=kind, value=typed, view=view)),
        )
        assert len(json.loads(answer)["options"]) <= 100

    send()
