"""The bot's Home tab, as one viewer sees it: what runs now, what waits for approval (with
the buttons that viewer may press) and the last outcomes.

Pure. The buttons are the request message's own (same action ids, same `id:revision`
values), so a press here takes the same path and meets the same checks, the revision
included. A Home view holds at most 100 blocks: the requests that wait each take two
(their line, their buttons) until the room is spent; the rest are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.slack.actions import Action
from bot.slack.blocks.board import ICONS, STOPPED
from bot.slack.blocks.buttons import approve, reject, start
from bot.slack.blocks.card import Card
from bot.slack.blocks.kit import (
    MODAL_BLOCKS,
    actions,
    clip,
    context,
    date_token,
    fit,
    header,
    mention,
    section,
)
from bot.slack.blocks.request import list_line
from bot.states import State

HOME_ID = "migrate_home"
HOME_BLOCKS = MODAL_BLOCKS  # Slack's limit for any view, the Home tab's included
LIST_BUDGET = 2800  # characters of one section's lines, under Slack's 3,000
NOTE = 200  # characters of an outcome shown beside its request
WAITING = "✋"  # for a person's decision
MORE_WAITING = "… and {} more waiting: `/migrate list` shows every open request"
_BUTTONS = {Action.APPROVE: approve, Action.REJECT: reject, Action.START: start}


@dataclass(frozen=True)
class Entry:
    """A request as the Home tab lists it."""

    card: Card
    channel: str | None  # where its message and thread are
    may: tuple[Action, ...] = ()  # the decisions this viewer may press (Approve, Reject, Start)
    note: str = ""  # mrkdwn the caller escaped: how it ended


def home_view(
    running: Sequence[Entry],
    waiting: Sequence[Entry],
    finished: Sequence[Entry],
    now: float,
    notice: Sequence[dict[str, Any]] = (),
    approval: bool = True,
) -> dict[str, Any]:
    """The Home view; `notice` (blocks) goes on top: the answer to a press made here."""
    title = "Waiting for approval" if approval else "Waiting for Start"
    top = [
        header("migrate-bot"),
        *notice,
        context(
            f"Updated {date_token(now)} · `/migrate` in a channel, or the *Migrate a VM* "
            "shortcut, files a request"
        ),
        {"type": "divider"},
        _listed("Running now", running, "Nothing runs now."),
        {"type": "divider"},
        section(f"*{title}* ({len(waiting)})" if waiting else f"*{title}*\nNothing waits."),
    ]
    bottom = [{"type": "divider"}, _listed("Last outcomes", finished, "No request has ended yet.")]
    room = HOME_BLOCKS - len(top) - len(bottom) - 1  # one for "… and N more"
    shown: list[dict[str, Any]] = []
    for count, entry in enumerate(waiting):
        blocks = _waiting(entry)
        if len(shown) + len(blocks) > room:
            shown.append(context(MORE_WAITING.format(len(waiting) - count)))
            break
        shown += blocks
    return {
        "type": "home",
        "callback_id": HOME_ID,
        "blocks": [*top, *shown, *bottom],
    }


def _line(entry: Entry) -> str:
    """`⏳ #12 *vm01* · host1 → host3 · running · in #ops`."""
    card = entry.card
    icon = ICONS.get(card.state, STOPPED)
    if card.state == State.PENDING:
        icon = STOPPED if card.blocked else WAITING
    where = f" · in <#{entry.channel}>" if entry.channel else ""
    return f"{icon} {list_line(card, {})}{where}"


def _listed(heading: str, entries: Sequence[Entry], empty: str) -> dict[str, Any]:
    """One section: the heading, then a line per request (and its outcome), counted
    beyond what fits."""
    if not entries:
        return section(f"*{heading}*\n{empty}")
    lines = [_line(e) + (f"\n      _{clip(e.note, NOTE)}_" if e.note else "") for e in entries]
    return section("\n".join([f"*{heading}* ({len(entries)})", *fit(lines, LIST_BUDGET)]))


def _waiting(entry: Entry) -> list[dict[str, Any]]:
    """A waiting request's line, who asked, and the buttons this viewer may press."""
    card = entry.card
    blocks = [section(f"{_line(entry)}\nrequested by {mention(card.requester)}")]
    may = () if card.blocked else entry.may  # as on the request message: fix it first
    buttons = [_BUTTONS[action](card) for action in may if action in _BUTTONS]
    if buttons:
        blocks.append(actions(buttons, block_id=f"home:{card.id}"))
    return blocks
