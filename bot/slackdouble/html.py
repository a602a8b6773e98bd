"""A channel as Slack's desktop client shows it, as one self-contained HTML page.

Pure: `render_html(channel_name, messages, replies, names)` returns the page (inline CSS,
no external assets, no JavaScript): the aubergine sidebar with the channel highlighted, the
channel header, a date divider per UTC day, then each top-level message (oldest first) with
its avatar (initials on a colour picked from the sender's id), name (an APP badge for bot
messages), time (HH:MM UTC from the ts) and Block Kit: header, section text and fields (two
columns) and accessory, context, actions (buttons: default, primary green, danger red;
selects), divider, image (a placeholder: no assets), anything else by its text.

Threads are drawn inline: under a parent with replies, a "N replies · Last reply HH:MM"
line, then a bordered thread box with every reply, oldest first; a broadcast reply is
marked "Also sent to the channel" (it is not repeated in the channel). Replies whose parent
is gone sit under a "This message was deleted." placeholder. "(edited)" follows an edited
message's last text.

Escaping: every character of message text is HTML-escaped before formatting is applied, so
no text can inject markup. mrkdwn is read as Slack does: `<…>` tokens become mentions (the
names from `Names`), date fallbacks and links (http, https and mailto only); `&amp; &lt;
&gt;` show as `& < >`; then ```pre```, `code`, *bold*, _italic_ and ~strike~. `plain_text`
is never parsed (an entity shows literally), as the builders in `bot.slack.blocks.kit` assume.
"""

from __future__ import annotations

import html
import re
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.slackdouble.state import Message
from bot.slackdouble.transcript import Names, mrkdwn, resolve

__all__ = ["mrkdwn_html", "render_html"]

BOT_NAME = "migrate-bot"

_ANGLED = re.compile(r"<([^<>]*)>")
# Placeholders for rendered pieces while the rest is formatted: one private-use character
# each, from a plane no text is expected to use (any such character in text is replaced).
_SLOT_BASE = 0xF0000
_SLOTS = re.compile("[\U000f0000-\U000ffffd]")
_PRE = re.compile(r"\n?```\n?(.+?)\n?```\n?", re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_STYLES = [
    (re.compile(rf"(?<![\w{m}]){m}(?=[^\s{m}])([^{m}\n]+?)(?<=[^\s{m}]){m}(?![\w{m}])"), tag)
    for m, tag in ((r"\*", "b"), ("_", "i"), ("~", "s"))
]
_LINK = re.compile(r"(?:https?://|mailto:)[^\s\"'<>]+", re.I)
_WORDS = re.compile(r"[A-Za-z0-9]+")
_SPECIAL = ("here", "channel", "everyone")
_TAIL_TAKERS = ("section", "context")  # blocks that end in text "(edited)" can follow
_AVATAR_COLOURS = (
    "#2bac76",
    "#1264a3",
    "#4a154b",
    "#36c5f0",
    "#9e3997",
    "#e8912d",
    "#0b4c8c",
    "#3aa3e3",
)


def render_html(
    channel_name: str,
    messages: list[Message],
    replies: Mapping[str, list[Message]],
    names: Names,
    title: str = "migrate-bot demo",
) -> str:
    """The channel as a self-contained page: `replies` maps a parent's ts to its replies."""
    channel = channel_name.lstrip("#") or "channel"
    parents = {m.ts: m for m in messages}
    orphans = [ts for ts, thread in replies.items() if thread and ts not in parents]
    rows: list[str] = []
    day = ""
    for ts in sorted([*parents, *orphans], key=_ts_key):
        when = _datetime(ts)
        if when is not None and when.strftime("%Y-%m-%d") != day:
            day = when.strftime("%Y-%m-%d")
            rows.append(_date_divider(when))
        parent = parents.get(ts)
        rows.append(_message(parent, names) if parent else _deleted(ts))
        thread = sorted(replies.get(ts, []), key=lambda m: _ts_key(m.ts))
        if thread:
            rows.append(_thread(thread, channel, names))
    body = "".join(rows) or '<div class="empty">No messages yet.</div>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<div class="topbar"><div class="search">Search {_esc(title)}</div></div>'
        f'<div class="app">{_sidebar(channel, names, title)}'
        '<main class="main">'
        f'<div class="chan-head"><span class="chan-name"># {_esc(channel)}</span></div>'
        f'<div class="messages">{body}</div>'
        f'<div class="composer"><div class="composer-box">Message #{_esc(channel)}</div></div>'
        "</main></div></body></html>\n"
    )


