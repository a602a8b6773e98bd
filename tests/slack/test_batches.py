"""Batches through bolt's real request path: `/migrate evacuate host2`, a list, `enable`.

One request message with the table and the grouped checklist, one approval, one board in
the thread (a row per VM), a reply only for what needs a person (build01's failure with
its Retry offline), the outcome broadcast with Re-enable host2 for approvers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack.actions import Action
from bot.states import State
from tests.engine.test_batches import without_ci_runner
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, Bot, buttons, filed, running_bot


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def texts(messages: list) -> list[str]:
    return [json.dumps(m.blocks, ensure_ascii=False) for m in messages]


def test_evacuation_runs_under_one_approval_with_one_board_and_a_reenable_button(
    bot: Bot,
) -> None:
    without_ci_runner(bot.pool)
    x, host2 = bot.pool.x, bot.pool.ref("host", "host2")
    ack = bot.command("evacuate host2")
    assert "Checking evacuate host2" in ack["text"]
    rid = bot.until(lambda: bot.core.store.open_requests() and bot.latest_request().message_ts)
    rid = bot.latest_request().id
    shown = bot.text_of(rid)
    assert f"#{rid} · evacuate host2" in shown
    assert "4 VMs off host2" in shown and "disabled first" in shown
    assert "build01" in shown and "Checklist" in shown
    assert buttons(bot.request_message(rid)["blocks"])[:4] == [
        "approve",
        "reject",
        "cancel",
        "recheck",
    ]
    bot.press(Action.APPROVE, rid, "ULEAD")
    batch = bot.state(rid, State.SUCCEEDED, State.FAILED)
    assert batch.state == State.FAILED
    assert batch.outcome and batch.outcome.startswith("3 of 4 moved; build01 failed: ")
    assert not x.host.get_enabled(host2)

    def told() -> list | None:
        """The thread once the outcome and a board showing every end reached it."""
        thread = bot.thread(rid)
        said = texts(thread)
        ended = any("Re-enable" in s for s in said) and any("3 of 4 moved*" in s for s in said)
        return thread if ended else None

    thread = bot.until(told)
    said = texts(thread)
    assert len([s for s in said if "moved*" in s]) == 1, "one board, edited in place"
    assert "host2 is disabled" in " ".join(said)
    assert sum("failed" in s and "build01" in s for s in said if "moved*" not in s) >= 1
    assert not any("Migrating" in s for s in said), "children's steps stay on the board"
    outcome = next(m for m in thread if "Re-enable host2" in json.dumps(m.blocks))
    assert outcome.reply_broadcast

    # build01's own reply offers Retry offline; the press files a single request there.
    child = next(c for c in bot.core.store.children(rid) if c.state == State.FAILED)
    failure = next(
        {"type": "message", "ts": m.ts, "text": m.text, "blocks": m.blocks}
        for m in thread
        if Action.RETRY_OFFLINE in buttons(m.blocks) and f"#{child.id} " in m.text
    )
    retry_key = bot.press_on(failure, Action.RETRY_OFFLINE, "U1")
    retry = bot.until(
        lambda: [r for r in bot.core.store.open_requests() if r.parent_id == child.id]
    )
    assert retry[0].mode == "offline" and retry[0].thread_ts == batch.thread_ts
    assert bot.answers(retry_key) == []

    # Re-enable: approvers only.
    refused = bot.press(Action.REENABLE_HOST, rid, "U1")
    assert bot.until(lambda: bot.answers(refused)) == ["⛔ Only approvers may re-enable a host."]
    assert not x.host.get_enabled(host2)
    done = bot.press(Action.REENABLE_HOST, rid, "ULEAD")
    answer = bot.until(lambda: bot.answers(done))
    assert answer == ["✅ host2 re-enabled by <@ULEAD>: VMs may start and land on it again"]
    assert x.host.get_enabled(host2)


def test_a_list_dry_run_is_ephemeral_and_files_nothing(bot: Bot) -> None:
    bot.command("vm02,dns01 to host1 dry-run")
    reply = bot.until(lambda: [r for r in bot.slack.responses if "dry run" in r.body["text"]])
    body = json.dumps(reply[0].body["blocks"], ensure_ascii=False)
    assert "dry run · 2 VMs" in body and "vm02" in body and "dns01" in body
    assert bot.core.store.open_requests() == []
    assert bot.slack.messages(CHANNEL) == []


def test_a_list_moves_and_its_children_stay_off_the_list(bot: Bot) -> None:
    rid = filed(bot, "vm02,dns01 to host1")
    bot.press(Action.APPROVE, rid, "ULEAD")
    assert bot.state(rid, State.SUCCEEDED, State.FAILED).outcome == "All 2 moved."
    bot.command("list")
    listed = bot.until(lambda: [r for r in bot.slack.responses if "finished" in r.body["text"]])
    body = json.dumps(listed[-1].body["blocks"], ensure_ascii=False)
    assert f"#{rid}" in body and "2 moves" in body
    assert all(f"#{c.id} " not in body for c in bot.core.store.children(rid))


def test_enable_is_for_approvers(bot: Bot) -> None:
    bot.command("enable host2", user="U1")
    refused = bot.until(lambda: [r for r in bot.slack.responses if "approvers" in r.body["text"]])
    assert refused[0].body["text"] == "⛔ Only approvers may re-enable a host."
    bot.command("enable host2", user="ULEAD")
    said = bot.until(
        lambda: [r for r in bot.slack.responses if "enabled already" in r.body["text"]]
    )
    assert said[0].body["text"] == "✅ host2 is enabled already."


def test_a_host_xapi_will_not_disable_ends_the_evacuation_before_any_move(bot: Bot) -> None:
    """HA would lose its failover plan: host.disable is refused, nothing moves, the channel
    hears why, and no Re-enable is offered for a host that was never disabled."""
    without_ci_runner(bot.pool)
    sim = bot.pool.sim
    sim.db.update("pool", sim.pool_ref, ha_enabled=True)
    sim.faults.ha_plan_breaks = True
    rid = filed(bot, "evacuate host2")
    bot.press(Action.APPROVE, rid, "ULEAD")
    batch = bot.state(rid, State.FAILED, State.SUCCEEDED)
    assert batch.outcome and batch.outcome.startswith("host2 could not be disabled (")
    bot.until(lambda: {c.state for c in bot.core.store.children(rid)} == {State.CANCELLED})
    assert bot.pool.sim.calls.counts.get("Async.VM.pool_migrate", 0) == 0
    outcome = bot.until(lambda: [m for m in bot.thread(rid) if m.reply_broadcast])
    assert "could not be disabled" in outcome[0].text
    assert Action.REENABLE_HOST not in buttons(outcome[0].blocks)


def test_a_rejected_batch_is_a_line_in_its_thread(bot: Bot) -> None:
    rid = filed(bot, "vm02,dns01 to host1")
    bot.press(Action.REJECT, rid, "ULEAD")
    bot.state(rid, State.REJECTED)
    line = bot.until(lambda: [m for m in bot.thread(rid) if "rejected by" in m.text])
    assert not line[0].reply_broadcast and buttons(line[0].blocks) == []
    assert bot.core.store.children(rid) == []


def test_status_of_a_vm_moved_by_a_batch_links_the_batch_thread(bot: Bot) -> None:
    rid = filed(bot, "vm02,dns01 to host1")
    bot.press(Action.APPROVE, rid, "ULEAD")
    bot.state(rid, State.SUCCEEDED, State.FAILED)
    bot.command("status dns01")
    found = bot.until(lambda: [r for r in bot.slack.responses if "dns01" in r.body["text"]])
    body = json.dumps(found[-1].body["blocks"], ensure_ascii=False)
    assert "migrate dns01" in body and "host1" in body and "open thread" in body
