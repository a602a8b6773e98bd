"""Every Web API method the bot uses, through the real slack_sdk WebClient."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clock import ManualClock
from bot.slackdouble import SlackDouble, form_body, post
from tests.slackdouble.kit import actions, button, modal, section, text

MODAL = modal(section("Pick a host"))


def refused(call: Callable[[], Any]) -> dict[str, Any]:
    """The body of the error answer the call got."""
    with pytest.raises(SlackApiError) as raised:
        call()
    return dict(raised.value.response.data)


def test_auth_test_names_the_bot(client: WebClient) -> None:
    """auth.test answers the bot's user, bot and team ids, which bolt reads at start-up."""
    answer = client.auth_test()
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == ("U0BOT", "B0BOT", "T1")


def test_post_message_ts_is_slack_shaped_unique_and_increasing(
    client: WebClient, clock: ManualClock
) -> None:
    """Each post gets a ts like Slack's from the clock, strictly after the one before."""
    first = client.chat_postMessage(channel="C1", text="one")["ts"]
    second = client.chat_postMessage(channel="C2", text="two")["ts"]
    clock.advance(2.5)
    third = client.chat_postMessage(channel="C1", text="three")["ts"]
    assert [first, second, third] == ["1764100000.000000", "1764100000.000100", "1764100002.500000"]


def test_post_message_stores_text_blocks_and_answers_the_message(
    client: WebClient, double: SlackDouble
) -> None:
    """The answer carries channel, ts and the message; the double keeps both, in order."""
    answer = client.chat_postMessage(channel="C1", text="fallback", blocks=[section("*hi*")])
    client.chat_postMessage(channel="C1", text="second")
    assert answer["channel"] == "C1"
    assert answer["message"]["blocks"] == [section("*hi*")]
    assert answer["message"]["bot_id"] == "B0BOT"
    stored = double.messages("C1")
    assert [m.text for m in stored] == ["fallback", "second"]
    assert stored[0].blocks == [section("*hi*")]
    assert stored[0].ts == answer["ts"]


def test_thread_replies_and_broadcast(client: WebClient, double: SlackDouble) -> None:
    """Replies stay out of the channel list, in their thread; reply_broadcast is kept."""
    parent = client.chat_postMessage(channel="C1", text="request")["ts"]
    client.chat_postMessage(channel="C1", text="step 1", thread_ts=parent)
    client.chat_postMessage(channel="C1", text="done", thread_ts=parent, reply_broadcast=True)
    assert [m.text for m in double.messages("C1")] == ["request"]
    replies = double.replies("C1", parent)
    assert [(m.text, m.reply_broadcast) for m in replies] == [("step 1", False), ("done", True)]


def test_post_message_refusals(client: WebClient) -> None:
    """Unknown channel, no content, over 50 blocks and a reply's ts are refused as Slack does."""
    parent = client.chat_postMessage(channel="C1", text="request")["ts"]
    reply = client.chat_postMessage(channel="C1", text="r", thread_ts=parent)["ts"]
    assert refused(lambda: client.chat_postMessage(channel="C9", text="x"))["error"] == (
        "channel_not_found"
    )
    empty = refused(lambda: client.api_call("chat.postMessage", json={"channel": "C1"}))
    assert empty["error"] == "no_text"
    too_many = refused(
        lambda: client.chat_postMessage(channel="C1", text="x", blocks=[section("b")] * 51)
    )
    assert too_many["error"] == "invalid_blocks"
    assert too_many["errors"] == ["must be less than 51 items [json-pointer:/blocks]"]
    nested = refused(lambda: client.chat_postMessage(channel="C1", text="x", thread_ts=reply))
    assert nested["error"] == "invalid_thread_ts"


def test_block_kit_limits_inside_blocks(client: WebClient) -> None:
    """A too-long header and a button with an unknown style are named by JSON pointer."""
    blocks = [
        {"type": "header", "text": text("plain_text", "h" * 151)},
        actions(button("go", style="warning")),
    ]
    answer = refused(lambda: client.chat_postMessage(channel="C1", text="x", blocks=blocks))
    assert answer["errors"] == [
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        "must be one of ['primary', 'danger'] [json-pointer:/blocks/1/elements/0/style]",
    ]


def test_update_keeps_history_and_counts_edits(
    client: WebClient, double: SlackDouble, clock: ManualClock
) -> None:
    """chat.update replaces text and blocks, keeps earlier versions, counts the edits."""
    ts = client.chat_postMessage(channel="C1", text="0%", blocks=[section("0%")])["ts"]
    clock.advance(5)
    client.chat_update(channel="C1", ts=ts, text="40%", blocks=[section("40%")])
    answer = client.chat_update(channel="C1", ts=ts, text="80%")
    assert answer["text"] == "80%"
    message = double.message("C1", ts)
    assert (message.text, message.blocks, message.edits) == ("80%", [section("40%")], 2)
    assert [(r.text, r.replaced_at) for r in message.history] == [
        ("0%", 1_764_100_005.0),
        ("40%", 1_764_100_005.0),
    ]
    missing = refused(lambda: client.chat_update(channel="C1", ts="1.000000", text="x"))
    assert missing["error"] == "message_not_found"


