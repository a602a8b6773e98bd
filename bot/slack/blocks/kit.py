"""Block Kit primitives: escaping, clipping to Slack's limits, text objects and blocks.

The escaping rule every builder follows:

- `mrkdwn` text (sections, context) and a message's fallback `text` are parsed by Slack
  for mentions (`<!channel>`, `<@U1>`) and links, so every plain string put there is
  passed through `escape` first (`&`, `<`, `>` become entities). Slack has no escape for
  `*`, `_`, `~` and backticks; a name containing them may look styled but can neither
  ping nor link, and we do not insert invisible characters that would break a name
  copied back into `/migrate`.
- `plain_text` (headers, button labels, confirm dialogs, options, modal labels) is never
  parsed: strings go there as they are (an entity would show literally).

Limits are enforced by `clip`, after escaping, without cutting an entity or a `<…>` token
in half.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

Message = dict[str, Any]

# Slack's limits (slack-notes.md, "Block Kit limits").
SECTION = 3000
HEADER = 150
BUTTON = 75
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
OPTION_TEXT = 75
OPTION_VALUE = 150
CONTEXT_ELEMENTS = 10
ACTION_ELEMENTS = 25
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
MODAL_TITLE = 24
OPTIONS = 100
FALLBACK = 300  # our own: notifications show one short line

_USER_ID = re.compile(r"[UW][A-Z0-9]{1,30}")


def escape(text: str) -> str:
    """`&`, `<`, `>` as entities: a name like `<!channel>` can then neither ping nor link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in "…" when cut; never half an entity or token."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    return cut + "…"


def fit(
    lines: list[str], budget: int, most: int | None = None, more: str = "… and {} more"
) -> list[str]:
    """As many lines as `budget` characters (and `most` lines) hold, then a count of the rest."""
    if (most is None or len(lines) <= most) and len("\n".join(lines)) <= budget:
        return lines
    kept: list[str] = []
    for line in lines[:most]:
        if len("\n".join([*kept, line, more.format(len(lines) - len(kept) - 1)])) > budget:
            break
        kept.append(line)
    return [*kept, more.format(len(lines) - len(kept))]


def name(text: str, limit: int = 60) -> str:
    """A user- or XAPI-given name for mrkdwn: escaped, then clipped."""
    return clip(escape(text), limit)


def mention(user_id: str) -> str:
    """`<@U123>` for a Slack user id; anything else is shown escaped, never as a token."""
    return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else escape(user_id)


def date_token(epoch: float) -> str:
    """A Slack date token: each reader sees the time in their own zone. The fallback, for
    notifications and clients that cannot render it, reads as a person writes UTC."""
    seconds = int(epoch // 1)
    fallback = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{seconds}^{{date_short_pretty}} {{time}}|{fallback}>"


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " "}


def mrkdwn(text: str, limit: int = SECTION) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text, HEADER)}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def sections(heading: str, lines: list[str]) -> list[dict[str, Any]]:
    """Lines packed into as few sections as the 3,000-character limit allows."""
    blocks, chunk = [], [heading]
    for line in lines:
        if len("\n".join([*chunk, line])) > SECTION:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    blocks.append(section("\n".join(chunk)))
    return blocks


def context(*texts: str) -> dict[str, Any]:
    """A small grey line; each text is mrkdwn the caller has escaped."""
    parts = [t for t in texts if t][:CONTEXT_ELEMENTS]
    return {"type": "context", "elements": [mrkdwn(t) for t in parts or [" "]]}


def confirm(title: str, text: str, yes: str, no: str = "Back") -> dict[str, Any]:
    """A confirm dialog: plain text, so names need no escaping here."""
    return {
        "title": plain(title, CONFIRM_TITLE),
        "text": plain(text, CONFIRM_TEXT),
        "confirm": plain(yes, CONFIRM_BUTTON),
        "deny": plain(no, CONFIRM_BUTTON),
    }


def button(
    label: str,
    action_id: str,
    value: str,
    style: str | None = None,
    dialog: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain(label, BUTTON),
        "value": value,
    }
    if style:
        element["style"] = style
    if dialog:
        element["confirm"] = dialog
    return element


def actions(elements: list[dict[str, Any]], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": elements[:ACTION_ELEMENTS]}
    if block_id:
        block["block_id"] = block_id
    return block


def message(fallback: str, blocks: list[dict[str, Any]]) -> Message:
    """`text` is what notifications show: escaped mrkdwn, one short line."""
    return {"text": clip(fallback, FALLBACK) or " ", "blocks": blocks[:MESSAGE_BLOCKS]}
