"""The Slack journey through bolt's real request path, against the Slack double and the pool."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack.actions import Action
from bot.slackdouble import form_body, signed_headers, slash_command
from bot.states import State
from tests.support.pool import Pool
from tests.support.slack_rig import CHANNEL, SECRET, Bot, buttons, filed, running_bot, serving

OFFLINE = "vm01 to host3 sr=nfs1 mode=offline"


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def test_request_message_has_plan_checklist_and_buttons(bot: Bot) -> None:
    """/migrate acks at once, then posts the request with its checklist and buttons."""
    ack = bot.command(OFFLINE)
    assert "Checking vm01" in ack["text"] and ack["response_type"] == "ephemeral"
    req = bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts and bot.request(1))
    message = bot.request_message(req.id)
    assert message["blocks"][0]["text"]["text"] == "#1 · migrate vm01"
    shown = bot.text_of(req.id)
    assert "host1 → host3" in shown and "nfs1" in shown and "Snapshots" in shown
    assert "<@ULEAD>" in shown and "<!subteam^S1>" in shown  # the approvers are pinged
    assert buttons(message["blocks"]) == [
        "approve",
        "reject",
        "cancel",
        "recheck",
        "fix_delete_snapshots",
        "fix_exclude_backup",
    ]


def test_usage_error_is_an_ephemeral_ack_and_files_nothing(bot: Bot) -> None:
    """A grammar error is answered in the ack itself, with the usage; nothing is posted."""
    ack = bot.command("vm01 host3")
    assert ack["response_type"] == "ephemeral"
    assert "/migrate &lt;vm&gt; to &lt;host&gt;" in str(ack["blocks"])  # escaped mrkdwn
    assert bot.slack.messages(CHANNEL) == []
    assert bot.core.store.open_requests() == []


def test_unknown_name_suggests_the_closest(bot: Bot) -> None:
    """A typo gets "did you mean", ephemeral, and no request."""
    bot.command("vm0l to host3")
    bot.until(lambda: [r for r in bot.slack.responses if "did you mean" in r.body["text"]])
    assert bot.slack.messages(CHANNEL) == []
    assert bot.core.store.open_requests() == []


def test_dry_run_is_ephemeral_without_buttons(bot: Bot) -> None:
    """dry-run shows the plan and checklist only to the requester, files nothing."""
    bot.command(OFFLINE + " dry-run")
    (answer,) = bot.until(lambda: [r for r in bot.slack.responses if "dry run" in str(r.body)])
    assert answer.body["response_type"] == "ephemeral"
    assert buttons(answer.body["blocks"]) == []
    assert bot.core.store.open_requests() == []


def test_approve_runs_with_progress_in_the_thread(bot: Bot) -> None:
    """Approve starts the run; steps, progress and the outcome land in the thread."""
    bot.command(OFFLINE)
    bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts)
    bot.press("approve", 1, "ULEAD")
    req = bot.state(1, State.SUCCEEDED, State.FAILED)
    assert req.state == State.SUCCEEDED, req.outcome
    vm = bot.pool.ref("VM", "vm01")
    assert bot.pool.x.VM.get_resident_on(vm) == bot.pool.ref("host", "host3")
    outcome = bot.until(lambda: [m for m in bot.thread(1) if m.reply_broadcast])
    assert "vm01 is running on host3" in outcome[0].text
    assert bot.service.front.outbox.flush(30)  # step edits are paced by Slack's edit budget
    texts = [m.text for m in bot.thread(1)]
    assert any("approved by <@ULEAD>" in t for t in texts)
    steps = [t for t in texts if " done in " in t]
    assert len(steps) == 3, texts  # shutdown, migrate, start: each its own message
    assert bot.until(lambda: "succeeded" in bot.text_of(1).lower())
    assert buttons(bot.request_message(1)["blocks"]) == []
    assert len(bot.slack.messages(CHANNEL)) == 1  # one migration: its thread keeps up, no board


@pytest.mark.parametrize(
    ("requester", "user", "why"),
    [("ULEAD", "ULEAD", "another approver must approve"), ("U1", "U3", "Only approvers")],
)
def test_refused_presses_change_nothing(bot: Bot, requester: str, user: str, why: str) -> None:
    """An approver approving their own request, and a bystander, get an ephemeral refusal."""
    bot.command(OFFLINE, user=requester)
    bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts)
    key = bot.press("approve", 1, user)
    bot.until(lambda: bot.answers(key))
    assert why in bot.answers(key)[0]
    assert bot.request(1).state == State.PENDING
    assert [e.action for e in bot.core.store.audit_events(request_id=1)][-1] == "refused"


def test_group_member_may_approve(bot: Bot) -> None:
    """A member of an approver user group (resolved through Slack) approves."""
    bot.command("vm02 to host3")
    bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts)
    bot.press("approve", 1, "ULEAD2")
    assert bot.state(1, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
    assert bot.slack.calls_to("usergroups.users.list")


def test_fix_button_updates_the_message_and_outdates_the_old_one(bot: Bot) -> None:
    """Exclude from backup tags the VM and re-renders; a press on the old message is refused."""
    bot.command(OFFLINE)
    bot.until(lambda: bot.core.store.get(1) and bot.request(1).message_ts)
    old = bot.request_message(1)
    bot.press("fix_exclude_backup", 1, "U1")
    vm = bot.pool.ref("VM", "vm01")
    bot.until(lambda: "xo:no-bak=migrate-bot #1" in bot.pool.x.VM.get_tags(vm))
    bot.until(lambda: "fix_exclude_backup" not in buttons(bot.request_message(1)["blocks"]))
    key = bot.press_on(old, "approve", "ULEAD")
    bot.until(lambda: bot.answers(key))
    assert "out of date" in bot.answers(key)[0]
    assert bot.request(1).state == State.PENDING


def test_forged_signature_is_refused(bot: Bot) -> None:
    """A request signed with another secret gets 401 and files nothing."""
    fields = slash_command(OFFLINE, user_id="U1", channel_id=CHANNEL, response_url="http://x")
    body = form_body(fields)
    status, _ = bot.send(body, signed_headers("wrong-secret", body))
    assert status == 401
    stale = signed_headers(SECRET, body, timestamp=1)
    assert bot.send(body, stale)[0] == 401
    assert bot.core.store.open_requests() == []


def test_failed_live_run_offers_retry_offline_in_the_thread(bot: Bot) -> None:
    """A loaded VM's live failure says why, and Retry offline files a linked request there."""
    first = filed(bot, "build01 to host3 mode=live")
    bot.press("approve", first, "ULEAD")
    assert bot.state(first, State.SUCCEEDED, State.FAILED).state == State.FAILED
    bot.until(lambda: [m for m in bot.thread(first) if "retry_offline" in buttons(m.blocks)])
    bot.press("retry_offline", first, "U1")
    retry = bot.until(lambda: [r for r in bot.core.store.open_requests() if r.parent_id == first])
    second = bot.until(lambda: bot.request(retry[0].id).message_ts and retry[0].id)
    assert bot.request(second).mode == "offline"
    assert bot.request(second).thread_ts == bot.request(first).thread_ts  # same thread
    bot.press("approve", second, "ULEAD")
    assert bot.state(second, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
    assert bot.service.front.outbox.flush(30)
    assert len(bot.slack.messages(CHANNEL)) == 1  # its lines bunch up, but one at a time: no board


def test_stuck_vm_gets_a_toolstack_button_for_approvers(bot: Bot) -> None:
    """A leftover migrate operation is reported with the button; an approver's press clears it."""
    bot.pool.sim.faults.stick_next_migration(bot.pool.ref("VM", "vm02"))
    rid = filed(bot, "vm02 to host3")
    bot.press("approve", rid, "ULEAD")
    bot.state(rid, State.SUCCEEDED)
    bot.pool.clock.advance(200)
    bot.core.pool().jobs.tick()  # what the scheduler's ticker does every few seconds
    assert bot.request(rid).state == State.STUCK
    notice = bot.until(
        lambda: [m for m in bot.thread(rid) if "restart_toolstack" in buttons(m.blocks)]
    )
    assert "Restart toolstack on host2" in str(notice[0].blocks)
    refused = bot.press("restart_toolstack", rid, "U1")
    assert "Only approvers" in bot.until(lambda: bot.answers(refused))[0]
    bot.press("restart_toolstack", rid, "ULEAD")
    assert bot.state(rid, State.SUCCEEDED).state == State.SUCCEEDED
    bot.until(lambda: [m for m in bot.thread(rid) if "is clear" in m.text])


def test_cancel_list_and_status_commands(bot: Bot) -> None:
    """cancel ends a pending request; list and status answer ephemerally with its state."""
    rid = filed(bot, OFFLINE)
    denied = bot.command(f"cancel {rid}", user="U3")
    assert denied == {}  # acked at once; the refusal follows through response_url
    bot.until(lambda: [r for r in bot.slack.responses if "requester or an approver" in str(r.body)])
    bot.command(f"cancel #{rid}", user="U1")
    assert bot.state(rid, State.CANCELLED)

    def answer_to(text: str) -> str:
        """The whole ephemeral answer (blocks included) to this command alone."""
        key = bot.driver.command(text, "U1").key
        return bot.until(lambda: [str(r.body) for r in bot.slack.responses if r.key == key])[0]

    listing = answer_to("list")
    assert f"#{rid}" in listing and "cancelled" in listing
    assert "/archives/C1/p" in answer_to(f"status {rid}")


def test_without_approval_the_requester_starts_it(pool: Pool, tmp_path: Path) -> None:
    """BOT_REQUIRE_APPROVAL=false: a Start button for the requester instead of Approve."""
    with serving(pool, tmp_path, bot_require_approval=False, bot_approvers=[]) as bot:
        rid = filed(bot, "vm02 to host3")
        shown = buttons(bot.request_message(rid)["blocks"])
        assert "start" in shown and "approve" not in shown
        bot.press("start", rid, "U1")
        assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED


def test_every_rendered_button_has_a_listener_that_refuses_garbage(bot: Bot) -> None:
    """Each action id the blocks can render is handled; an edited value changes nothing."""
    rid = filed(bot, OFFLINE)
    message = bot.request_message(rid)
    for action in Action:
        block = {"type": "actions", "elements": [{"type": "button", "action_id": action}]}
        shown = {**message, "blocks": [block]}
        key = bot.press_on(shown, action, "ULEAD", value="999:1; DROP TABLE")
        assert "not one of ours" in bot.until(lambda key=key: bot.answers(key))[0]
    assert bot.request(rid).state == State.PENDING


def test_probes(bot: Bot) -> None:
    """/healthz is liveness; /readyz reports the database and, per pool, whether this
    replica leads it, its scheduler and XAPI's events."""
    with urllib.request.urlopen(f"{bot.service.web.url}/healthz") as answer:
        assert answer.status == 200
    with urllib.request.urlopen(f"{bot.service.web.url}/readyz") as answer:
        body = json.loads(answer.read())
    assert body["database"] is True
    assert body["pools"]["default"]["scheduler"] is True
    assert body["pools"]["default"]["leader"] is True


def test_double_pressed_approve_starts_one_migration(bot: Bot) -> None:
    """Two approvers press Approve at once: one run, and the loser hears who approved it,
    whichever way the race went (never a bare "out of date")."""
    rid = filed(bot, "vm02 to host3")
    message = bot.request_message(rid)
    first = bot.press_on(message, "approve", "ULEAD")
    second = bot.press_on(message, "approve", "ULEAD2")
    assert bot.state(rid, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
    assert bot.pool.sim.calls.counts["Async.VM.pool_migrate"] == 1
    approvals = [e for e in bot.core.store.audit_events(request_id=rid) if e.action == "approved"]
    assert len(approvals) == 1
    loser = second if approvals[0].actor == "ULEAD" else first
    answers = bot.until(lambda: bot.answers(loser))
    assert answers == [f"⚠️ Already approved by <@{approvals[0].actor}>."]


def test_slack_429_is_waited_out_and_the_message_arrives(bot: Bot) -> None:
    """Slack rate-limits the request message once: the bot waits Retry-After and posts it."""
    bot.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    rid = filed(bot, "vm02 to host3")
    posts = bot.slack.calls_to("chat.postMessage")
    assert [c.status for c in posts[:2]] == [429, 200]
    assert bot.request(rid).message_ts


def test_metrics_count_requests_migrations_xapi_and_slack(bot: Bot) -> None:
    """/metrics in Prometheus' format reflects what happened: states, outcomes, calls."""
    rid = filed(bot, "vm02 to host3")
    bot.press("approve", rid, "ULEAD")
    bot.state(rid, State.SUCCEEDED)

    def counted() -> str | None:
        """/metrics once it counts the run: the store moves first, then the engine tells
        its listeners (the metrics among them)."""
        with urllib.request.urlopen(f"{bot.service.web.url}/metrics") as answer:
            assert answer.headers["Content-Type"].startswith("text/plain")
            text = answer.read().decode()
        return text if 'migrations_total{mode="live",outcome="succeeded"} 1.0' in text else None

    text = bot.until(counted)
    assert 'migrate_bot_requests{state="succeeded"} 1.0' in text
    assert 'migrate_bot_migration_seconds_count{mode="live"} 1.0' in text
    counted_calls = 'migrate_bot_xapi_calls_total{pool="default"}'
    calls = next(line for line in text.splitlines() if line.startswith(counted_calls))
    assert float(calls.split()[-1]) > 10
    assert 'migrate_bot_slack_calls_total{method="chat.postMessage"}' in text


def test_metrics_on_their_own_port(pool: Pool, tmp_path: Path) -> None:
    """With BOT_METRICS_PORT, /metrics moves off the port Slack reaches."""
    with serving(pool, tmp_path, bot_metrics_port=0) as bot:
        apart = bot.service.metrics_web
        assert apart is not None
        with urllib.request.urlopen(f"{apart.url}/metrics") as answer:
            assert b"migrate_bot_requests" in answer.read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{bot.service.web.url}/metrics")


def test_many_typos_never_starve_the_bot(bot: Bot) -> None:
    """A dozen bad names in a row, then a good request: it is still checked and posted."""
    for _ in range(12):
        bot.command("vm0l to host3")
    rid = filed(bot, "vm02 to host3")
    assert bot.request(rid).message_ts