def test_post_ephemeral(client: WebClient, double: SlackDouble) -> None:
    """chat.postEphemeral answers a message_ts and is kept per user, never in the channel."""
    answer = client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert answer["message_ts"]
    assert [e.text for e in double.ephemerals(user="U1")] == ["only you"]
    assert double.ephemerals(user="U2") == []
    assert double.messages("C1") == []
    unknown = refused(lambda: client.chat_postEphemeral(channel="C1", user="U9", text="x"))
    assert unknown["error"] == "user_not_found"


def test_get_permalink(client: WebClient) -> None:
    """Permalinks name channel and ts; a reply's link also names its thread."""
    parent = client.chat_postMessage(channel="C1", text="request")["ts"]
    reply = client.chat_postMessage(channel="C1", text="r", thread_ts=parent)["ts"]
    link = client.chat_getPermalink(channel="C1", message_ts=parent)["permalink"]
    assert link == "https://double.slack.test/archives/C1/p1764100000000000"
    reply_link = client.chat_getPermalink(channel="C1", message_ts=reply)["permalink"]
    assert reply_link.endswith(f"p1764100000000100?thread_ts={parent}&cid=C1")


def test_delete(client: WebClient, double: SlackDouble) -> None:
    """chat.delete removes the message; deleting it again finds nothing."""
    ts = client.chat_postMessage(channel="C1", text="oops")["ts"]
    assert client.chat_delete(channel="C1", ts=ts)["ts"] == ts
    assert double.messages("C1") == []
    assert refused(lambda: client.chat_delete(channel="C1", ts=ts))["error"] == "message_not_found"


def test_views_open_and_update_with_hash(client: WebClient, double: SlackDouble) -> None:
    """views.open answers the view with an id and hash; a stale hash is a conflict."""
    view = client.views_open(trigger_id=double.trigger_id(), view=MODAL)["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert view["callback_id"] == "migrate"
    changed = {**MODAL, "blocks": [section("Pick a host: h2")]}
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=changed)["view"]
    assert updated["id"] == view["id"] and updated["hash"] != view["hash"]
    stale = refused(lambda: client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL))
    assert stale["error"] == "hash_conflict"
    assert double.views[view["id"]]["blocks"] == [section("Pick a host: h2")]


def test_views_update_by_external_id(client: WebClient, double: SlackDouble) -> None:
    """A view opened with an external_id can be updated by it; an unknown one is not_found."""
    client.views_open(trigger_id=double.trigger_id(), view={**MODAL, "external_id": "req-7"})
    answer = client.views_update(external_id="req-7", view={**MODAL, "external_id": "req-7"})
    assert answer["view"]["external_id"] == "req-7"
    assert refused(lambda: client.views_update(external_id="nope", view=MODAL))["error"] == (
        "not_found"
    )


def test_trigger_ids_are_single_use_and_short_lived(
    client: WebClient, double: SlackDouble, clock: ManualClock
) -> None:
    """A trigger opens one modal within 3 s; reused, late or made up, it is refused."""
    trigger = double.trigger_id()
    client.views_open(trigger_id=trigger, view=MODAL)
    late = double.trigger_id()
    clock.advance(3.5)
    assert refused(lambda: client.views_open(trigger_id=trigger, view=MODAL))["error"] == (
        "exchanged_trigger_id"
    )
    assert refused(lambda: client.views_open(trigger_id=late, view=MODAL))["error"] == (
        "expired_trigger_id"
    )
    assert refused(lambda: client.views_open(trigger_id="1.2.3", view=MODAL))["error"] == (
        "invalid_trigger_id"
    )


def test_views_push_stacks_at_most_three(client: WebClient, double: SlackDouble) -> None:
    """From inside a modal two views can be pushed; the third push is refused."""
    root = client.views_open(trigger_id=double.trigger_id(), view=MODAL)["view"]["id"]
    second = client.views_push(trigger_id=double.trigger_id(view_id=root), view=MODAL)["view"]
    third = client.views_push(trigger_id=double.trigger_id(view_id=second["id"]), view=MODAL)
    assert (second["root_view_id"], second["previous_view_id"]) == (root, root)
    assert third["view"]["previous_view_id"] == second["id"]
    fourth = refused(
        lambda: client.views_push(trigger_id=double.trigger_id(view_id=root), view=MODAL)
    )
    assert fourth["error"] == "push_limit_reached"


