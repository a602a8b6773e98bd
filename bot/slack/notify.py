"""The engine's events, as Slack messages: the request message kept current, the thread.

Subscribed to the engine; it only queues work on the outbox (never blocks a migration).
The request message is posted synchronously by the desk (its failure is the requester's
answer); everything after goes through the outbox: a line per state change, one message
per step edited in place with a progress bar, the outcome broadcast to the channel, and
in a busy channel a board that carries everyone's news on time (`bot.slack.busy`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.clock import Clock
from bot.engine import events as ev
from bot.slack import blocks
from bot.slack.batch_news import BatchNews
from bot.slack.blocks import escape
from bot.slack.blocks.board import Row
from bot.slack.busy import MIN_ROWS, OPEN_AFTER_S, Board, Boards, is_news, row_change
from bot.slack.from_store import card, with_people
from bot.slack.outbox import BOARD, OUTCOME, PROGRESS, STEP, Outbox
from bot.states import ACTIVE, FINISHED, State
from bot.store.records import Request
from bot.store.store import Store

log = logging.getLogger(__name__)

# Their own events carry the message (outcome, stuck notice), or the request message's
# status line and the step messages say it (queued, started): no extra thread line, so a
# busy channel spends its one-post-a-second budget on what people need.
_SILENT_STATES = {State.SUCCEEDED, State.FAILED, State.STUCK, State.QUEUED, State.RUNNING}
# A batch's ends after its approval: an outcome for the channel (the others are a line).
_BATCH_ENDS = FINISHED - {State.REJECTED, State.EXPIRED}


@dataclass
class _Step:
    text: str
    started: float
    ts: str | None = None
    fraction: float | None = None


@dataclass
class Notifier:
    client: WebClient
    store: Store
    outbox: Outbox
    clock: Clock
    approvers: Callable[[str], str]  # pool -> mrkdwn mention of its approvers
    require_approval: bool
    show_pool: bool = False  # several pools: the request's messages name its pool
    _steps: dict[int, _Step] = field(default_factory=dict)
    _channels: dict[int, str] = field(default_factory=dict)
    _boards: Boards = field(default_factory=Boards)
    _kinds: dict[int, tuple[int | None, bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.batch_news = BatchNews(self)

    # -- what the desk calls -------------------------------------------------------------
    def card(self, req: Request) -> blocks.Card:
        return card(
            req,
            approvers=self.approvers(req.pool),
            require_approval=self.require_approval,
            pool=req.pool if self.show_pool else None,
        )

    def post_request(self, req: Request) -> Request:
        """Post the request message now (a retry's goes into its parent's thread)."""
        self.outbox.charge(f"post:{req.channel or ''}")
        return self._post_request(req)

    def _post_request(self, req: Request) -> Request:
        message = blocks.request_message(self.card(req))
        answer = self.client.chat_postMessage(
            channel=req.channel or "", thread_ts=req.thread_ts, **message
        )
        ts = answer["ts"]
        posted = self.store.update(req.id, message_ts=ts, thread_ts=req.thread_ts or ts)
        self.store.shown(req.id, req.revision)
        if posted.is_batch:
            self.batch_news.posted(posted)
        return posted

    def post_request_later(self, req: Request) -> None:
        """Post the request message through the outbox (Slack was busy when it was filed)."""
        self.outbox.put(STEP, lambda: self._post_request(req), lane=f"post:{req.channel or ''}")

    def refresh(self, request_id: int, priority: int = STEP) -> None:
        """Edit the request message to its current state (coalesced)."""
        self.outbox.put(
            priority,
            lambda: self._update_request(request_id),
            key=f"req:{request_id}",
            lane="update",
        )

    def post_in_thread(
        self, request_id: int, message: dict[str, Any], priority: int = STEP
    ) -> None:
        """A line in the request's thread, through the outbox."""
        self.outbox.put(
            priority, lambda: self.post(request_id, message), lane=self.post_lane(request_id)
        )

    def post_lane(self, request_id: int) -> str:
        """Posts spend their channel's budget."""
        return f"post:{self._channel(request_id)}"

    def _kind(self, request_id: int) -> tuple[int | None, bool]:
        """The batch a request is a move of (None: it stands alone), and whether it is a
        batch itself; cached, as neither changes."""
        with self._lock:
            kind = self._kinds.get(request_id)
        if kind is None:
            req = self.store.get(request_id)
            kind = (req.batch_id, req.is_batch) if req else (None, False)
            with self._lock:
                self._kinds[request_id] = kind
        return kind

    def _batch_of(self, request_id: int) -> int | None:
        return self._kind(request_id)[0]

    def _is_batch(self, request_id: int) -> bool:
        return self._kind(request_id)[1]

    def _channel(self, request_id: int) -> str:
        """Cached: a request never changes channel."""
        with self._lock:
            channel = self._channels.get(request_id)
        if channel is None:
            req = self.store.get(request_id)
            channel = (req.channel if req else None) or ""
            with self._lock:
                self._channels[request_id] = channel
        return channel

    # -- engine events ---------------------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        batch_id = self._batch_of(event.request_id)
        if batch_id is not None:  # a batch's move: its board, and a reply when it needs one
            self.batch_news.child_event(batch_id, event, lambda: self._tell(event, False))
            return
        self._tell_board(event)
        self._tell(event)

    def _tell(self, event: ev.Event, broadcast: bool = True) -> None:
        """The thread's news of `event`; `broadcast`: the outcome goes to the channel too."""
        rid, now = event.request_id, self.clock.now()
        match event:
            case ev.StateChanged(state=state) if state in _BATCH_ENDS and self._is_batch(rid):
                req = self.store.get(rid)
                if req is not None:
                    self.batch_news.ended(req)
                self.refresh(rid, OUTCOME)
            case ev.StateChanged(state=State.RUNNING) if self._is_batch(rid):
                self.batch_news.show(rid)
                self.refresh(rid)
            case ev.StateChanged(state=state, actor=actor, text=text, window=window):
                shown = with_people(text, [actor])
                if window is not None:
                    shown += f": {blocks.date_token(window)}"
                if state in FINISHED and state not in _SILENT_STATES:
                    self.announce(rid, blocks.thread_line(shown, now), state)
                elif state not in _SILENT_STATES:
                    self.post_in_thread(rid, blocks.thread_line(shown, now))
                self.refresh(rid)
            case ev.Revised(actor=actor, text=text):
                line = blocks.thread_line(with_people(text, [actor]), now, "🔁")
                self.post_in_thread(rid, line)
                self.refresh(rid)
                req = self.store.get(rid) if self._is_batch(rid) else None
                if req is not None:  # the thread's full table, as the batch now is
                    self.batch_news.posted(req)
            case ev.StepStarted(text=text):
                with self._lock:
                    self._steps[rid] = _Step(text, now)
                self._step_message(rid, "running", None, None, STEP)
            case ev.StepProgress(fraction=fraction, eta_seconds=eta):
                with self._lock:
                    step = self._steps.setdefault(rid, _Step(event.step, now))
                    step.fraction = fraction
                self._step_message(rid, "running", fraction, eta, PROGRESS)
            case ev.StepDone(seconds=seconds):
                self._step_message(rid, "done", 1.0, None, STEP, seconds)
            case ev.StepStalled(step=step_name, seconds=seconds):
                req = self.store.get(rid)
                if req is not None:
                    self.post_in_thread(
                        rid, blocks.stalled_message(self.card(req), step_name, seconds)
                    )
            case ev.Succeeded(text=text):
                self._outcome(rid, True, text)
            case ev.Failed(text=text, next_step=next_step, vm_down=vm_down):
                self._step_message(rid, "failed", None, None, OUTCOME)
                self._outcome(rid, False, text, next_step, vm_down, broadcast)
            case ev.Stuck(text=text, other_tasks=others):
                req = self.store.get(rid)
                if req is not None:
                    message = blocks.stuck_message(self.card(req), text, list(others))
                    self.announce(rid, message, State.STUCK)
                self.refresh(rid)
            case ev.Note(text=text, warning=warning):
                icon = "⚠️" if warning else "✅"
                self.post_in_thread(rid, blocks.thread_line(escape(text), now, icon))
            case ev.Cleared(text=text):
                line = blocks.thread_line(escape(text), now, "✅")
                self.announce(rid, line, State.SUCCEEDED)
                self.refresh(rid)

    def _tell_board(self, event: ev.Event) -> None:
        """Put the news on the channel's board; open one if the news would be late."""
        change = row_change(event)
        if change is None:
            return
        news = is_news(event)
        channel = self._channel(event.request_id)
        board = self._boards.get(channel, event.request_id)
        if board is None:
            if not news or self.outbox.delay(f"post:{channel}") <= OPEN_AFTER_S:
                return
            active = [
                r
                for r in self.store.in_states(*ACTIVE)
                if r.channel == channel and r.batch_id is None
            ]
            if len({r.id for r in active} | {event.request_id}) < MIN_ROWS:
                return
            board = self._boards.open(channel, [self._row(r) for r in active])
        row = board.rows.get(event.request_id)
        if row is None:
            req = self.store.get(event.request_id)
            if req is None:
                return
            row = self._row(req)
        self._boards.note(board, row, change)
        self.outbox.put(
            BOARD if news else STEP,
            lambda: self._send_board(board),
            key=f"board:{channel}:{id(board)}",
            lane="update" if board.ts else f"post:{channel}",
            paced=not news,
        )

    def _row(self, req: Request) -> Row:
        """A request as the board first shows it: its running step, if it has one."""
        dest = req.dest_host_name
        with self._lock:
            step = self._steps.get(req.id) if req.state == State.RUNNING else None
        if step is not None:
            return Row(req.id, req.vm_name, dest, str(req.state), step.text, step.fraction)
        return Row(req.id, req.vm_name, dest, str(req.state), str(req.state))

    def _outcome(
        self,
        rid: int,
        success: bool,
        text: str,
        next_step: str = "",
        vm_down: bool = False,
        broadcast: bool = True,
    ) -> None:
        req = self.store.get(rid)
        if req is None:
            return
        message = blocks.outcome_message(self.card(req), success, text, next_step, vm_down)
        self.announce(rid, message, req.state, broadcast=broadcast)
        self.refresh(rid, OUTCOME)  # the final state of the request message is news too

    def announce(
        self, rid: int, message: dict[str, Any], state: str, broadcast: bool = False
    ) -> None:
        """Post news of an end; once Slack has it, the store remembers it was told."""

        def send() -> None:
            if self.post(rid, message, broadcast=broadcast):
                self.store.update(rid, announced=str(state))

        self.outbox.put(OUTCOME, send, lane=self.post_lane(rid))

    def catch_up(self, pool: str) -> None:
        """When this process starts to lead `pool`: post what a crash or a Slack outage kept
        from its requests' threads, and bring up to date each request message older than
        its request (an edit still queued at the last stop, or lost in a crash). Another
        pool's requests are its leader's to catch up."""
        for req in self.store.unshown():
            if req.pool == pool:
                self.refresh(req.id)
        for req in self.store.unannounced():
            if req.pool != pool:
                continue
            if req.batch_id is not None and req.state not in (State.FAILED, State.STUCK):
                self.batch_news.show(req.batch_id)  # its row says it; a failure has a reply
                continue
            if req.is_batch and req.state in _BATCH_ENDS and req.message_ts:
                self.batch_news.ended(req)
                self.refresh(req.id)
                continue
            if req.message_ts is None and req.batch_id is None:
                self.post_request_later(req)
                continue
            news = req.outcome or f"#{req.id} is {req.state}"
            line = blocks.thread_line(with_people(news, req.people), self.clock.now(), "📣")
            broadcast = req.state in FINISHED and req.batch_id is None
            self.announce(req.id, line, req.state, broadcast=broadcast)
            self.refresh(req.id)

    def _step_message(
        self,
        rid: int,
        state: str,
        fraction: float | None,
        eta: float | None,
        priority: int,
        seconds: float | None = None,
    ) -> None:
        with self._lock:
            step = self._steps.get(rid)
        if step is None:
            return
        message = blocks.step_message(step.text, fraction, eta, state, seconds, step.started)
        key = f"step:{rid}:{id(step)}"  # each step its own message, coalesced on its own
        lane = "update" if step.ts else self.post_lane(rid)
        self.outbox.put(priority, lambda: self._edit_step(rid, step, message), key=key, lane=lane)

    # -- sending (outbox worker) ----------------------------------------------------------
    def _update_request(self, request_id: int) -> None:
        req = self.store.get(request_id)
        if req is None or not req.message_ts:
            return
        message = blocks.request_message(self.card(req))
        self.client.chat_update(channel=req.channel or "", ts=req.message_ts, **message)
        self.store.shown(req.id, req.revision)

    def post(self, request_id: int, message: dict[str, Any], broadcast: bool = False) -> str:
        req = self.store.get(request_id)
        if req is None or not req.thread_ts:
            log.warning("#%s has no thread; a message was dropped", request_id)
            return ""
        answer = self.client.chat_postMessage(
            channel=req.channel or "",
            thread_ts=req.thread_ts,
            reply_broadcast=broadcast,
            **message,
        )
        return str(answer["ts"])

    def _send_board(self, board: Board) -> None:
        message = self._boards.message(board, self.clock.now())
        if board.ts is None:
            board.ts = str(self.client.chat_postMessage(channel=board.channel, **message)["ts"])
        else:
            self.client.chat_update(channel=board.channel, ts=board.ts, **message)

    def _edit_step(self, rid: int, step: _Step, message: dict[str, Any]) -> None:
        if step.ts is None:
            step.ts = self.post(rid, message) or None
            return
        req = self.store.get(rid)
        if req is not None:
            self.client.chat_update(channel=req.channel or "", ts=step.ts, **message)
