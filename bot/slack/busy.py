"""Busy channels: which requests a channel's board shows, and each one's latest news.

Slack takes about one post a second per channel. When many migrations run in one channel
their thread lines queue behind each other, so the notifier opens a board in the channel
as soon as news there would wait more than `OPEN_AFTER_S` for the post budget while at
least `MIN_ROWS` requests are under way there: one message, edited in place, that carries
every request's step changes and outcome at once (an edit per change, in the workspace's
edit budget). The threads still get every line, only later. When every row has ended the
board says so; it keeps taking news of its own requests (a late "stuck"), and the next
request with late news gets a new board.

Pure and thread-safe: engine threads report, the outbox worker renders. Boards are not
stored; after a restart the threads and request messages are brought up to date by the
notifier's catch-up, and a new board opens if the channel is still busy.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

from bot.engine import events as ev
from bot.slack.blocks.board import Row, board_message
from bot.slack.blocks.kit import Message
from bot.states import FINISHED, State

OPEN_AFTER_S = 1.5  # news later than this (plus sending) would miss Slack within 2 s
MIN_ROWS = 2  # one migration alone is its own thread, however its lines bunch up
_WORDS = {State.APPROVED: "approved", State.SCHEDULED: "waiting for its window"}


def row_change(event: ev.Event) -> dict[str, Any] | None:
    """What `event` changes in its request's row (None: nothing the board shows)."""
    match event:
        case ev.StateChanged(state=state, text=text):
            what = text if state in FINISHED else _WORDS.get(State(state), str(state))
            return {"state": state, "what": what, "fraction": None}
        case ev.StepStarted(text=text):
            return {"state": State.RUNNING, "what": text, "fraction": None}
        case ev.StepProgress(fraction=fraction):
            return {"fraction": fraction}
        case ev.StepDone(step=step):
            return {"what": f"{step} done", "fraction": None}
        case ev.Succeeded(text=text) | ev.Cleared(text=text):
            return {"state": State.SUCCEEDED, "what": text, "fraction": None}
        case ev.Failed(text=text):
            return {"state": State.FAILED, "what": text, "fraction": None}
        case ev.Stuck(text=text):
            return {"state": State.STUCK, "what": text, "fraction": None}
    return None


def is_news(event: ev.Event) -> bool:
    """Step changes and ends: what must reach Slack within 2 s (progress takes what is left)."""
    return not isinstance(event, ev.StepProgress) and row_change(event) is not None


@dataclass
class Board:
    channel: str
    rows: dict[int, Row] = field(default_factory=dict)
    ts: str | None = None  # the message, once posted

    @property
    def ended(self) -> bool:
        return all(row.finished for row in self.rows.values())


class Boards:
    """The latest board of each busy channel."""

    def __init__(self) -> None:
        self._boards: dict[str, Board] = {}
        self._lock = threading.Lock()

    def get(self, channel: str, request_id: int) -> Board | None:
        """The board that takes this request's news: the channel's open board, or its
        ended one if the request is on it."""
        with self._lock:
            board = self._boards.get(channel)
            if board is None or (board.ended and request_id not in board.rows):
                return None
            return board

    def open(self, channel: str, rows: list[Row]) -> Board:
        """The channel's open board, or a new one in place of an ended one."""
        with self._lock:
            board = self._boards.get(channel)
            if board is None or board.ended:
                board = self._boards[channel] = Board(channel)
            for row in rows:
                board.rows.setdefault(row.id, row)
            return board

    def note(self, board: Board, row: Row, change: dict[str, Any]) -> None:
        """Apply `change` to `row` (the board's own, when it has one)."""
        with self._lock:
            board.rows[row.id] = dataclasses.replace(board.rows.get(row.id, row), **change)

    def message(self, board: Board, at: float) -> Message:
        with self._lock:
            return board_message(list(board.rows.values()), at)
