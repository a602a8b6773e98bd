"""The Home tab through Slack's real protocols: `app_home_opened` as a signed Events API
callback, `views.publish` on the Slack double (Block Kit checked there), presses on the
tab as signed block_actions from a view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.engine import events as ev
from bot.messages import OUT_OF_DATE
from bot.slack.home import CHANGES, Home
from bot.states import State
from tests.support.pool import Pool
from tests.support.slack_rig import Bot, buttons, filed, running_bot

OFFLINE = "vm01 to host3 sr=nfs1 mode=offline"
BOB, CAROL, ALICE = "ULEAD", "U3", "U1"


@pytest.fixture
def bot(pool: Pool, tmp_path: Path) -> Iterator[Bot]:
    yield from running_bot(pool, tmp_path)


def home_of(bot: Bot, user: str, shows: str = "") -> dict[str, Any]:
    """`user`'s Home tab once it shows `shows`."""
    return bot.until(
        lambda: (home := bot.slack.homes.get(user)) and shows in read(bot, user) and home
    )


def read(bot: Bot, user: str) -> str:
    return bot.slack.home_transcript(user, {"S1": "leads"})


def publishes(bot: Bot, user: str) -> int:
    return len([c for c in bot.slack.calls_to("views.publish") if c.args["user_id"] == user])


def test_opening_the_tab_shows_what_waits_with_the_viewers_own_buttons(bot: Bot) -> None:
    """An approver sees Approve/Reject on a waiting request; the requester and a bystander
    see the request without them."""
    request_id = filed(bot, OFFLINE)
    for user in (BOB, CAROL, ALICE):
        bot.driver.open_home(user)
    bob = home_of(bot, BOB, "*Waiting for approval* (1)")
    assert buttons(bob["blocks"]) == ["approve", "reject"]
    shown = read(bot, BOB)
    assert f"#{request_id} *vm01* · host1 → host3 · awaiting approval · in #ops" in shown
    assert "requested by @alice" in shown and "Nothing runs now." in shown
    for user in (CAROL, ALICE):
        assert buttons(home_of(bot, user, "*Waiting for approval* (1)")["blocks"]) == []
    on_message = values(bot.request_message(request_id)["blocks"])
    assert values(bob["blocks"]) == {"approve": "1:1", "reject": "1:1"}
    assert on_message["approve"] == "1:1"  # the request message's values: id and revision


def values(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """Each button's value, by its action id."""
    return {
        e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
    }


def test_approve_on_the_tab_runs_the_request_and_the_tab_follows(bot: Bot) -> None:
    """Bob approves from his Home tab; the run starts, and his tab moves the request to the
    last outcomes with how it ended, without a publish per progress tick."""
    request_id = filed(bot, OFFLINE)
    bot.driver.open_home(BOB)
    home = home_of(bot, BOB, "*Waiting for approval* (1)")
    seen: list[ev.Event] = []
    bot.core.fleet.subscribe(seen.append)
    bot.driver.press_view(home, "approve", BOB, block_id=f"home:{request_id}")
    assert bot.state(request_id, State.SUCCEEDED, State.FAILED).state == State.SUCCEEDED
    done = home_of(bot, BOB, "*Last outcomes* (1)")
    shown = read(bot, BOB)
    assert "vm01 is running on host3" in shown and "Nothing waits." in shown
    assert buttons(done["blocks"]) == []
    assert "approve" not in buttons(bot.request_message(request_id)["blocks"])
    ticks = [e for e in seen if isinstance(e, ev.StepProgress)]
    changes = [e for e in seen if isinstance(e, CHANGES)]
    assert len(ticks) > len(changes), "the run reported progress"
    assert publishes(bot, BOB) <= 1 + len(changes)  # opened, then state changes: no ticks


def test_a_press_on_an_outdated_tab_is_refused_and_shown_the_current_one(bot: Bot) -> None:
    """Approve pressed on a copy of the tab older than the request (re-checked since) is
    "out of date": nothing is approved, and the tab comes back current with the refusal."""
    request_id = filed(bot, OFFLINE)
    bot.driver.open_home(BOB)
    old = home_of(bot, BOB, "*Waiting for approval* (1)")
    revision = bot.request(request_id).revision
    bot.press("recheck", request_id, ALICE)
    bot.until(lambda: bot.request(request_id).revision > revision)
    bot.driver.press_view(old, "approve", BOB, block_id=f"home:{request_id}")
    current = home_of(bot, BOB, OUT_OF_DATE)
    assert bot.request(request_id).state == State.PENDING
    fresh = f"{request_id}:{bot.request(request_id).revision}"
    assert values(current["blocks"]) == {"approve": fresh, "reject": fresh}
    assert not bot.slack.responses  # a Home tab has no response_url: nothing went there


def test_a_refused_press_on_the_tab_is_told_on_the_tab(bot: Bot) -> None:
    """A forged Approve from someone who may not approve is refused in words on their tab."""
    request_id = filed(bot, OFFLINE)
    bot.driver.open_home(BOB)
    home = home_of(bot, BOB, "*Waiting for approval* (1)")
    bot.driver.press_view(home, "approve", CAROL, block_id=f"home:{request_id}")
    home_of(bot, CAROL, "Only approvers may approve requests.")
    assert bot.request(request_id).state == State.PENDING


def test_a_new_request_reaches_the_tabs_of_recent_viewers_only(bot: Bot) -> None:
    """Filing refreshes the tab of whoever looked recently; nobody else is published to."""
    bot.driver.open_home(BOB)
    home_of(bot, BOB, "Nothing waits.")
    filed(bot, OFFLINE)
    home_of(bot, BOB, "*Waiting for approval* (1)")
    assert publishes(bot, CAROL) == 0


def test_viewers_are_forgotten_after_a_while(bot: Bot) -> None:
    """Someone who opened the tab more than RECENT_SECONDS ago is not refreshed any more."""
    now = [1000.0]
    front = bot.service.front
    home = Home(
        front.client,
        bot.core.store,
        front.desk.access,
        front.notifier.card,
        front.outbox,
        bot.core.pool().engine.clock,
        True,
        monotonic=lambda: now[0],
    )
    home.replier(BOB)
    now[0] += 60
    home.replier(CAROL)
    assert set(home.viewers()) == {BOB, CAROL}
    now[0] += 15 * 60 - 30
    assert home.viewers() == [CAROL]
