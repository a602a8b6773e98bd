"""Messages about whole requests: the request message, its dry run, status and list."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.planning.units import format_duration
from bot.slack.blocks import batch
from bot.slack.blocks.buttons import batch_buttons, request_buttons
from bot.slack.blocks.card import Card, content, fallback, state_words, status_line
from bot.slack.blocks.kit import (
    Message,
    actions,
    context,
    date_token,
    escape,
    fit,
    message,
    name,
    section,
    sections,
)

FINISHED_SHOWN = 10
# Characters of list lines per group: the whole list stays a message Slack accepts.
OPEN_BUDGET = 6500
FINISHED_BUDGET = 3500
_SAFE_URL = re.compile(r"https?://[^\s<>|]+")
_STEP_ICONS = {"done": "✅", "running": "⏳", "failed": "❌", "stalled": "⚠️", "cancelled": "⛔"}


def request_message(card: Card) -> Message:
    """The request in the channel, edited in place; buttons fit its state."""
    blocks = [*_content(card), context(status_line(card))]
    buttons = batch_buttons(card) if card.is_batch else request_buttons(card)
    if buttons:
        blocks.append(actions(buttons, block_id=f"request:{card.id}"))
    return message(_fallback(card), blocks)


def dry_run_message(card: Card) -> Message:
    """What the request would be, without buttons: nothing was filed."""
    blocks = [*_content(card, tag="dry run"), context("dry run: nothing was filed")]
    return message(_fallback(card, tag="dry run"), blocks)


def _content(card: Card, tag: str | None = None) -> list[dict[str, Any]]:
    return batch.content(card, tag) if card.is_batch else content(card, tag)


def _fallback(card: Card, tag: str | None = None) -> str:
    return batch.fallback(card, tag) if card.is_batch else fallback(card, tag)


def link(card: Card, permalinks: Mapping[int, str]) -> str:
    """`<url|#42>` when the thread's permalink is known and safe to embed, else `#42`."""
    url = permalinks.get(card.id, "")
    return f"<{url}|#{card.id}>" if _SAFE_URL.fullmatch(url) else f"#{card.id}"


def list_line(card: Card, permalinks: Mapping[int, str]) -> str:
    """`#42 vm01 · host1 → host3 · running · window <date>`; `#43 evacuate host1 · 12
    moves · running`."""
    source, dest = card.route
    where = f"*{name(card.vm)}* · {name(source, 40)} → {name(dest, 40)}"
    if card.is_batch:
        where = f"*{name(card.subject)}* · {len(card.summary.get('moves', []))} moves"
    line = f"{link(card, permalinks)} {where} · {escape(state_words(card))}"
    if card.run_at is not None:
        line += f" · window {date_token(card.run_at)}"
    return line


def request_list(items: list[Card], finished: list[Card], permalinks: dict[int, str]) -> Message:
    """`/migrate list` (ephemeral): open requests first, then the last ten finished."""
    if not items and not finished:
        return message("no requests yet", [section("no requests yet")])
    blocks: list[dict[str, Any]] = []
    last = finished[:FINISHED_SHOWN]
    groups = [("Open requests", items, OPEN_BUDGET), ("Last finished", last, FINISHED_BUDGET)]
    for heading, cards, budget in groups:
        if cards:
            lines = fit([list_line(c, permalinks) for c in cards], budget)
            blocks += sections(f"*{heading}*", lines)
    return message(f"{len(items)} open, {len(last)} finished shown", blocks)


def request_status(
    card: Card, permalink: str | None, steps: list[tuple[str, str, float | None]]
) -> Message:
    """`/migrate status 42` (ephemeral): the request, its steps, a link to its thread."""
    blocks = [*_content(card), context(status_line(card))]
    if steps:
        blocks.append(section("\n".join(["*Steps*", *map(_step_line, steps)])))
    if permalink and _SAFE_URL.fullmatch(permalink):
        blocks.append(section(f"<{permalink}|open thread>"))
    return message(_fallback(card), blocks)


def _step_line(step: tuple[str, str, float | None]) -> str:
    step_name, state, seconds = step
    line = f"{_STEP_ICONS.get(state, '•')} {name(step_name)} {escape(state)}"
    return line + (f" · {format_duration(seconds)}" if seconds is not None else "")
