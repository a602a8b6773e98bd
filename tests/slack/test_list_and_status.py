"""`/migrate list` and `/migrate status`: linked ids, trimming, steps and the thread link."""

from __future__ import annotations

import json
import re

from bot.slack.blocks import request_list, request_status
from tests.slack.blockkit import assert_limits, buttons, card, worst_card


def test_empty_list_says_no_requests_yet():
    """With nothing filed, the list says so."""
    assert request_list([], [], {})["blocks"][0]["text"]["text"] == "no requests yet"


def test_list_links_ids_and_caps_finished_at_ten():
    """Open requests come first with linked ids; at most ten finished ones follow."""
    finished = [card(id=n, state="succeeded") for n in range(1, 15)]
    message = request_list([card(run_at=0)], finished, {42: "https://x.slack.com/p1"})
    first, second = (b["text"]["text"] for b in message["blocks"])
    assert first.splitlines()[1] == (
        "<https://x.slack.com/p1|#42> *vm01* · host1 → host3 · awaiting approval · window "
        "<!date^0^{date_short_pretty} {time}|1970-01-01 00:00 UTC>"
    )
    assert first.startswith("*Open requests*") and second.startswith("*Last finished*")
    assert len(second.splitlines()) == 11


def test_long_list_is_trimmed_to_fit_one_message():
    """Hundreds of open requests with long names still make one message within the limits."""
    many = [worst_card(id=n) for n in range(500)]
    links = {n: "https://x.slack.com/archives/C1/p" + "1" * 60 for n in range(500)}
    message = request_list(many, many, links)
    assert_limits(message)
    assert len(json.dumps(message, ensure_ascii=False)) < 12_000
    opened, last = "\n".join(b["text"]["text"] for b in message["blocks"]).split("*Last finished*")
    assert re.search(r"\n… and \d+ more$", opened)
    assert len(last.strip().splitlines()) == 10


def test_list_does_not_link_an_unsafe_permalink():
    """A permalink that could break the link token is not used."""
    message = request_list([card()], [], {42: "https://x|<!channel>"})
    assert "#42 *vm01*" in message["blocks"][0]["text"]["text"]


def test_status_shows_steps_and_thread_link_without_buttons():
    """`/migrate status` shows the card, its steps and a link to the thread, no buttons."""
    steps = [("shutdown", "done", 12.0), ("migrate", "running", None)]
    message = request_status(card(state="running"), "https://x.slack.com/p1", steps)
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert "*Steps*\n✅ shutdown done · 12 s\n⏳ migrate running" in texts
    assert texts[-1] == "<https://x.slack.com/p1|open thread>"
    assert buttons(message) == []
