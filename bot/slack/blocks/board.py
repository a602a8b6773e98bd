"""A busy channel's board: one message in the channel with every request's latest news.

Slack takes about one post a second per channel, so when many migrations run in one
channel their threads fill in behind; the board is one message, edited in place, that
says where each of them is within a couple of seconds (see `bot.slack.busy`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bot.slack.blocks.kit import (
    Message,
    clip,
    context,
    date_token,
    escape,
    fit,
    message,
    name,
    sections,
)
from bot.states import FINISHED

MAX_ROWS = 100  # beyond it the oldest finished rows are left to their threads
BUDGET = 12_000  # characters of rows: a few sections, well inside a message's limits
WHAT = 160  # characters of a row's news
ICONS = {
    "running": "⏳",
    "approved": "🕒",
    "scheduled": "🕒",
    "queued": "🕒",
    "succeeded": "✅",
    "failed": "❌",
    "stuck": "⚠️",
}
STOPPED = "⛔"  # cancelled, rejected, expired, missed
MORE = "… and {} more (`/migrate list` shows every open request)"


@dataclass(frozen=True)
class Row:
    """One request on the board: where it goes and its latest news."""

    id: int
    vm: str
    dest: str
    state: str  # a bot.states.State value
    what: str  # plain text: "migrating", "vm01 is running on host3 …"
    fraction: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


def board_line(row: Row) -> str:
    """`⏳ #12 *vm01* → host3 · migrating 45%`."""
    percent = f" {row.fraction * 100:.0f}%" if row.fraction is not None else ""
    what = clip(escape(row.what), WHAT)
    icon = ICONS.get(row.state, STOPPED)
    return f"{icon} #{row.id} *{name(row.vm)}* → {name(row.dest, 40)} · {what}{percent}"


def board_message(rows: list[Row], at: float) -> Message:
    """The board: a heading, the rows by request id, the counts; "all ended" once they are."""
    counts = Counter(row.state for row in rows)
    tally = " · ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    under_way = sum(not row.finished for row in rows)
    if not under_way:
        heading = f"*All {len(rows)} migrations on this board have ended.* Their threads tell more."
    else:
        heading = (
            f"*Busy channel: {under_way} of {len(rows)} migrations under way.* Slack takes "
            "about one message a second here, so their threads fill in behind; this board is "
            "kept current."
        )
    shown = sorted(rows, key=lambda r: r.id)
    hidden = [r for r in shown if r.finished][: max(0, len(shown) - MAX_ROWS)]
    lines = fit([board_line(r) for r in shown if r not in hidden], BUDGET, MAX_ROWS, MORE)
    if hidden:
        lines.insert(0, f"… and {len(hidden)} that ended earlier (see their threads)")
    blocks = [*sections(heading, lines), context(f"{escape(tally)} · updated {date_token(at)}")]
    return message(f"migrations in this channel: {tally}", blocks)
