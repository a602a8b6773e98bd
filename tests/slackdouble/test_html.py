"""The HTML rendering: a channel as Slack's desktop client shows it, escaped throughout."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest

from bot.slack import blocks
from bot.slackdouble import Message, Names, Revision
from bot.slackdouble.html import mrkdwn_html, render_html
from tests.slackdouble.kit import actions, button, section, text

NAMES = Names(
    users={"U0BOT": "migrate-bot", "U1": "Alice", "U2": "Bob"},
    handles={"S1": "vm-approvers"},
    channels={"C1": "ops", "C2": "infra"},
)
T0 = 1_764_100_000  # 2025-11-25 19:46:40 UTC
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def card(**summary: Any) -> blocks.Card:
    """A pending request for vm01 with a pass and a warning that offers a fix."""
    checks = [
        {"severity": "pass", "title": "Memory", "reason": "8 GiB free on host3"},
        {
            "severity": "warning",
            "title": "Snapshots",
            "reason": "2 snapshots",
            "fix": "Delete 2 snapshots: the next backup is a full one",
            "action": "delete_snapshots",
        },
    ]
    plan = {"vm": "vm01", "source": "host1", "dest": "host3", "mode": "offline"}
    plan |= {"call": "migrate_send", "estimate": "6 min", "downtime": "4 min", "snapshots": 2}
    plan |= {"disks": [{"label": "0", "size": "40 GiB", "from": "local", "to": "nfs1"}]}
    return blocks.Card(
        id=42,
        revision=3,
        state="pending",
        requester="U1",
        summary={**plan, "checks": checks, **summary},
        approvers="<!subteam^S1>",
    )


def message(ts: float, blocks_: list[dict] | None = None, **kw: Any) -> Message:
    base: dict[str, Any] = {"text": "fallback", "user": "U0BOT", "bot_id": "B0BOT"}
    base["blocks"] = blocks_ or []
    return Message(channel="C1", ts=f"{ts:.6f}", **{**base, **kw})


def page(*messages: Message, replies: dict[str, list[Message]] | None = None) -> str:
    return render_html("ops", list(messages), replies or {}, NAMES)


@dataclass
class Walk:
    """What a browser would see: the text shown and every start tag with its attributes."""

    text: str = ""
    tags: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def classes(self, tag: str) -> list[str]:
        return [attrs.get("class", "") for name, attrs in self.tags if name == tag]


class Checker(HTMLParser):
    """Walks a page and fails on a close tag that does not match the innermost open one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.walk = Walk()
        self.hidden = 0  # inside <style> or <title>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.walk.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in VOID:
            self.open.append(tag)
            self.hidden += tag in ("style", "title")

    def handle_endtag(self, tag: str) -> None:
        assert tag not in VOID, f"</{tag}> closes a void element"
        assert self.open, f"</{tag}> closes nothing"
        assert self.open[-1] == tag, f"</{tag}> closes <{self.open[-1]}>"
        self.open.pop()
        self.hidden -= tag in ("style", "title")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.walk.text += data


def walk(html: str) -> Walk:
    checker = Checker()
    checker.feed(html)
    checker.close()
    assert not checker.open, f"never closed: {checker.open}"
    return checker.walk


def test_script_in_a_vm_name_is_shown_as_text() -> None:
    """A VM named like a script tag shows its name as text and never yields a <script tag."""
    evil = "<script>alert(1)</script>"
    rendered = page(message(T0, **blocks.request_message(card(vm=evil))))
    assert "<script" not in rendered.lower()
    assert f"#42 · migrate {evil}" in walk(rendered).text


def test_raw_tokens_in_text_never_become_tags() -> None:
    """Unescaped `<script>` and `<!channel>` in mrkdwn are read as Slack tokens, not HTML."""
    rendered = page(message(T0, [section("<script>alert(1)</script> and <!channel>")]))
    assert "<script" not in rendered.lower()
    assert '<span class="mention loud">@channel</span>' in rendered


