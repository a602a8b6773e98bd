"""Small Block Kit pieces the double's tests post and open."""

from __future__ import annotations

from typing import Any

Block = dict[str, Any]


def text(kind: str, value: str) -> dict[str, str]:
    return {"type": kind, "text": value}


def section(value: str) -> Block:
    return {"type": "section", "text": text("mrkdwn", value)}


def button(action_id: str, value: str = "req-1", **extra: str) -> Block:
    label = text("plain_text", action_id.title())
    return {"type": "button", "action_id": action_id, "value": value, "text": label, **extra}


def actions(*elements: Block, block_id: str = "decide") -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def modal(*blocks: Block, callback_id: str = "migrate", title: str = "Migrate") -> Block:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": text("plain_text", title),
        "blocks": list(blocks),
    }
