"""`migrate-bot demo`: the whole journey with no Slack workspace and no Xen pool.

The built-in simulator is the pool, `bot.slackdouble` is Slack, and the bot runs in HTTP
mode exactly as in production: people's commands and presses are signed HTTP requests to
its events endpoint, its messages are Web API calls to the double. The pool's clock runs
faster than the wall clock, so a 2-minute copy takes a couple of seconds. Each scene
checks what a person would check (the answer, the thread, where the VM is) and the demo
exits non-zero when one does not happen as scripted, so it doubles as a smoke test.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

from bot.clock import ManualClock
from bot.settings import Settings
from bot.simulator import Simulator, SimulatorServer, simulator
from bot.simulator.faults import EMU_MANAGER_FAILURE
from bot.slack.outbox import Outbox
from bot.slackdouble import SlackDouble
from bot.slackdouble.driver import Driver, buttons, until
from bot.slackdouble.state import Message
from bot.states import State
from bot.store.records import Request
from bot.wiring import Service, start

T = TypeVar("T")
CHANNEL, SECRET = "C0OPS", "demo-signing-secret"
ALICE, BOB, CAROL, DANA = "U0ALICE", "U0BOB", "U0CAROL", "U0DANA"
PEOPLE = {ALICE: "alice", BOB: "bob", CAROL: "carol", DANA: "dana"}
LEADS = "S0LEADS"
SCENES = ("typo", "offline", "stuck", "retry", "evacuate")


class DemoFailed(Exception):
    """A scene did not go as scripted; the message says what was expected."""


@dataclass
class Stage:
    """The running world: pool, Slack, the bot, and the people's hands."""

    sim: Simulator
    slack: SlackDouble
    service: Service
    people: Driver
    out: TextIO
    speed: float  # pool seconds per real second
    started: float = field(default_factory=time.monotonic)

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.service.core.store

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def scene(self, title: str) -> None:
        self.say(f"\n── {title} " + "─" * max(0, 66 - len(title)))

    def types(self, person: str, text: str) -> str:
        """`/migrate text` typed by a person; prints what only they see."""
        self.say(f"{PEOPLE[person]} types: /migrate {text}")
        typed = self.people.command(text, person)
        if typed.ack.get("text"):
            self.say(f"    only {PEOPLE[person]} sees: {typed.ack['text']}")
        return typed.key

    def presses(self, person: str, label: str, message: Message, action: str) -> str:
        self.say(f"{PEOPLE[person]} presses [{label}]")
        return self.people.press(message, action, person)

    def hears(self, person: str, key: str, expect: str) -> str:
        """Wait for the ephemeral answer that contains `expect`."""
        answer = self.until(
            lambda: next((a for a in self.people.answers(key) if expect in a), None),
            f"{PEOPLE[person]} to be told {expect!r}",
        )
        self.say(f"    only {PEOPLE[person]} sees: {answer}")
        return answer

    def until(self, probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
        try:
            return until(probe, what, timeout)
        except TimeoutError as error:
            raise DemoFailed(str(error)) from None

    def posted(self, before: int) -> Request:
        """The request filed after `before`, once its message is in Slack."""
        return self.until(
            lambda: next(
                (
                    r
                    for r in self.store.open_requests()
                    if r.id > before and r.message_ts is not None
                ),
                None,
            ),
            "the request message",
        )

    def last_id(self) -> int:
        ids = [r.id for r in self.store.open_requests() + self.store.recent_finished(100)]
        return max(ids, default=0)

    def ends(self, request_id: int, *states: State) -> Request:
        final = {State.SUCCEEDED, State.FAILED, State.CANCELLED, State.STUCK}
        shown: set[str] = set()

        def ended() -> Request | None:
            self._show_progress(request_id, shown)
            req = self.store.get(request_id)
            return req if req is not None and req.state in final else None

        req = self.until(ended, f"#{request_id} to end", timeout=60)
        if req.state not in states:
            raise DemoFailed(f"#{request_id} ended {req.state}: {req.outcome}")
        self.service.front.outbox.flush(10)
        return req

    def _show_progress(self, request_id: int, shown: set[str]) -> None:
        """Print the running step's message each time its bar moves (as the thread shows it)."""
        req = self.store.get(request_id)
        if req is None or not req.thread_ts:
            return
        for reply in self.slack.replies(CHANNEL, req.thread_ts):
            line = reply.text
            if line.startswith("⏳") and "%" in line and line not in shown:
                shown.add(line)
                self.say(f"    in the thread now: {line}")

    def message(self, req: Request) -> Message:
        return self.slack.message(CHANNEL, req.message_ts or "")

    def vm(self, name: str) -> str:
        return next(
            r
            for r, v in self.sim.db.tables["VM"].items()
            if v["name_label"] == name and not v["is_a_snapshot"]
        )

    def restarts_toolstack(self, req: Request, vm: str) -> None:
        """Bob presses the stuck notice's button (it names the host) until the VM is clear."""
        notice = self.thread_with(req, "restart_toolstack")
        label = next(
            e["text"]["text"]
            for b in notice.blocks
            if b.get("type") == "actions"
            for e in b["elements"]
            if e["action_id"] == "restart_toolstack"
        )
        self.say(f"    the thread offers [{label}]: the least disruptive restart that clears it")
        self.presses(BOB, label, notice, "restart_toolstack")
        self.until(
            lambda: any(
                "is clear" in m.text for m in self.slack.replies(CHANNEL, req.thread_ts or "")
            ),
            f"the toolstack restart to clear {vm}",
        )
        self.say(f"    the toolstack restarted and {vm} is clear")

    def thread_with(self, req: Request, action: str) -> Message:
        return self.until(
            lambda: next(
                (
                    m
                    for m in reversed(self.slack.replies(CHANNEL, req.thread_ts or ""))
                    if action in buttons(m)
                ),
                None,
            ),
            f"a {action} button in #{req.id}'s thread",
        )

    def retries_offline(self, failed: Request) -> None:
        """alice presses the failure's Retry offline, bob approves the new request."""
        button = self.thread_with(failed, "retry_offline")
        before = self.last_id()
        self.presses(ALICE, "Retry offline", button, "retry_offline")
        again = self.posted(before)
        self.say(f"    request #{again.id} is filed in the same thread, offline")
        self.presses(BOB, "Approve", self.message(again), "approve")
        done = self.ends(again.id, State.SUCCEEDED)
        self.say(f"    {done.outcome}")

    def shuts_down(self, vm: str) -> None:
        """Someone else (another tool, the VM's owners) shuts a VM down through XAPI."""
        ref = self.vm(vm)
        self.sim.call("Async.VM.hard_shutdown", [self.sim.open_session("owners"), ref])
        self.until(lambda: self.sim.db.get("VM", ref)["power_state"] == "Halted", f"{vm} to halt")

    def host(self, name: str) -> str:
        return next(r for r, h in self.sim.db.tables["host"].items() if h["name_label"] == name)

    def where(self, vm: str) -> str:
        db = self.sim.db
        ref = next(
            r
            for r, v in db.tables["VM"].items()
            if v["name_label"] == vm and not v["is_a_snapshot"]
        )
        record = db.get("VM", ref)
        host = db.tables["host"].get(record["resident_on"])
        return f"{vm} is {record['power_state'].lower()}" + (
            f" on {host['name_label']}" if host else ""
        )


# -- the scenes ------------------------------------------------------------------------------
def typo(stage: Stage) -> None:
    stage.scene("1. A typo is answered, nothing is filed")
    key = stage.types(ALICE, "vm0l to host3")
    stage.hears(ALICE, key, "did you mean vm01")
    if stage.slack.messages(CHANNEL):
        raise DemoFailed("a typo posted something in the channel")


def offline(stage: Stage) -> None:
    stage.scene("2. An offline move: checklist, a fix, a refusal, approval, progress")
    before = stage.last_id()
    stage.types(ALICE, "vm01 to host3 sr=nfs1 mode=offline")
    req = stage.posted(before)
    stage.say(f"    the bot posts request #{req.id} in #ops with its checklist")
    stage.presses(ALICE, "Exclude from backup", stage.message(req), "fix_exclude_backup")
    stage.until(
        lambda: "fix_exclude_backup" not in buttons(stage.message(req)),
        "the checklist to be re-run",
    )
    stage.say("    the request message is re-checked: backups are off for vm01 now")
    refused = stage.presses(CAROL, "Approve", stage.message(req), "approve")
    stage.hears(CAROL, refused, "Only approvers")
    stage.presses(BOB, "Approve", stage.message(req), "approve")
    done = stage.ends(req.id, State.SUCCEEDED)
    stage.say(f"    {done.outcome}")
    if stage.where("vm01") != "vm01 is running on host3":
        raise DemoFailed(f"expected vm01 running on host3, found: {stage.where('vm01')}")


def stuck(stage: Stage) -> None:
    stage.scene("3. A live move that leaves the VM stuck in 'running (vm_migrate)'")
    stage.sim.faults.stick_next_migration(stage.vm("vm02"))
    before = stage.last_id()
    stage.types(ALICE, "vm02 to host3")
    req = stage.posted(before)
    stage.presses(BOB, "Approve", stage.message(req), "approve")
    stage.ends(req.id, State.SUCCEEDED)
    stage.say("    success is posted; the bot keeps watching for a leftover operation")
    grace = stage.service.core.pool().engine.config.stuck_grace_seconds
    finished = stage.store.get(req.id).finished_at or 0.0
    clock = stage.service.core.pool().engine.clock
    stage.until(lambda: clock.now() > finished + grace, "the stuck grace to pass")
    stage.service.core.pool().jobs.tick()  # the scheduler's next tick, without waiting for it
    stage.restarts_toolstack(req, "vm02")


def retry(stage: Stage) -> None:
    stage.scene("4. A loaded VM's live move fails and wedges it; cleared, Retry offline works")
    error = ["INTERNAL_ERROR", EMU_MANAGER_FAILURE]
    stage.sim.faults.stick_next_migration(stage.vm("build01"), at=0.6, error=error)
    before = stage.last_id()
    stage.types(ALICE, "build01 to host3 mode=live")
    req = stage.posted(before)
    stage.presses(DANA, "Approve", stage.message(req), "approve")
    failed = stage.ends(req.id, State.FAILED)
    stage.say(f"    {failed.outcome}")
    button = stage.thread_with(failed, "retry_offline")
    key = stage.presses(ALICE, "Retry offline", button, "retry_offline")
    stage.hears(ALICE, key, "clear it first")
    stage.restarts_toolstack(failed, "build01")
    stage.retries_offline(failed)


def evacuate(stage: Stage) -> None:
    stage.scene("5. Evacuate host1: one plan, one approval, a board, a failure retried")
    before = stage.last_id()
    stage.types(ALICE, "evacuate host1")
    batch = stage.posted(before)
    shown = stage.message(batch)
    if "approve" in buttons(shown) or "bigdb (96.8 GiB) fits on no host" not in str(shown.blocks):
        raise DemoFailed("bigdb fits on no other host: the plan should have that blocker")
    stage.say(f"    request #{batch.id}: a table of moves; blocker: bigdb (96 GiB) fits nowhere")
    stage.shuts_down("bigdb")
    stage.say("    bigdb's owners shut it down for the maintenance window")
    stage.presses(ALICE, "Re-check", stage.message(batch), "recheck")
    stage.until(lambda: "approve" in buttons(stage.message(batch)), "the plan to be clear")
    stage.say("    re-checked: 3 VMs move live, no blocker left")
    error = ["INTERNAL_ERROR", EMU_MANAGER_FAILURE]
    stage.sim.faults.fail_next_migration(at=0.4, error=error, vm=stage.vm("monitor01"))
    stage.presses(BOB, "Approve", stage.message(batch), "approve")
    ended = stage.ends(batch.id, State.FAILED)
    stage.say(f"    {ended.outcome}")
    if stage.sim.db.get("host", stage.host("host1"))["enabled"]:
        raise DemoFailed("host1 should stay disabled after its evacuation")
    children = stage.store.children(batch.id)
    stage.retries_offline(next(c for c in children if c.state == State.FAILED))
    reenable = stage.thread_with(ended, "reenable_host")
    key = stage.presses(BOB, "Re-enable host1", reenable, "reenable_host")
    stage.hears(BOB, key, "host1 re-enabled")


def home_tab(stage: Stage, person: str) -> None:
    """The person opens the bot's Home tab in Slack; it shows what they see there."""
    stage.people.open_home(person)
    shown = stage.until(
        lambda: stage.slack.home_transcript(person, {LEADS: "leads"}),
        f"{PEOPLE[person]}'s Home tab",
    )
    stage.say(f"\n══ the Home tab, as {PEOPLE[person]} opens it " + "═" * 36)
    stage.say(shown.rstrip())


PLAY: dict[str, Callable[[Stage], None]] = {
    "typo": typo,
    "offline": offline,
    "stuck": stuck,
    "retry": retry,
    "evacuate": evacuate,
}


# -- the world ---------------------------------------------------------------------------
def run(
    out: TextIO,
    scenes: tuple[str, ...] = SCENES,
    speed: float = 60.0,
    html: Path | None = None,
    keep: Callable[[Stage], None] | None = None,
) -> int:
    """Play `scenes`; print the channel as people read it; 0 when every scene went right."""
    logging.basicConfig(level=logging.ERROR)  # expected warnings (a toolstack restart) stay quiet
    clock = ManualClock(start=time.time())
    sim = simulator("demo", clock=clock)
    sim.timing.storage_bytes_per_s = 2e9  # a demo: minutes of copying, not hours
    names = {**PEOPLE}
    with (
        SimulatorServer(sim) as pool,
        SlackDouble(
            users=names,
            usergroups={LEADS: [DANA]},
            channels={CHANNEL: "ops"},
            clock=clock.now,
        ) as slack,
        tempfile.TemporaryDirectory() as folder,
    ):
        settings = Settings(
            xen_url=pool.url,
            xen_username="root",
            xen_password="secret",
            slack_bot_token=slack.token,
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            bot_mode="http",
            bot_http_port=0,
            bot_database_url=f"sqlite:///{folder}/demo.db",
            bot_approvers=[BOB, LEADS],
            bot_default_throughput_mbps=2000,
        )
        ticking = threading.Event()
        ticker = threading.Thread(target=_tick, args=(clock, speed, ticking), daemon=True)
        ticker.start()
        outbox = Outbox(min_interval=0.5, retry_seconds=0.2)
        service = start(settings, "127.0.0.1", clock, outbox, watch_pause=0.5 / speed)
        people = Driver(slack, f"{service.web.url}/slack/events", SECRET, CHANNEL)
        stage = Stage(sim, slack, service, people, out, speed)
        stage.say(f"migrate-bot demo: a simulated pool at {pool.url}, Slack at {slack.api_url}")
        stage.say(f"the bot serves {service.web.url}/slack/events; people: alice (operator),")
        stage.say("bob (team lead, approver), dana (in the @leads approver group), carol")
        failure = None
        try:
            for name in scenes:
                PLAY[name](stage)
        except DemoFailed as error:
            failure = f"{name}: {error}"
        stage.say("\n══ #ops as people read it " + "═" * 44)
        stage.say(slack.transcript(CHANNEL, {LEADS: "leads"}))
        if failure is None:
            try:
                home_tab(stage, BOB)
            except DemoFailed as error:
                failure = f"home tab: {error}"
        if html is not None:
            write_html(slack, html)
            stage.say(f"\nwrote {html}")
        if keep is not None and failure is None:
            keep(stage)
        service.stop()
        ticking.set()
        seconds = time.monotonic() - stage.started
        requests = stage.last_id()
        if failure:
            stage.say(f"\n✗ demo FAILED in scene {failure}")
            return 1
        stage.say(
            f"\n✓ demo passed: {len(scenes)} scene(s), {requests} request(s), "
            f"{len(slack.calls)} Slack API calls, {seconds:.1f} s"
        )
        return 0


def write_html(slack: SlackDouble, path: Path) -> None:
    from bot.slackdouble.html import render_html
    from bot.slackdouble.transcript import Names

    messages = [m for m in slack.messages(CHANNEL)]
    replies = {m.ts: slack.replies(CHANNEL, m.ts) for m in messages}
    names = Names(
        users={**PEOPLE, slack.identity.bot_user_id: "migrate-bot"},
        handles={LEADS: "leads"},
        channels={CHANNEL: "ops"},
    )
    path.write_text(render_html("ops", messages, replies, names))


def _tick(clock: ManualClock, speed: float, stop: threading.Event) -> None:
    """The pool's time runs `speed` times faster than the wall clock."""
    step = 0.02
    while not stop.wait(step):
        clock.advance(step * speed)


KEEP_HELP = """\
The bot, the pool and Slack are still running. Act as a person in #ops, one line each:
  alice: /migrate mail01 to host1        (alice, bob, carol or dana)
  bob: press Approve #5                  (a button's label, then the request's id)
  show                                   (the channel as it is now)
  quit"""


def keep_running(stage: Stage, lines: TextIO) -> None:
    """A prompt for a person to send their own commands and presses."""
    stage.say("\n" + KEEP_HELP)
    by_name = {name: uid for uid, name in PEOPLE.items()}
    for line in lines:
        who, _, what = line.strip().partition(": ")
        try:
            if line.strip() in ("quit", "exit"):
                return
            if line.strip() == "show":
                stage.say(stage.slack.transcript(CHANNEL, {LEADS: "leads"}))
            elif who in by_name and what.startswith("/migrate"):
                key = stage.types(by_name[who], what.removeprefix("/migrate").strip())
                time.sleep(1.5)
                for answer in stage.people.answers(key):
                    stage.say(f"    only {who} sees: {answer}")
            elif who in by_name and what.startswith("press "):
                _press(stage, by_name[who], what.removeprefix("press ").strip())
            else:
                stage.say("?  say who acts: 'alice: /migrate …' or 'bob: press Approve #5'")
        except (DemoFailed, KeyError, ValueError) as error:
            stage.say(f"    {error}")


def _press(stage: Stage, person: str, text: str) -> None:
    label, _, number = text.rpartition(" ")
    req = stage.store.get(int(number.lstrip("#")))
    if req is None or not req.thread_ts:
        raise ValueError(f"no request {number}")
    shown = [stage.message(req), *reversed(stage.slack.replies(CHANNEL, req.thread_ts))]
    for message in shown:
        for block in message.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element["text"]["text"].lower() == label.lower():
                    key = stage.presses(person, label, message, element["action_id"])
                    time.sleep(1.0)
                    for answer in stage.people.answers(key):
                        stage.say(f"    only {PEOPLE[person]} sees: {answer}")
                    return
    raise ValueError(f"no [{label}] button on #{req.id}'s messages")