def test_modal_limits(client: WebClient, double: SlackDouble) -> None:
    """A modal title over 24 characters is refused with Slack's pointer."""
    long_title = modal(title="t" * 25)
    answer = refused(lambda: client.views_open(trigger_id=double.trigger_id(), view=long_title))
    assert answer["error"] == "invalid_arguments"
    assert answer["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]


def test_views_publish_sets_each_users_home_tab(client: WebClient, double: SlackDouble) -> None:
    """A home view per user, replaced whole under one view id; a stale hash, a modal, an
    unknown user or 101 blocks are refused as Slack refuses them."""
    home = {"type": "home", "blocks": [section("*Running now* <@U2>"), actions(button("approve"))]}
    first = client.views_publish(user_id="U1", view=home)["view"]
    assert first["id"].startswith("V") and first["type"] == "home" and first["hash"]
    second = client.views_publish(user_id="U1", view={**home, "blocks": [section("later")]})
    assert second["view"]["id"] == first["id"] and second["view"]["hash"] != first["hash"]
    stale = refused(lambda: client.views_publish(user_id="U1", hash=first["hash"], view=home))
    assert stale["error"] == "hash_conflict"
    assert double.homes["U1"]["blocks"] == [section("later")] and "U2" not in double.homes
    assert double.views == {}  # a Home tab is not a modal
    assert refused(lambda: client.views_publish(user_id="U9", view=home))["error"] == (
        "user_not_found"
    )
    not_home = refused(lambda: client.views_publish(user_id="U1", view=MODAL))
    assert not_home["response_metadata"]["messages"] == [
        "[ERROR] must be home [json-pointer:/view/type]"
    ]
    too_long = {"type": "home", "blocks": [section("x")] * 101}
    answer = refused(lambda: client.views_publish(user_id="U2", view=too_long))
    assert answer["response_metadata"]["messages"] == [
        "[ERROR] must be less than 101 items [json-pointer:/view/blocks]"
    ]


def test_home_transcript_reads_the_tab_as_its_user_does(
    client: WebClient, double: SlackDouble
) -> None:
    """Mentions and channels become names, buttons a line of labels; nothing: ""."""
    assert double.home_transcript("U1") == ""
    blocks = [section("#1 in <#C1> by <@U2>"), actions(button("approve"), button("reject"))]
    client.views_publish(user_id="U1", view={"type": "home", "blocks": blocks})
    assert double.home_transcript("U1") == "#1 in #ops by @Bob\n[Approve] [Reject]\n"


def test_directory_lookups(client: WebClient) -> None:
    """usergroups.users.list, users.info and conversations.info answer from the setup."""
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U2", "U3"]
    assert client.users_info(user="U1")["user"]["profile"]["display_name"] == "Alice"
    assert client.conversations_info(channel="C2")["channel"]["name"] == "infra"
    assert refused(lambda: client.usergroups_users_list(usergroup="S9"))["error"] == (
        "no_such_subteam"
    )
    assert refused(lambda: client.users_info(user="U9"))["error"] == "user_not_found"
    assert refused(lambda: client.conversations_info(channel="C9"))["error"] == (
        "channel_not_found"
    )


def test_tokens(double: SlackDouble) -> None:
    """Each method takes its own kind of token; a wrong one is invalid_auth."""
    bot = WebClient(token="xoxb-test", base_url=double.api_url)
    url = bot.apps_connections_open(app_token="xapp-test")["url"]
    assert url.startswith(f"ws://127.0.0.1:{double.socket.port}/link/?ticket=")
    wrong_kind = refused(lambda: bot.apps_connections_open(app_token="xoxb-test"))
    assert wrong_kind["error"] == "not_allowed_token_type"
    app = WebClient(token="xapp-test", base_url=double.api_url)
    assert refused(app.auth_test)["error"] == "not_allowed_token_type"
    stranger = WebClient(token="xoxb-other", base_url=double.api_url)
    assert refused(stranger.auth_test)["error"] == "invalid_auth"
    assert refused(WebClient(base_url=double.api_url).auth_test)["error"] == "not_authed"


def test_unknown_method(client: WebClient) -> None:
    """A method the double does not know answers unknown_method."""
    assert refused(lambda: client.api_call("chat.scheduleMessage"))["error"] == "unknown_method"


def test_form_encoded_body_with_token_parameter(double: SlackDouble) -> None:
    """A form body with a `token` field and blocks as JSON text works as Slack accepts it."""
    body = form_body(
        {"token": "xoxb-test", "channel": "C1", "text": "t", "blocks": json.dumps([section("f")])}
    )
    status, _, answer = post(
        double.api_url + "chat.postMessage",
        body,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, json.loads(answer)["ok"]) == (200, True)
    assert double.messages("C1")[0].blocks == [section("f")]


def test_calls_are_recorded_with_arguments_and_status(
    client: WebClient, double: SlackDouble, clock: ManualClock
) -> None:
    """Every call is kept with its decoded arguments (no token), time and HTTP status."""
    client.chat_postMessage(channel="C1", text="hi", blocks=[section("hi")])
    clock.advance(1)
    refused(lambda: client.chat_update(channel="C1", ts="9.9", text="x"))
    first, second = double.calls
    assert first.method == "chat.postMessage"
    assert first.args == {"channel": "C1", "text": "hi", "blocks": [section("hi")]}
    assert (first.at, first.status) == (1_764_100_000.0, 200)
    assert (second.method, second.at) == ("chat.update", 1_764_100_001.0)
    assert double.calls_to("chat.update") == [second]
