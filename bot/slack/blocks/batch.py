"""Messages of a batch (a list, a tag, an evacuation): its request message, the full table
in its thread, the board its moves report to, and its outcome. Pure.

A message holds 50 blocks and ~12,000 characters, so a 200-VM plan cannot be one table:
the request message shows the first `TABLE_ROWS` moves and says where the rest are (the
thread, `table_messages`, in messages of `TABLE_CHUNK` rows). The checklist is the batch's
grouped one (`bot.planning.batch`): blockers per VM, warnings once with their counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.slack.blocks.board import Row, board_line
from bot.slack.blocks.buttons import reenable
from bot.slack.blocks.card import Card, state_words, title, window_and_checklist
from bot.slack.blocks.kit import (
    Message,
    actions,
    context,
    date_token,
    escape,
    fit,
    header,
    mention,
    message,
    name,
    section,
    sections,
)
from bot.states import FINISHED, State

TABLE_ROWS = 15  # moves the request message shows; the thread has them all
TABLE_CHUNK = 60  # moves per thread message of the full table
TABLE_BUDGET = 2900  # characters of table rows in the request message
LEFT_BUDGET = 1200
BOARD_BUDGET = 11_000
BOARD_ROWS = 120
# The board shows what needs eyes first: failures and stuck moves, the running ones, then
# those waiting; finished rows go last and are the first left out ("… and N more").
_BOARD_ORDER = {
    State.FAILED: 0,
    State.STUCK: 1,
    State.RUNNING: 2,
    State.QUEUED: 3,
    State.APPROVED: 4,
    State.SCHEDULED: 4,
}


def fallback(card: Card, tag: str | None = None) -> str:
    moves = len(card.summary.get("moves", []))
    return escape(f"{title(card, tag)}: {moves} moves · {state_words(card)}")


def move_line(move: Mapping[str, Any]) -> str:
    """`*vm01* → host2 · nfs1 · live · 2 min`."""
    return (
        f"*{name(str(move.get('vm', '?')))}* → {name(str(move.get('dest', '?')), 40)}"
        f" · {name(str(move.get('srs', '?')), 80)} · {name(str(move.get('mode', '?')), 10)}"
        f" · {name(str(move.get('estimate', '?')), 20)}"
    )


def overview(card: Card) -> str:
    """What the batch does in two lines: how many moves where, and how long."""
    s = card.summary
    moves = len(s.get("moves", []))
    targets = ", ".join(s.get("targets", [])) or "?"
    where = (
        f"*{moves} VM{'s' if moves != 1 else ''} off {name(str(s['evacuate']), 60)}* onto "
        if s.get("evacuate")
        else f"*{moves} move{'s' if moves != 1 else ''}* onto "
    )
    first = where + name(targets, 300)
    slots = int(s.get("slots") or 1)
    second = (
        f"estimate {name(str(s.get('estimate', '?')))} with {slots} at a time"
        f" · copies {name(str(s.get('copy', '?')))}"
    )
    if card.shutdown == "hard":
        second += " · hard shutdown"
    lines = [first, second]
    if s.get("evacuate"):
        lines.append(
            f"{name(str(s['evacuate']))} is disabled first (nothing new lands on it) "
            "and stays disabled afterwards"
        )
    return "\n".join(lines)


def table_text(card: Card) -> str:
    """The first moves, and where the rest are."""
    moves = card.summary.get("moves", [])
    if not moves:
        return "*Moves*\nnone: no VM would move"
    lines = [move_line(m) for m in moves]
    shown = fit(lines, TABLE_BUDGET, TABLE_ROWS, "… and {} more: the full table is in the thread")
    return "\n".join(["*Moves*", *shown])


def left_text(card: Card) -> str:
    left = card.summary.get("left", [])
    if not left:
        return ""
    lines = [
        f"{'⛔' if x.get('blocks') else '•'} *{name(str(x.get('vm', '?')))}*: "
        f"{name(str(x.get('why', '')), 300)}"
        for x in left
    ]
    return "\n".join(["*Not moving*", *fit(lines, LEFT_BUDGET)])


def content(card: Card, tag: str | None = None) -> list[dict[str, Any]]:
    """Header, overview, table, the VMs left out, window and grouped checklist."""
    blocks = [header(title(card, tag)), section(overview(card)), section(table_text(card))]
    left = left_text(card)
    if left:
        blocks.append(section(left))
    return [*blocks, *window_and_checklist(card)]


def table_messages(card: Card) -> list[Message]:
    """Every move, for the thread, when the request message cannot show them all."""
    moves = card.summary.get("moves", [])
    if len(moves) <= TABLE_ROWS:
        return []
    chunks = [moves[i : i + TABLE_CHUNK] for i in range(0, len(moves), TABLE_CHUNK)]
    out = []
    for number, chunk in enumerate(chunks, 1):
        first = (number - 1) * TABLE_CHUNK + 1
        heading = f"*#{card.id}: moves {first} to {first + len(chunk) - 1} of {len(moves)}*"
        lines = [f"{first + i}. {move_line(m)}" for i, m in enumerate(chunk)]
        out.append(message(f"#{card.id} moves, part {number}", sections(heading, lines)))
    return out


def board_message(card: Card, rows: list[Row], at: float) -> Message:
    """The batch's board in its thread: a row per move, the tally, edited in place."""
    ended = sum(row.finished for row in rows)
    moved = sum(row.state == State.SUCCEEDED for row in rows)
    running = sum(row.state == State.RUNNING for row in rows)
    heading = (
        f"*{name(card.subject, 100)}: {moved} of {len(rows)} moved*"
        f" · {running} running · {len(rows) - ended - running} waiting"
    )
    ordered = sorted(rows, key=lambda r: (_BOARD_ORDER.get(State(r.state), 5), r.id))
    lines = fit([board_line(r) for r in ordered], BOARD_BUDGET, BOARD_ROWS)
    blocks = [*sections(heading, lines), context(f"updated {date_token(at)}")]
    return message(f"#{card.id} board: {moved} of {len(rows)} moved", blocks)


def outcome_message(card: Card, text: str, host_disabled: str | None) -> Message:
    """The batch's end, broadcast to the channel; an emptied host's Re-enable button."""
    success = card.state == State.SUCCEEDED
    icon = "✅" if success else "⛔" if card.state == State.CANCELLED else "❌"
    blocks = [
        section(f"{icon} {escape(text)}"),
        context(f"#{card.id} · requested by {mention(card.requester)}"),
    ]
    if host_disabled and card.state in FINISHED:
        who = f"approvers: {card.approvers}" if card.approvers else "approvers only"
        blocks.append(context(f"{name(host_disabled)} stays disabled until re-enabled · {who}"))
        blocks.append(actions([reenable(card, host_disabled)], block_id=f"outcome:{card.id}"))
    return message(escape(f"{icon} #{card.id} {text}"), blocks)