def test_escaped_channel_shows_literally_without_a_mention() -> None:
    """`&lt;!channel&gt;` (as the builders escape it) shows as `<!channel>`, not as a mention."""
    rendered = page(message(T0, [section("ping &lt;!channel&gt; now")]))
    assert "ping <!channel> now" in walk(rendered).text
    assert 'class="mention' not in rendered


def test_entities_are_shown_once_not_double_escaped() -> None:
    """Slack's `&amp; &lt; &gt;` show as `& < >`; a literal `&lt;` stays `&lt;` on screen."""
    rendered = page(message(T0, [section("R&amp;D &lt;web-01&gt; and &amp;lt;")]))
    assert "R&D <web-01> and &lt;" in walk(rendered).text
    assert "R&amp;D &lt;web-01&gt; and &amp;lt;" in rendered


@pytest.mark.parametrize(
    ("written", "html"),
    [
        ("*bold*", "<b>bold</b>"),
        ("_italic_", "<i>italic</i>"),
        ("~gone~", "<s>gone</s>"),
        ("`x = 1`", "<code>x = 1</code>"),
        ("```line 1\nline 2```", '<pre class="pre">line 1\nline 2</pre>'),
        ("*_both_*", "<b><i>both</i></b>"),
        ("`*not bold*`", "<code>*not bold*</code>"),
        ("vm_01_a and 2*3*4", "vm_01_a and 2*3*4"),
        ("<https://xo.test/vm?a=1&amp;b=2|the VM>", '<a href="https://xo.test/vm?a=1&amp;b=2">'),
        ("<javascript:alert(1)|click>", "click"),
        ("<@U1>", '<span class="mention">@Alice</span>'),
        ("<!subteam^S1>", '<span class="mention">@vm-approvers</span>'),
        ("<#C2>", '<span class="mention">#infra</span>'),
        ("<!here>", '<span class="mention loud">@here</span>'),
        ("<!date^1764100000^{date_short_pretty}|Nov 25>", '<span class="date">Nov 25</span>'),
        ("*<@U1>* approved", '<b><span class="mention">@Alice</span></b> approved'),
        ('a "quoted" <b>', "a &quot;quoted&quot; b"),
    ],
)
def test_mrkdwn_becomes_the_expected_tags(written: str, html: str) -> None:
    """Each mrkdwn construct becomes the HTML Slack's client would show."""
    rendered = mrkdwn_html(written, NAMES)
    assert html in rendered
    assert "javascript" not in rendered


def test_buttons_get_their_style_class() -> None:
    """Default, primary and danger buttons carry Slack's look as a class."""
    block = actions(
        button("cancel"), button("approve", style="primary"), button("reject", style="danger")
    )
    classes = walk(page(message(T0, [block]))).classes("button")
    assert classes == ["btn", "btn btn-primary", "btn btn-danger"]


def test_sections_fields_context_and_divider() -> None:
    """Header, fields in two columns, small grey context and a divider all render."""
    shown = [
        {"type": "header", "text": text("plain_text", "Plan &lt;a&gt;")},
        {"type": "section", "fields": [text("mrkdwn", "*From* host1"), text("mrkdwn", "*To* h3")]},
        {"type": "context", "elements": [text("mrkdwn", "requested by <@U1>")]},
        {"type": "divider"},
    ]
    rendered = page(message(T0, shown))
    seen = walk(rendered)
    assert "Plan &lt;a&gt;" in seen.text  # plain_text is never parsed
    assert '<div class="field mrkdwn"><b>From</b> host1</div>' in rendered
    assert "b-context" in seen.classes("div") and "b-divider" in seen.classes("hr")