def mrkdwn_html(text: str, names: Names) -> str:
    """mrkdwn as HTML: escaped first, then tokens resolved and formatting applied."""
    slots: list[str] = []

    def stash(fragment: str) -> str:
        slots.append(fragment)
        return chr(_SLOT_BASE + len(slots) - 1)

    text = _SLOTS.sub("\ufffd", str(text))
    pieces = _ANGLED.split(text)  # even indexes: plain text; odd: the inside of a token
    out = "".join(
        stash(_token(piece, names)) if i % 2 else _esc(mrkdwn(piece, names))
        for i, piece in enumerate(pieces)
    )
    out = _PRE.sub(lambda m: stash(f'<pre class="pre">{m.group(1)}</pre>'), out)
    out = _CODE.sub(lambda m: stash(f"<code>{m.group(1)}</code>"), out)
    for pattern, tag in _STYLES:
        out = pattern.sub(lambda m, tag=tag: f"<{tag}>{m.group(1)}</{tag}>", out)

    def restore(match: re.Match[str]) -> str:
        return _SLOTS.sub(restore, slots[ord(match.group()) - _SLOT_BASE])

    return _SLOTS.sub(restore, out)


# --- tokens and text objects -------------------------------------------------------------


def _token(inner: str, names: Names) -> str:
    """One `<…>` token: a mention, a date's fallback, a link, or its text."""
    target, bar, label = inner.partition("|")
    shown = resolve(target + bar + _unescape(label), names)
    if target.startswith(("@", "#", "!subteam^")):
        return f'<span class="mention">{_esc(shown)}</span>'
    if target.startswith("!date^"):
        return f'<span class="date">{_esc(shown)}</span>'
    if target.startswith("!"):
        loud = " loud" if target[1:] in _SPECIAL else ""
        return f'<span class="mention{loud}">{_esc(shown)}</span>' if loud else _esc(shown)
    url = _unescape(target)
    if _LINK.fullmatch(url):
        return f'<a href="{_esc(url)}">{_esc(_unescape(label) or url)}</a>'
    return _esc(_unescape(label) or url)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any, names: Names) -> str:
    """A text object as HTML: mrkdwn formatted, plain_text (or a bare string) escaped."""
    if isinstance(obj, str):
        return _esc(obj)
    if not isinstance(obj, dict):
        return ""
    value = str(obj.get("text", ""))
    return mrkdwn_html(value, names) if obj.get("type") == "mrkdwn" else _esc(value)


# --- messages ----------------------------------------------------------------------------


def _message(message: Message, names: Names, in_thread: bool = False) -> str:
    bot = bool(message.bot_id)
    sender = names.users.get(message.user) or (BOT_NAME if bot else message.user or "someone")
    edited = '<span class="edited">(edited)</span>' if message.edits else ""
    content = _content(message, names, edited)
    broadcast = (
        '<div class="broadcast">↪ Also sent to the channel</div>'
        if in_thread and message.reply_broadcast
        else ""
    )
    badge = '<span class="badge">APP</span>' if bot else ""
    stamp = _datetime(message.ts)
    time = (
        f'<span class="time" title="{stamp:%Y-%m-%d %H:%M:%S} UTC">{stamp:%H:%M}</span>'
        if stamp
        else ""
    )
    return (
        f'<div class="msg" id="m{_esc(message.ts)}">{_avatar(message.user or sender, sender)}'
        f'<div class="msg-body">{broadcast}'
        f'<div class="meta"><span class="sender">{_esc(sender)}</span>{badge}{time}</div>'
        f"{content}</div></div>"
    )


