"""A batch's news in Slack: one board in its thread instead of a thread per move.

A batch of 200 moves would post 200 times (steps and outcome) lines if each child spoke as a
single request does, far beyond Slack's one post a second per channel. So a child's steps,
progress and ordinary ends only change its row on the batch's board (one message in the
thread, edited in place and coalesced in the outbox); what needs a person gets a reply of
its own: a failed move (with its Retry offline), a stuck VM (with its toolstack restart),
a stalled step, a warning. The batch's own end is the outcome the channel sees.

A child's end counts as told (`announced`) once a board showing it reached Slack, so a
restart's catch-up redraws the board instead of posting a line per VM. The board's `ts`
is stored with the batch, so after a restart the same message is edited again.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.engine import events as ev
from bot.slack.blocks import batch as batch_blocks
from bot.slack.blocks.board import Row
from bot.slack.busy import row_change
from bot.slack.outbox import PROGRESS, STEP
from bot.states import FINISHED, State
from bot.store.records import Request

if TYPE_CHECKING:
    from bot.slack.notify import Notifier

# Child events the thread gets a reply for; the rest only change the child's row.
_SPOKEN = (ev.Failed, ev.Stuck, ev.StepStalled, ev.Cleared)
_WAITING = {State.APPROVED: "waiting", State.SCHEDULED: "waiting", State.QUEUED: "queued"}


@dataclass
class _Board:
    rows: dict[int, Row]
    ts: str | None
    told: set[int] = field(default_factory=set)  # children whose end Slack has been shown


class BatchNews:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self._boards: dict[int, _Board] = {}
        self._lock = threading.Lock()

    def child_event(self, batch_id: int, event: ev.Event, speak: Callable[[], None]) -> None:
        """Put a child's news on its batch's board; `speak` posts what needs a person."""
        change = row_change(event)
        if change is not None:
            if "state" in change and change["state"] in _WAITING:
                change["what"] = _WAITING[State(change["state"])]
            self._note(batch_id, event.request_id, change)
            paced = isinstance(event, ev.StepProgress)
            self.show(batch_id, paced=paced)
        if isinstance(event, _SPOKEN) or (isinstance(event, ev.Note) and event.warning):
            speak()

    def show(self, batch_id: int, paced: bool = False) -> None:
        """Queue an edit (or the first post) of the batch's board, coalesced."""
        n = self.notifier
        board = self._board(batch_id)
        lane = "update" if board.ts else n.post_lane(batch_id)
        n.outbox.put(
            PROGRESS if paced else STEP,
            lambda: self._send(batch_id),
            key=f"batchboard:{batch_id}",
            lane=lane,
            paced=paced,
        )

    def posted(self, req: Request) -> None:
        """After the batch's request message: the full table, when it does not fit there."""
        n = self.notifier
        for part in batch_blocks.table_messages(n.card(req)):
            n.post_in_thread(req.id, part)

    def ended(self, req: Request) -> None:
        """The batch's outcome, broadcast; Re-enable with it when its run disabled a host."""
        n = self.notifier
        host = req.plan.get("summary", {}).get("evacuate") if req.started_at else None
        message = batch_blocks.outcome_message(n.card(req), req.outcome or "", host)
        self.show(req.id)
        n.announce(req.id, message, req.state, broadcast=True)

    def _board(self, batch_id: int) -> _Board:
        with self._lock:
            board = self._boards.get(batch_id)
        if board is not None:
            return board
        store = self.notifier.store
        batch = store.get(batch_id)
        children = store.children(batch_id)
        rows = {c.id: _row(c) for c in children}
        told = {c.id for c in children if c.announced == str(c.state)}
        fresh = _Board(rows, batch.board_ts if batch else None, told)
        with self._lock:
            return self._boards.setdefault(batch_id, fresh)

    def _note(self, batch_id: int, child_id: int, change: dict[str, object]) -> None:
        board = self._board(batch_id)
        with self._lock:
            row = board.rows.get(child_id)
            if row is not None:
                board.rows[child_id] = dataclasses.replace(row, **change)

    def _send(self, batch_id: int) -> None:
        """Outbox worker: post or edit the board, then mark the ends it showed as told."""
        n = self.notifier
        batch = n.store.get(batch_id)
        board = self._board(batch_id)
        if batch is None:
            return
        with self._lock:
            rows = list(board.rows.values())
        message = batch_blocks.board_message(n.card(batch), rows, n.clock.now())
        if board.ts is None:
            board.ts = n.post(batch_id, message) or None
            if board.ts:
                n.store.update(batch_id, board_ts=board.ts)
        else:
            n.client.chat_update(channel=batch.channel or "", ts=board.ts, **message)
        for row in rows:
            if row.finished and row.id not in board.told and board.ts:
                n.store.update(row.id, announced=row.state)
                board.told.add(row.id)


def _row(child: Request) -> Row:
    state = State(child.state)
    what = child.outcome if state in FINISHED and child.outcome else _WAITING.get(state, state)
    return Row(child.id, child.vm_name, child.dest_host_name, str(state), str(what))