def test_threads_show_every_reply_edits_and_broadcasts() -> None:
    """Every reply is shown under its parent, with the count, "(edited)" and the broadcast mark."""
    parent = message(T0, [section("the request")])
    edited = message(T0 + 60, [section("step 42%")], history=[Revision("x", [], T0 + 70)])
    thread = [
        message(T0 + 30, [section("approved")], thread_ts=parent.ts),
        edited,
        message(T0 + 90, [section("done")], thread_ts=parent.ts, reply_broadcast=True),
    ]
    orphan = message(T0 + 200, [section("reply to a deleted parent")], thread_ts="1.000100")
    seen = walk(page(parent, replies={parent.ts: thread, "1.000100": [orphan]}))
    for shown in ("the request", "approved", "step 42% (edited)", "done", "3 replies"):
        assert shown in seen.text
    assert "Also sent to the channel" in seen.text
    assert "This message was deleted." in seen.text and "reply to a deleted parent" in seen.text
    assert seen.text.index("the request") < seen.text.index("approved") < seen.text.index("done")


def test_page_is_well_formed() -> None:
    """The whole page, with every kind of block, parses with every opened tag closed."""
    every = [
        {"type": "header", "text": text("plain_text", "x")},
        {"type": "section", "text": text("mrkdwn", "*a* _b_ `c` ```d``` ~e~ <https://x|y>")},
        {"type": "section", "text": text("mrkdwn", "t"), "accessory": button("more")},
        {"type": "image", "image_url": "https://x/y.png", "alt_text": "graph"},
        {"type": "input", "label": text("plain_text", "VM"), "element": {"type": "static_select"}},
        {"type": "actions", "elements": [{"type": "overflow"}, {"type": "datepicker"}]},
        {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": []}]},
        {"type": "video", "title": text("plain_text", "a video")},
    ]
    user = message(T0 + 1, text="hi <@U0BOT>", user="U1", bot_id="")
    seen = walk(page(message(T0, every), user, replies={f"{T0:.6f}": [user]}))
    assert seen.tags[0][0] == "html"
    assert "migrate-bot" in seen.text and "Alice" in seen.text and "a video" in seen.text


def test_senders_badges_and_times() -> None:
    """Bot messages carry the APP badge, people's do not; times are HH:MM in UTC."""
    rendered = page(
        message(T0, text="from the bot"), message(T0 + 120, text="hi", user="U2", bot_id="")
    )
    seen = walk(rendered)
    assert "migrate-botAPP19:46" in seen.text.replace("\n", "")
    assert "Bob19:48hi" in seen.text.replace("\n", "")
    assert rendered.count('class="badge"') == 1


def test_malformed_and_textless_messages_do_not_crash() -> None:
    """A message without blocks shows its text; broken blocks show what text they have."""
    broken = [
        {"type": "section", "text": "a bare string", "fields": None},
        {"type": "context", "elements": None},
        {"type": "actions", "elements": [{"type": "button"}]},
        {"type": "mystery", "payload": {"text": "inner words"}},
        {"type": "header", "text": None},
        {"no type": True},
    ]
    seen = walk(page(message(T0, broken), message(T0 + 1, text="*only* text", blocks=[])))
    assert "a bare string" in seen.text and "inner words" in seen.text
    assert "only text" in seen.text


def test_a_realistic_request_message() -> None:
    """The request message shows its header, checklist and a green Approve button."""
    rendered = page(message(T0, **blocks.request_message(card())))
    seen = walk(rendered)
    assert "#42 · migrate vm01" in seen.text
    assert "Checklist" in seen.text and "@vm-approvers" in seen.text
    assert '<button type="button" class="btn btn-primary">Approve</button>' in rendered
    assert '<button type="button" class="btn btn-danger">Reject</button>' in rendered
    assert '<button type="button" class="btn btn-danger">Delete 2 snapshots</button>' in rendered


def test_empty_channel_renders_a_page() -> None:
    """A channel without messages is still a whole page with the channel highlighted."""
    seen = walk(render_html("#ops", [], {}, NAMES))
    assert "No messages yet." in seen.text
    assert any("active" in c for c in seen.classes("div"))