def _content(message: Message, names: Names, tail: str) -> str:
    """The blocks (or the text, without blocks), with `tail` after the last text."""
    blocks = [b for b in message.blocks if isinstance(b, dict)] if message.blocks else []
    if not blocks:
        text = mrkdwn_html(message.text, names) + (f" {tail}" if tail else "")
        return f'<div class="b-section"><div class="mrkdwn">{text}</div></div>'
    parts = [_block(b, names) for b in blocks[:-1]]
    if blocks[-1].get("type") in _TAIL_TAKERS:
        parts.append(_block(blocks[-1], names, tail))
    else:
        parts += [_block(blocks[-1], names), f'<div class="tail">{tail}</div>' if tail else ""]
    return "".join(parts)


def _deleted(ts: str) -> str:
    return (
        f'<div class="msg deleted" id="m{_esc(ts)}"><div class="avatar gone">🗑</div>'
        '<div class="msg-body"><div class="gone-text">This message was deleted.</div></div></div>'
    )


def _thread(thread: list[Message], channel: str, names: Names) -> str:
    count = f"{len(thread)} repl{'y' if len(thread) == 1 else 'ies'}"
    people: dict[str, str] = {}
    for reply in thread:
        who = names.users.get(reply.user) or (BOT_NAME if reply.bot_id else reply.user)
        people.setdefault(reply.user or who, who)
    faces = "".join(_avatar(key, who, "mini") for key, who in list(people.items())[:3])
    last = _datetime(thread[-1].ts)
    when = f'<span class="last">Last reply {last:%H:%M}</span>' if last else ""
    return (
        f'<div class="thread-link">{faces}<span class="count">{count}</span>{when}</div>'
        '<div class="thread">'
        f'<div class="thread-head"><span class="thread-title">Thread</span>'
        f'<span class="thread-chan"># {_esc(channel)}</span></div>'
        f'<div class="replies-rule"><span>{count}</span></div>'
        + "".join(_message(reply, names, in_thread=True) for reply in thread)
        + "</div>"
    )


def _avatar(key: str, shown: str, size: str = "") -> str:
    initials = "".join(w[0] for w in _WORDS.findall(shown)[:2]).upper() or "?"
    colour = _AVATAR_COLOURS[zlib.crc32(key.encode()) % len(_AVATAR_COLOURS)]
    classes = f"avatar {size}".strip()
    return f'<div class="{classes}" style="background:{colour}">{_esc(initials)}</div>'


def _date_divider(when: datetime) -> str:
    day = when.day
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    label = f"{when:%A}, {when:%B} {day}{suffix}"
    return f'<div class="day"><span class="day-pill">{label}</span></div>'


# --- blocks ------------------------------------------------------------------------------


def _block(block: dict[str, Any], names: Names, tail: str = "") -> str:
    """One block as HTML; an unknown or malformed block shows whatever text it has."""
    try:
        return _known_block(block, names, tail)
    except (AttributeError, TypeError, KeyError, ValueError, IndexError):
        after = f" {tail}" if tail else ""
        return f'<div class="b-unknown">{_esc(_any_text(block))}{after}</div>'


