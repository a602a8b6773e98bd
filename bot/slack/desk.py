"""What the Slack handlers delegate to, after they have acknowledged Slack.

Every method here may take seconds (XAPI, the database, Slack's Web API), so handlers call
`Desk.in_background(...)`, which runs it on the desk's own threads, never bolt's five
listener threads. Answers to the person who typed or pressed go through `reply` (ephemeral);
everything others should see goes to the channel and the thread through the notifier.
Every press is audited, refused ones too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.engine.fleet import Fleet
from bot.logs import about
from bot.messages import OUT_OF_DATE, settled
from bot.models import Choice, Inventory
from bot.planning.command import BadCommand, BatchCommand, MigrateCommand, parse_request_id
from bot.planning.planner import UserError
from bot.planning.resolve import ranked
from bot.planning.units import format_size
from bot.planning.when import resolve_at
from bot.slack import blocks
from bot.slack.access import Access
from bot.slack.actions import FIXES, Action
from bot.slack.from_store import with_people
from bot.slack.home import Home
from bot.slack.modal_form import asks_channel, channel_of
from bot.slack.notify import Notifier
from bot.slack.outbox import OUTCOME
from bot.states import State
from bot.store.records import Request, VMBusy
from bot.store.store import Store

log = logging.getLogger(__name__)
INVENTORY_SECONDS = 60.0  # the modal's VM list may be a minute old; a miss says "did you mean"
Reply = Callable[[dict[str, Any]], None]
INVITE = "Invite the bot to a channel first (/invite @migrate-bot), then /migrate there."
NOT_ENABLED = "/migrate is not enabled in this channel."
CHOOSE_CHANNEL = "Choose the channel to post the request in."
NOT_THERE = (
    "migrate-bot does not take requests in that channel; choose the channel your team "
    "files migrations in."
)
# A checklist press -> what the engine's revise() applies: a Fix value, or "recheck".
REVISIONS: dict[Action, str] = {a: fix.value for a, fix in FIXES.items()} | {
    Action.RECHECK: "recheck"
}
# Presses that need PENDING.
DECISIONS = frozenset({Action.APPROVE, Action.REJECT, Action.START, *REVISIONS})
# Presses that file a new request from a finished one: what they act on is the request's
# state, which the engine checks, not what the message showed (a stuck notice and its
# clearing redraw the request after the outcome with its button was posted).
FILE_AGAIN = frozenset({Action.RETRY_OFFLINE, Action.REFILE})
# Presses judged by what they act on now, whatever the message showed (Re-enable: the host).
UNVERSIONED = FILE_AGAIN | {Action.REENABLE_HOST}


class Desk:
    def __init__(
        self,
        fleet: Fleet,
        store: Store,
        notifier: Notifier,
        access: Access,
        clock: Clock,
        timezone: ZoneInfo,
        require_approval: bool,
        home: Home,
        workers: int = 20,
    ) -> None:
        self.fleet = fleet
        self.store = store
        self.notifier = notifier
        self.access = access
        self.clock = clock
        self.timezone = timezone
        self.require_approval = require_approval
        self.home = home
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="desk")
        self._inventory: tuple[float, Inventory] | None = None

    def in_background(self, fn: Callable[..., None], *args: Any, reply: Reply) -> None:
        """Run `fn(*args, reply)` off the listener thread; whatever happens, `reply` hears."""

        def guarded() -> None:
            try:
                fn(*args, reply)
            except VMBusy as busy:  # a UserError with a sentence of its own here
                reply(blocks.notice(f"That VM already has an active request: #{busy.request_id}."))
            except UserError as error:
                named = error.people
                reply(blocks.notice(str(error), "⚠️", lambda text: with_people(text, named)))
            except Exception:
                log.exception("%s failed", getattr(fn, "__name__", fn))
                reply(blocks.notice("Something went wrong on our side; it is logged.", "❌"))

        self._pool.submit(guarded)

    def stop(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- /migrate <vm> to <host> ----------------------------------------------------------
    def channel_refusal(self, channel: str) -> str | None:
        """Why nothing may be filed from `channel` (a DM, a channel not enabled), or None."""
        if not channel or channel.startswith("D"):  # a form that names none is as bad
            return INVITE
        if not self.access.channel_enabled(channel):
            return NOT_ENABLED
        return None

    def picked_channel_refusal(self, channel: str) -> str | None:
        """Why the channel chosen in the shortcut's form may not take the request, or None."""
        if not channel:
            return CHOOSE_CHANNEL
        return NOT_THERE if self.channel_refusal(channel) else None

    def last_channel(self, user: str) -> str | None:
        """Where `user` filed last, if requests may still be filed there: the shortcut's
        form offers it first."""
        channel = self.store.last_channel(user)
        return channel if channel and not self.channel_refusal(channel) else None

    def file(
        self, command: MigrateCommand | BatchCommand, user: str, channel: str, reply: Reply
    ) -> None:
        """Check, plan and post the request message (or, for dry-run, show it to the user);
        a batch (a list, a tag, an evacuation) is one request with a plan of moves."""
        if refused := self.channel_refusal(channel):  # the modal's path comes here too
            reply(blocks.notice(refused, "⛔"))
            return
        usable = self.access.usable_pools(user, channel)
        if not usable:
            reply(blocks.notice("Only the configured requesters may file migrations.", "⛔"))
            return
        run_at = self._run_at(command.at)
        if isinstance(run_at, BadCommand):
            reply(blocks.usage_message(run_at.message))
            return
        finder = self.fleet.finder
        pool, command = finder.choose(command, usable)
        engine = self.fleet.pool(pool)
        if isinstance(command, BatchCommand):
            asked = command
            batch = finder.within(pool, lambda: engine.preview_batch(asked))
            summary, submit = (
                batch.summary(),
                lambda: engine.submit_batch(asked, batch, user, channel, run_at),
            )
        else:
            one = command
            single = finder.within(pool, lambda: engine.preview(one))
            summary, submit = (
                single.summary(),
                lambda: engine.submit(one, single, user, channel, run_at),
            )
        if command.dry_run:
            shown = pool if self.fleet.several else None
            draft = blocks.Card(0, 0, "pending", user, summary, command.shutdown, pool=shown)
            reply(blocks.dry_run_message(draft))
            return
        req = submit()
        self.home.changed()
        try:
            self.notifier.post_request(req)
        except SlackApiError as error:
            reason = error.response.get("error", "")
            if reason == "ratelimited":  # Slack is busy, not refusing: post it shortly
                self.notifier.post_request_later(req)
                reply(blocks.notice(f"Slack is busy; request #{req.id} will appear shortly."))
                return
            engine.withdraw(req.id, f"the request message could not be posted ({reason})")
            if reason in ("not_in_channel", "channel_not_found", "is_archived"):
                reply(blocks.notice(INVITE, "⚠️"))
                return
            raise

    def _run_at(self, text: str | None) -> float | BadCommand | None:
        if text is None:
            return None
        now = datetime.fromtimestamp(self.clock.now(), tz=UTC)
        when = resolve_at(text, now, self.timezone)
        return when if isinstance(when, BadCommand) else when.timestamp()

    # -- buttons --------------------------------------------------------------------------
    def press(self, action: Action, value: str, user: str, reply: Reply) -> None:
        parsed = blocks.parse_button_value(value)
        if parsed is None:
            reply(blocks.notice("This button is not one of ours.", "⛔"))
            return
        request_id, revision = parsed
        with about(request_id):
            self._press(action, request_id, revision, user, reply)

    def _press(
        self, action: Action, request_id: int, revision: int, user: str, reply: Reply
    ) -> None:
        req = self._get(request_id)
        refused = self.access.in_pool(req.pool).refusal(action, user, req.requester)
        if refused is None and action == Action.START and self.require_approval:
            refused = "This request needs an approver's Approve."
        if refused is None and action in DECISIONS and req.state != State.PENDING:
            # Lost to someone's press: say whose, as the engine does when it sees the race.
            self.store.audit(req.id, user, "refused", {"action": action, "why": settled(req)})
            raise UserError(settled(req), req.people)
        if refused is None and revision != req.revision and action not in UNVERSIONED:
            refused = OUT_OF_DATE
        if refused:
            self.store.audit(req.id, user, "refused", {"action": action, "why": refused})
            reply(blocks.notice(refused, "⛔"))
            return
        engine = self.fleet.engine(req)
        if action in (Action.APPROVE, Action.START):
            engine.approve(req.id, user, revision)
        elif action == Action.REJECT:
            engine.reject(req.id, user)
        elif action == Action.CANCEL:
            reply(blocks.notice(engine.cancel(req.id, user)))
        elif action in REVISIONS:
            engine.revise(req.id, revision, REVISIONS[action], user)
        elif action in FILE_AGAIN:
            file_again = engine.retry_offline if action == Action.RETRY_OFFLINE else engine.refile
            self.notifier.post_request(file_again(req.id, user))
            self.home.changed()
        elif action == Action.REENABLE_HOST:
            reply(self._done(engine.reenable_host(req.id, user), user))
        elif action == Action.RESTART_TOOLSTACK:
            reply(blocks.notice("Restarting the toolstack; the thread will say how it went."))
            asked = with_people(f"{user} asked for a toolstack restart", [user])
            self.notifier.post_in_thread(req.id, blocks.thread_line(asked, self.clock.now(), "🔧"))
            answer = engine.restart_toolstack(req.id, user)
            line = blocks.thread_line(blocks.escape(answer), self.clock.now())
            self.notifier.post_in_thread(req.id, line, OUTCOME)

    def enable(self, host: str, user: str, reply: Reply) -> None:
        """`/migrate enable host1`: host.enable after an evacuation (approvers only)."""
        pool, bare = self.fleet.finder.enable_pool(host)
        if not self.access.in_pool(pool).is_approver(user):
            log.info("%s may not enable %s in pool %s", user, bare, pool)
            reply(blocks.notice("Only approvers may re-enable a host.", "⛔"))
            return
        reply(self._done(self.fleet.pool(pool).enable_host(bare, user), user))

    # -- the modal -----------------------------------------------------------------------
    def suggest(self, kind: str, query: str) -> list[tuple[str, str]]:
        """Options for the modal's searchable selects, from a cached inventory, ranked as
        "did you mean" ranks: `mail` lists mail01.example.com before gmail-relay."""
        now = self.clock.now()
        if self._inventory is None or now - self._inventory[0] > INVENTORY_SECONDS:
            self._inventory = (now, self._read_inventory())
        inventory = self._inventory[1]
        choices = {"vm": inventory.vms, "host": inventory.hosts, "sr": inventory.srs}
        found = ranked(query.strip(), choices.get(kind, ()), _searched)
        return [(c.text, c.uuid) for c in found[:100]]

    def vm_chosen(self, view: dict[str, Any], vm_uuid: str, reply: Reply) -> None:
        """Rebuild the modal with one SR select per disk of the chosen VM."""
        holder = self.fleet.finder.holder("VM", [vm_uuid], self.fleet.names)
        vm, pool = self.fleet.pool(holder).planner.vm_and_pool(vm_uuid)
        disks = [
            {
                "userdevice": d.userdevice,
                "device": d.device,
                "size": format_size(d.virtual_size),
                "sr": pool.srs[d.sr_ref].name if d.sr_ref in pool.srs else "?",
            }
            for d in vm.disks
        ]
        srs = [{"text": s.name, "value": s.uuid} for s in pool.srs.values()]
        form = blocks.migrate_modal(
            channel_of(view),
            {"text": vm.name, "value": vm.uuid},
            disks,
            srs,
            ask_channel=asks_channel(view),
        )
        try:
            self.notifier.client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)
        except SlackApiError as error:  # closed since, or a later choice rebuilt it: that stands
            if error.response.get("error") not in ("hash_conflict", "not_found"):
                raise

    # -- list, status, cancel -------------------------------------------------------------
    def list(self, reply: Reply) -> None:
        """Requests and batches; a batch's moves are on its board, not each a line here."""
        open_ = [r for r in self.store.open_requests() if r.batch_id is None]
        cards = [self.notifier.card(r) for r in open_]
        finished = [r for r in self.store.recent_finished(50) if r.batch_id is None]
        done = [self.notifier.card(r) for r in finished[:10]]
        reply(blocks.request_list(cards, done, self._permalinks(open_)))

    def status(self, target: str, reply: Reply) -> None:
        request_id = parse_request_id(target)
        req = self.store.get(request_id) if request_id is not None else self._by_name(target)
        if req is None:
            reply(blocks.notice(f"No request matches {target!r}; try /migrate list."))
            return
        steps = [
            (s.name, str(s.state), _took(s.started_at, s.ended_at))
            for s in self.store.steps(req.id)
        ]
        link = self._permalinks([req]).get(req.id)
        reply(blocks.request_status(self.notifier.card(req), link, steps))

    def cancel(self, request_id: int, user: str, reply: Reply) -> None:
        req = self._get(request_id)
        refused = self.access.in_pool(req.pool).refusal(Action.CANCEL, user, req.requester)
        if refused:
            self.store.audit(req.id, user, "refused", {"action": Action.CANCEL, "why": refused})
            reply(blocks.notice(refused, "⛔"))
            return
        reply(blocks.notice(self.fleet.engine(req).cancel(req.id, user)))

    def _read_inventory(self) -> Inventory:
        """Every pool's VMs, hosts and SRs; with several pools each name shows its pool
        (`vm01 (…) · site-a`), and a pool that does not answer is left out until it does."""
        if not self.fleet.several:
            return next(iter(self.fleet.engines.values())).planner.inventory()
        parts: dict[str, Inventory] = {}
        for pool, engine in self.fleet.engines.items():
            try:
                parts[pool] = engine.planner.inventory()
            except UserError as error:
                log.warning("pool %s left out of the modal's lists: %s", pool, error)

        def named(kind: str) -> tuple[Choice, ...]:
            return tuple(
                Choice(f"{c.text} · {pool}", c.uuid, c.name or c.text)
                for pool, part in parts.items()
                for c in getattr(part, kind)
            )

        return Inventory(named("vms"), named("hosts"), named("srs"))

    def _done(self, text: str, user: str) -> blocks.Message:
        """A confirmation that names the person who acted, as a mention."""
        return blocks.notice(text, "✅", lambda shown: with_people(shown, [user]))

    def _get(self, request_id: int) -> Request:
        req = self.store.get(request_id)
        if req is None:
            raise UserError(f"There is no request #{request_id}.")
        return req

    def _by_name(self, vm_name: str) -> Request | None:
        for req in [*self.store.open_requests(), *self.store.recent_finished(50)]:
            if req.vm_name == vm_name:
                return req
        return None

    def _permalinks(self, requests: list[Request]) -> dict[int, str]:
        links = {}
        for req in requests:
            shown = req.message_ts or req.thread_ts  # a batch's move: its batch's thread
            if req.channel and shown:
                try:
                    answer = self.notifier.client.chat_getPermalink(
                        channel=req.channel, message_ts=shown
                    )
                    links[req.id] = answer["permalink"]
                except SlackApiError:
                    continue
        return links


def _searched(choice: Choice) -> tuple[str, ...]:
    """What a search matches: the text shown, and the name alone (a near miss of `vm01`
    is near `vm01`, not `vm01 (running on host1) · site-a`)."""
    return (choice.text, choice.name) if choice.name else (choice.text,)


def _took(start: float, end: float | None) -> float | None:
    return None if end is None else end - start
