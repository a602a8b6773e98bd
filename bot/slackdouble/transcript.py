"""A channel as a person reads it in Slack, as plain text: what tests and the demo show.

Pure. Each top-level message is rendered from its blocks (its `text` only when it has
none): header, section text and fields (two to a line), context elements, a line of
buttons `[Approve] [Reject]`; mrkdwn stays as written but for what Slack turns into
names (`<@U1>` -> `@Alice`, `<!subteam^S1>` -> `@handle`, `<#C1>` -> `#ops`), dates
(`<!date^…|fallback>` -> fallback), links (`<url|label>` -> label) and the escapes
`&amp; &lt; &gt;`. Thread replies follow, indented by four spaces; "(edited N×)" ends a
message that was edited. Messages are separated by a blank line. `render_view` reads a
view's blocks the same way (the Home tab).
"""  # noqa: RUF002 (a real multiplication sign, as printed)

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.slackdouble.state import Message

_ANGLED = re.compile(r"<([^<>]*)>")
_INDENT = "    "


@dataclass(frozen=True)
class Names:
    """Display names for ids: users, user-group handles (without "@"), channels."""

    users: Mapping[str, str]
    handles: Mapping[str, str]
    channels: Mapping[str, str]


def render(messages: Iterable[Message], names: Names) -> str:
    """The transcript of one channel's messages (replies included, in any order)."""
    ordered = sorted(messages, key=lambda message: tuple(map(int, message.ts.split("."))))
    replies: defaultdict[str, list[Message]] = defaultdict(list)
    for message in ordered:
        if message.thread_ts:
            replies[message.thread_ts].append(message)
    chunks = []
    for parent in (message for message in ordered if not message.thread_ts):
        lines = _message(parent, names)
        for reply in replies[parent.ts]:
            lines += [(_INDENT + line).rstrip() for line in _message(reply, names)]
        chunks.append("\n".join(lines))
    return "\n\n".join(chunks) + "\n" if chunks else ""


def render_view(blocks: list[dict[str, Any]], names: Names) -> str:
    """A view (the Home tab, a modal) as a person reads it: its blocks, one line each."""
    return "\n".join(_blocks(blocks, names)) + "\n" if blocks else ""


def mrkdwn(text: str, names: Names) -> str:
    """Text as Slack displays it: mentions, dates and links resolved, escapes undone."""
    resolved = _ANGLED.sub(lambda match: resolve(match.group(1), names), text)
    return resolved.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def resolve(inner: str, names: Names) -> str:
    """What Slack shows for one `<…>` token, given what is inside the angle brackets."""
    target, _, label = inner.partition("|")
    sigil, ident = target[:1], target[1:]
    if sigil == "@":
        return "@" + names.users.get(ident, label or ident)
    if sigil == "#":
        return "#" + names.channels.get(ident, label or ident)
    if target.startswith("!subteam^"):
        group = target.removeprefix("!subteam^")
        return "@" + names.handles.get(group, label.removeprefix("@") or group)
    if target.startswith("!date^"):
        return label
    if sigil == "!":
        return "@" + ident if ident in ("here", "channel", "everyone") else label or ident
    return label or target


def _message(message: Message, names: Names) -> list[str]:
    lines = _blocks(message.blocks, names) if message.blocks else [mrkdwn(message.text, names)]
    lines = lines or [""]
    if message.edits:
        lines[-1] += f" (edited {message.edits}\u00d7)"
    if message.reply_broadcast:
        lines.append("(also sent to the channel)")
    return lines


def _blocks(blocks: list[dict[str, Any]], names: Names) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            lines += _text(block.get("text"), names).splitlines() if block.get("text") else []
            fields = [_text(field, names) for field in block.get("fields", [])]
            lines += [" | ".join(fields[i : i + 2]) for i in range(0, len(fields), 2)]
            if block.get("accessory"):
                lines.append(_element(block["accessory"], names))
        elif kind in ("header", "context", "actions"):
            parts = block.get("elements") or [block.get("text")]
            glue = " · " if kind == "context" else " "
            lines.append(glue.join(_element(part, names) for part in parts))
        elif kind == "divider":
            lines.append("---")
        else:
            lines.append(_element(block, names))
    return lines


def _element(element: dict[str, Any], names: Names) -> str:
    kind = element.get("type")
    if kind in ("mrkdwn", "plain_text"):
        return _text(element, names)
    if kind == "button":
        return f"[{_text(element.get('text'), names)}]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind == "input":
        return f"{_text(element.get('label'), names)}: {_element(element['element'], names)}"
    if kind == "rich_text":
        return "".join(_rich(element))
    chosen = element.get("initial_option") or {}
    shown = chosen.get("text") or element.get("placeholder")
    return f"[{_text(shown, names) if shown else kind} ▾]"


def _text(obj: dict[str, Any] | None, names: Names) -> str:
    return mrkdwn(str((obj or {}).get("text", "")), names)


def _rich(element: dict[str, Any]) -> list[str]:
    return [element.get("text", "")] + [
        part for child in element.get("elements", []) for part in _rich(child)
    ]