def _known_block(block: dict[str, Any], names: Names, tail: str) -> str:
    kind = block.get("type")
    after = f" {tail}" if tail else ""
    if kind == "header":
        return f'<div class="b-header">{_text(block.get("text"), names)}</div>'
    if kind == "section":
        fields = [f for f in block.get("fields") or [] if f]
        text = block.get("text")
        inner = f'<div class="mrkdwn">{_text(text, names)}{"" if fields else after}</div>'
        inner = inner if text else ""
        if fields:
            cells = "".join(f'<div class="field mrkdwn">{_text(f, names)}</div>' for f in fields)
            inner += f'<div class="fields">{cells}</div>'
        if tail and (fields or not text):
            inner += f'<div class="tail">{tail}</div>'
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            side = f'<div class="accessory">{_element(accessory, names)}</div>'
            return f'<div class="b-section with-accessory"><div>{inner}</div>{side}</div>'
        return f'<div class="b-section">{inner}</div>'
    if kind == "context":
        items = "".join(
            f'<span class="ctx-el">{_element(e, names)}</span>'
            for e in block.get("elements") or []
            if isinstance(e, dict)
        )
        return f'<div class="b-context">{items}{after}</div>'
    if kind == "actions":
        items = "".join(
            _element(e, names) for e in block.get("elements") or [] if isinstance(e, dict)
        )
        return f'<div class="b-actions">{items}</div>'
    if kind == "divider":
        return '<hr class="b-divider">'
    if kind == "image":
        return f'<div class="b-image">{_image(block, names)}</div>'
    if kind == "input":
        label = _text(block.get("label"), names)
        element = block.get("element")
        field = _element(element, names) if isinstance(element, dict) else ""
        return f'<div class="b-input"><div class="label">{label}</div>{field}</div>'
    if kind == "rich_text":
        return f'<div class="b-section"><div class="mrkdwn">{_esc(_any_text(block))}</div></div>'
    if isinstance(block.get("text"), dict | str):
        text = _text(block["text"], names)
        return f'<div class="b-section"><div class="mrkdwn">{text}</div></div>'
    return f'<div class="b-unknown">{_esc(_any_text(block))}</div>'


def _element(element: dict[str, Any], names: Names) -> str:
    kind = element.get("type")
    if kind in ("mrkdwn", "plain_text"):
        return _text(element, names)
    if kind == "button":
        style = element.get("style")
        styled = f" btn-{style}" if style in ("primary", "danger") else ""
        label = _text(element.get("text"), names)
        return f'<button type="button" class="btn{styled}">{label}</button>'
    if kind == "image":
        return _image(element, names)
    if kind == "overflow":
        return '<button type="button" class="btn overflow">⋯</button>'
    chosen = element.get("initial_option") or {}
    shown = (chosen.get("text") if isinstance(chosen, dict) else None) or element.get("placeholder")
    label = _text(shown, names) if shown else _esc(str(kind or "element").replace("_", " "))
    return f'<span class="select">{label}<span class="caret">▾</span></span>'


def _image(obj: dict[str, Any], names: Names) -> str:
    alt = obj.get("alt_text") or _text(obj.get("title"), names) or "image"
    return f'<span class="image" title="{_esc(str(alt))}">🖼 {_esc(str(alt))}</span>'


def _any_text(node: Any) -> str:
    """Every "text" string inside a block, joined: what an unknown block shows."""
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return " ".join([*own, *filter(None, (_any_text(v) for v in node.values()))])
    if isinstance(node, list):
        return " ".join(filter(None, map(_any_text, node)))
    return ""


# --- helpers -----------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _ts_key(ts: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in ts.split("."))
    except ValueError:
        return (0,)


