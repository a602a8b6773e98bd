"""Each person's Home tab in Slack: published when they open it, refreshed when requests
change while they look at it.

Slack sends `app_home_opened` every time someone opens the tab; the bot answers with
`views.publish` at once and remembers them as a viewer for `RECENT_SECONDS`. A change of
state (filed, decided, started, ended, revised) queues one refresh per recent viewer on
the outbox: keyed per viewer, so a burst of changes is one publish, at most one every
`Outbox.min_interval` seconds per viewer, last in rank, in a budget of its own under
Slack's limit for `views.*` (Tier 4). Progress ticks never publish. Someone who has not
looked for a while gets a fresh view the next time they open the tab.

Viewers are kept in this process: with replicas, a view opened on one replica is
refreshed by the changes that replica sees, and is always current when opened again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import Clock
from bot.engine import events as ev
from bot.slack.access import Access
from bot.slack.actions import Action
from bot.slack.blocks import Card
from bot.slack.blocks.home import Entry, home_view
from bot.slack.from_store import with_people
from bot.slack.outbox import PROGRESS, Outbox
from bot.states import ACTIVE, State
from bot.store.records import Request
from bot.store.store import Store

log = logging.getLogger(__name__)

RECENT_SECONDS = 15 * 60  # a viewer's tab is kept current this long after they opened it
FINISHED_SHOWN = 10
LANE = "views"  # the outbox budget for views.publish
# Events that change what a Home tab shows; progress, notes and steps do not.
CHANGES = (ev.StateChanged, ev.Revised, ev.Succeeded, ev.Failed, ev.Stuck, ev.Cleared)
# Errors after which a viewer's refresh is dropped, not retried (Home tab turned off in the
# app's settings, a user gone).
GIVE_UP = frozenset({"not_enabled", "user_not_found"})
Reply = Callable[[dict[str, Any]], None]
# The buttons a waiting request offers, by whether approval is required.
DECISIONS = {True: (Action.APPROVE, Action.REJECT), False: (Action.START,)}


class Home:
    def __init__(
        self,
        client: WebClient,
        store: Store,
        access: Access,
        card: Callable[[Request], Card],
        outbox: Outbox,
        clock: Clock,
        require_approval: bool,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = store
        self.access = access
        self.card = card
        self.outbox = outbox
        self.clock = clock
        self.require_approval = require_approval
        self.monotonic = monotonic
        self._viewers: dict[str, float] = {}  # user -> when they last looked (monotonic)
        self._lock = threading.Lock()

    # -- what the handlers and the desk call ----------------------------------------------
    def opened(self, user: str, reply: Reply) -> None:
        """`user` opened the Home tab: publish it now (`reply` hears only a failure)."""
        self._seen(user)
        self.publish(user)

    def replier(self, user: str) -> Reply:
        """How a press made on the Home tab is answered: it has no response_url, so the
        answer goes on top of the presser's Home tab, published again as things are now
        (a press on an outdated copy sees the current buttons with the refusal). The
        presser counts as a viewer: what the press changes refreshes their tab."""
        self._seen(user)

        def reply(message: dict[str, Any]) -> None:
            self.publish(user, message.get("blocks", []))

        return reply

    # -- what changes call ------------------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        """Engine subscriber: a change of state refreshes the viewers' tabs (queued)."""
        if isinstance(event, CHANGES):
            self.changed()

    def changed(self) -> None:
        """Queue a refresh of every recent viewer's tab; never blocks."""
        for user in self.viewers():
            self.outbox.put(
                PROGRESS,
                lambda user=user: self._refresh(user),
                key=f"home:{user}",
                lane=LANE,
                paced=True,
            )

    def viewers(self) -> list[str]:
        """Who looked at their tab within `RECENT_SECONDS`, forgetting the others."""
        now = self.monotonic()
        with self._lock:
            for user, seen in list(self._viewers.items()):
                if now - seen > RECENT_SECONDS:
                    del self._viewers[user]
            return list(self._viewers)

    # -- publishing -------------------------------------------------------------------------
    def publish(self, user: str, notice: list[dict[str, Any]] | None = None) -> None:
        """Publish `user`'s tab now, outside the queue (it answers that person), counted
        in the queue's budget."""
        self.outbox.charge(LANE)
        self._send(user, notice or [])

    def _send(self, user: str, notice: list[dict[str, Any]]) -> None:
        self.client.views_publish(user_id=user, view=self.view(user, notice))

    def view(self, user: str, notice: list[dict[str, Any]]) -> dict[str, Any]:
        """The tab as `user` sees it: the buttons are the ones they may press."""
        top = [r for r in self.store.open_requests() if r.batch_id is None]
        ended = [r for r in self.store.recent_finished(50) if r.batch_id is None]
        running = [self._entry(r) for r in top if r.state in ACTIVE]
        waiting = [self._entry(r, user) for r in top if r.state == State.PENDING]
        finished = [self._entry(r) for r in ended[:FINISHED_SHOWN]]
        return home_view(
            running, waiting, finished, self.clock.now(), notice, self.require_approval
        )

    def _entry(self, req: Request, viewer: str | None = None) -> Entry:
        may: tuple[Action, ...] = ()
        if viewer is not None:  # a request waiting for a decision: the viewer's buttons
            rules = self.access.in_pool(req.pool)
            decisions = DECISIONS[self.require_approval]
            may = tuple(a for a in decisions if rules.refusal(a, viewer, req.requester) is None)
        note = with_people(req.outcome, req.people) if req.outcome else ""
        return Entry(self.card(req), req.channel, may, note)

    def _refresh(self, user: str) -> None:
        try:
            self._send(user, [])
        except SlackApiError as error:
            if error.response.get("error") not in GIVE_UP:
                raise  # the outbox holds a 429's lane, retries the rest
            log.warning("Home tab of %s not published: %s", user, error.response.get("error"))

    def _seen(self, user: str) -> None:
        with self._lock:
            self._viewers[user] = self.monotonic()