def _datetime(ts: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(ts.split(".")[0]), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


_FONT = (
    '"Slack-Lato", Lato, -apple-system, BlinkMacSystemFont, "Segoe UI", "Helvetica Neue", '
    'Helvetica, Arial, sans-serif, "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji"'
)
_MONO = 'Monaco, Menlo, Consolas, "DejaVu Sans Mono", "Courier New", monospace'

_CSS = f"""
*{{box-sizing:border-box}}
html,body{{margin:0;padding:0}}
body{{font-family:{_FONT};font-size:15px;line-height:1.46668;color:#1d1c1d;background:#fff;
-webkit-font-smoothing:antialiased}}
.topbar{{height:40px;background:#350d36;display:flex;align-items:center;justify-content:center}}
.search{{width:42%;max-width:720px;height:26px;border-radius:6px;background:#644565;
color:#e6dae6;font-size:13px;display:flex;align-items:center;padding:0 12px}}
.app{{display:flex;min-height:calc(100vh - 40px)}}
.sidebar{{width:260px;flex:none;background:#3f0e40;color:#cfc3cf;padding-bottom:16px}}
.ws{{height:49px;display:flex;align-items:center;padding:0 16px;color:#fff;font-weight:900;
font-size:18px;border-bottom:1px solid #5d2c5d}}
.ws .caret{{font-size:11px;margin-left:6px;opacity:.8}}
.nav{{padding:10px 0 2px}}
.side-head{{height:28px;display:flex;align-items:center;padding:0 16px;font-size:15px;
margin-top:10px}}
.side-head .tri{{font-size:10px;width:18px;opacity:.8}}
.item{{height:28px;display:flex;align-items:center;padding:0 16px 0 26px;font-size:15px;
white-space:nowrap;overflow:hidden}}
.item .glyph{{width:20px;opacity:.8}}
.item.active{{background:#1164a3;color:#fff}}
.item.active .glyph{{opacity:1}}
.dot{{width:9px;height:9px;border-radius:50%;background:#2bac76;margin:0 8px 0 4px;flex:none}}
.dot.away{{background:transparent;border:1px solid #cfc3cf}}
.main{{flex:1;min-width:0;display:flex;flex-direction:column;background:#fff}}
.chan-head{{height:49px;flex:none;display:flex;align-items:center;padding:0 20px;
border-bottom:1px solid #dddddd}}
.chan-name{{font-weight:900;font-size:18px}}
.messages{{flex:1;padding:0 0 12px}}
.empty{{padding:20px;color:#616061}}
.day{{position:relative;text-align:center;margin:12px 0 4px;height:28px}}
.day:before{{content:"";position:absolute;left:0;right:0;top:14px;border-top:1px solid #dddddd}}
.day-pill{{position:relative;display:inline-block;background:#fff;border:1px solid #dddddd;
border-radius:24px;padding:0 16px;height:28px;line-height:26px;font-size:13px;font-weight:700}}
.msg{{display:flex;padding:8px 20px}}
.avatar{{width:36px;height:36px;flex:none;border-radius:6px;margin-right:8px;color:#fff;
font-weight:700;font-size:14px;display:flex;align-items:center;justify-content:center;
margin-top:2px}}
.avatar.mini{{width:24px;height:24px;font-size:10px;border-radius:4px;margin:0 4px 0 0}}
.avatar.gone{{background:#f2f2f2;color:#868686;font-size:16px}}
.msg-body{{flex:1;min-width:0}}
.meta{{line-height:22px}}
.sender{{font-weight:900}}
.badge{{display:inline-block;font-size:10px;font-weight:700;line-height:14px;padding:0 3px;
border-radius:2px;background:rgba(29,28,29,.13);color:rgba(29,28,29,.7);margin-left:4px;
vertical-align:2px}}
.time{{font-size:12px;color:#616061;margin-left:6px}}
.gone-text{{color:#616061;font-style:italic;line-height:36px}}
.mrkdwn{{white-space:pre-wrap;overflow-wrap:anywhere}}
.b-header{{font-size:18px;font-weight:900;line-height:1.33;margin:4px 0 4px}}
.b-section{{margin:2px 0 6px}}
.b-section.with-accessory{{display:flex;gap:12px;justify-content:space-between}}
.accessory{{flex:none}}
.fields{{display:grid;grid-template-columns:1fr 1fr;gap:6px 16px;margin-top:4px}}
.b-context{{font-size:12px;line-height:18px;color:#616061;margin:4px 0 6px;
white-space:pre-wrap;overflow-wrap:anywhere}}
.ctx-el+.ctx-el{{margin-left:8px}}
.b-context code{{font-size:11px}}
.b-actions{{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 6px}}
.btn{{font-family:inherit;font-size:13px;font-weight:700;height:28px;padding:0 12px;
border-radius:4px;border:1px solid rgba(29,28,29,.3);background:#fff;color:#1d1c1d;
line-height:26px;cursor:default;white-space:nowrap}}
.btn-primary{{background:#007a5a;border-color:#007a5a;color:#fff}}
.btn-danger{{background:#e01e5a;border-color:#e01e5a;color:#fff}}
.btn.overflow{{padding:0 8px}}
.select{{display:inline-flex;align-items:center;height:28px;padding:0 10px;font-size:13px;
border:1px solid rgba(29,28,29,.3);border-radius:4px}}
.select .caret{{margin-left:8px;font-size:10px}}
.b-divider{{border:0;border-top:1px solid #dddddd;margin:8px 0}}
.b-image,.image{{display:inline-block;color:#616061;font-size:13px;border:1px dashed #ccc;
border-radius:4px;padding:4px 8px}}
.b-input .label{{font-weight:700}}
.b-unknown{{color:#616061}}
b{{font-weight:700}}
code{{font-family:{_MONO};font-size:12px;line-height:18px;color:#e01e5a;
background:rgba(29,28,29,.04);border:1px solid rgba(29,28,29,.13);border-radius:3px;
padding:2px 3px 1px;white-space:pre-wrap}}
.pre{{font-family:{_MONO};font-size:12px;line-height:1.50001;margin:4px 0;padding:8px;
background:rgba(29,28,29,.04);border:1px solid rgba(29,28,29,.13);border-radius:4px;
white-space:pre-wrap;overflow-wrap:anywhere}}
a{{color:#1264a3;text-decoration:none}}
.mention{{color:#1264a3;background:rgba(29,155,209,.1);border-radius:3px;padding:0 2px}}
.mention.loud{{color:#1d1c1d;background:rgba(242,199,68,.4)}}
.date{{white-space:nowrap}}
.edited,.tail{{font-size:13px;color:#616061}}
.broadcast{{font-size:13px;color:#616061;line-height:18px}}
.thread-link{{display:flex;align-items:center;margin:-4px 20px 4px 64px;font-size:13px;
line-height:24px}}
.thread-link .count{{color:#1264a3;font-weight:700;margin-left:2px}}
.thread-link .last{{color:#616061;margin-left:8px}}
.thread{{margin:4px 20px 12px 64px;border:1px solid #dddddd;border-radius:8px;overflow:hidden;
box-shadow:0 1px 3px rgba(0,0,0,.06)}}
.thread-head{{display:flex;align-items:baseline;gap:8px;padding:10px 16px;
border-bottom:1px solid #dddddd;background:#f8f8f8}}
.thread-title{{font-weight:900;font-size:15px}}
.thread-chan{{font-size:13px;color:#616061}}
.replies-rule{{display:flex;align-items:center;gap:8px;padding:10px 16px 0;font-size:13px;
color:#616061}}
.replies-rule:after{{content:"";flex:1;border-top:1px solid #dddddd}}
.thread .msg{{padding:8px 16px}}
.composer{{padding:0 20px 20px}}
.composer-box{{border:1px solid #bbbabb;border-radius:8px;padding:11px 12px;color:#868686;
font-size:15px;height:82px}}
"""


def _sidebar(channel: str, names: Names, title: str) -> str:
    channels = sorted({*names.channels.values(), channel})
    rows = "".join(
        f'<div class="item{" active" if c == channel else ""}">'
        f'<span class="glyph">#</span>{_esc(c)}</div>'
        for c in channels
    )
    people = sorted({n for n in names.users.values() if n != BOT_NAME})
    dms = "".join(
        f'<div class="item"><span class="dot{" away" if i % 2 else ""}"></span>{_esc(p)}</div>'
        for i, p in enumerate(people)
    )
    dm_section = (
        f'<div class="side-head"><span class="tri">▼</span>Direct messages</div>{dms}'
        if dms
        else ""
    )
    return (
        '<nav class="sidebar">'
        f'<div class="ws">{_esc(title)}<span class="caret">▼</span></div>'
        '<div class="nav">'
        '<div class="item"><span class="glyph">🧵</span>Threads</div>'
        '<div class="item"><span class="glyph">@</span>Mentions &amp; reactions</div>'
        "</div>"
        f'<div class="side-head"><span class="tri">▼</span>Channels</div>{rows}{dm_section}'
        '<div class="side-head"><span class="tri">▼</span>Apps</div>'
        f'<div class="item"><span class="dot"></span>{BOT_NAME}</div>'
        "</nav>"
    )
