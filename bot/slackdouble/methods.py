"""The Web API methods the bot uses, answered as Slack answers them, against a `Workspace`.

One function per method takes the call's arguments (already decoded from form or JSON) and
returns the fields of an `ok` answer or raises `SlackError` with Slack's error code. The
double (`webapi`) has handled tokens, faults and rate limits before a call gets here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from bot.slackdouble.blockkit import problems, view_problems
from bot.slackdouble.state import JSON, Ephemeral, Message, Revision, Trigger, Workspace

TRIGGER_TTL_S = 3.0
MAX_VIEW_STACK = 3  # a modal plus two pushed views
MAX_TEXT = 40_000


class SlackError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def answer(self) -> JSON:
        return {"ok": False, "error": self.error, **self.extra}


def answer(workspace: Workspace, method: str, args: JSON) -> JSON:
    """Slack's JSON answer to an authorised call of a known method."""
    try:
        return {"ok": True, **METHODS[method](workspace, args)}
    except SlackError as error:
        return error.answer()


def _required(args: JSON, *names: str) -> None:
    missing = [name for name in names if not args.get(name)]
    if missing:
        messages = [f"[ERROR] missing required field: {name}" for name in missing]
        raise SlackError("invalid_arguments", response_metadata={"messages": messages})


def _flag(value: object) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _channel(ws: Workspace, args: JSON) -> str:
    channel = str(args.get("channel") or "")
    if channel not in ws.channels:
        raise SlackError("channel_not_found")
    return channel


def _message(ws: Workspace, args: JSON, ts_name: str) -> Message:
    channel = _channel(ws, args)
    message = ws.find(channel, str(args.get(ts_name) or ""))
    if message is None:
        raise SlackError("message_not_found")
    return message


def _content(args: JSON) -> tuple[str, list[JSON]]:
    text, blocks = str(args.get("text") or ""), args.get("blocks") or []
    if not text and not blocks:
        raise SlackError("no_text")
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    found = problems(blocks, 50)
    if found:
        messages = [f"[ERROR] {problem}" for problem in found]
        raise SlackError("invalid_blocks", errors=found, response_metadata={"messages": messages})
    return text, blocks


def auth_test(ws: Workspace, args: JSON) -> JSON:
    me = ws.identity
    return {
        "url": "https://double.slack.test/",
        "team": "Double",
        "user": "migrate-bot",
        "team_id": me.team_id,
        "user_id": me.bot_user_id,
        "bot_id": me.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, args: JSON) -> JSON:
    channel = _channel(ws, args)
    text, blocks = _content(args)
    thread_ts = str(args.get("thread_ts") or "") or None
    if thread_ts is not None:
        parent = ws.find(channel, thread_ts)
        if parent is None or parent.thread_ts is not None:  # stricter: never a reply's ts
            raise SlackError("invalid_thread_ts")
    message = Message(
        channel=channel,
        ts=ws.next_ts(),
        text=text,
        blocks=blocks,
        user=ws.identity.bot_user_id,
        bot_id=ws.identity.bot_id,
        thread_ts=thread_ts,
        reply_broadcast=bool(thread_ts) and _flag(args.get("reply_broadcast")),
    )
    ws.add(message)
    return {"channel": channel, "ts": message.ts, "message": message.as_slack()}


def chat_update(ws: Workspace, args: JSON) -> JSON:
    message = _message(ws, args, "ts")
    text, blocks = _content(args)
    message.history.append(Revision(message.text, message.blocks, ws.clock()))
    message.text = text or message.text
    message.blocks = blocks if "blocks" in args else message.blocks
    return {
        "channel": message.channel,
        "ts": message.ts,
        "text": message.text,
        "message": message.as_slack(),
    }


def chat_post_ephemeral(ws: Workspace, args: JSON) -> JSON:
    channel = _channel(ws, args)
    user = str(args.get("user") or "")
    if user not in ws.users:
        raise SlackError("user_not_found")
    text, blocks = _content(args)
    ts = ws.next_ts()
    ws.ephemerals.append(Ephemeral(channel, user, ts, text, blocks, args.get("thread_ts")))
    return {"message_ts": ts}


def chat_get_permalink(ws: Workspace, args: JSON) -> JSON:
    message = _message(ws, args, "message_ts")
    link = f"https://double.slack.test/archives/{message.channel}/p{message.ts.replace('.', '')}"
    if message.thread_ts:
        link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
    return {"channel": message.channel, "permalink": link}


def chat_delete(ws: Workspace, args: JSON) -> JSON:
    message = _message(ws, args, "ts")
    del ws.posted[message.channel][message.ts]
    return {"channel": message.channel, "ts": message.ts}


def _trigger(ws: Workspace, args: JSON) -> Trigger:
    trigger = ws.triggers.get(str(args.get("trigger_id") or ""))
    if trigger is None:
        raise SlackError("invalid_trigger_id")
    if trigger.used:
        raise SlackError("exchanged_trigger_id")
    if ws.clock() - trigger.issued_at > TRIGGER_TTL_S:
        raise SlackError("expired_trigger_id")
    trigger.used = True
    return trigger


def _store_view(
    ws: Workspace, view: object, *, view_id: str, root: str, previous: str | None
) -> JSON:
    stored = _shaped_view(ws, view, view_id=view_id, root=root, previous=previous)
    ws.views[view_id] = stored
    return {"view": stored}


def _shaped_view(
    ws: Workspace, view: object, *, view_id: str, root: str, previous: str | None
) -> JSON:
    """The view as Slack stores and answers it; `invalid_arguments` when it breaks a limit."""
    found = view_problems(view)
    if found or not isinstance(view, dict):
        messages = [f"[ERROR] {problem}" for problem in found]
        raise SlackError("invalid_arguments", response_metadata={"messages": messages})
    me = ws.identity
    return {
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "clear_on_close": False,
        "notify_on_close": False,
        **copy.deepcopy(view),
        "id": view_id,
        "team_id": me.team_id,
        "app_id": me.app_id,
        "bot_id": me.bot_id,
        "app_installed_team_id": me.team_id,
        "state": {"values": {}},
        "hash": ws.new_hash(),
        "root_view_id": root,
        "previous_view_id": previous,
    }


def views_open(ws: Workspace, args: JSON) -> JSON:
    _required(args, "trigger_id", "view")
    _trigger(ws, args)
    view_id = ws.next_id("V")
    return _store_view(ws, args["view"], view_id=view_id, root=view_id, previous=None)


def views_push(ws: Workspace, args: JSON) -> JSON:
    _required(args, "trigger_id", "view")
    parent = ws.views.get(_trigger(ws, args).view_id or "")
    if parent is None:  # a push needs a trigger from an interaction inside an open modal
        raise SlackError("not_found")
    root = parent["root_view_id"]
    if sum(view["root_view_id"] == root for view in ws.views.values()) >= MAX_VIEW_STACK:
        raise SlackError("push_limit_reached")
    view_id = ws.next_id("V")
    return _store_view(ws, args["view"], view_id=view_id, root=root, previous=parent["id"])


def views_update(ws: Workspace, args: JSON) -> JSON:
    _required(args, "view")
    if args.get("view_id"):
        current = ws.views.get(str(args["view_id"]))
    else:
        current = ws.view_by_external_id(str(args.get("external_id") or ""))
    if current is None:
        raise SlackError("not_found")
    if args.get("hash") and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    return _store_view(
        ws,
        args["view"],
        view_id=current["id"],
        root=current["root_view_id"],
        previous=current["previous_view_id"],
    )


def views_publish(ws: Workspace, args: JSON) -> JSON:
    """A user's Home tab: a `home` view, replaced whole; `hash` guards against races."""
    _required(args, "user_id", "view")
    user, view = str(args["user_id"]), args["view"]
    if user not in ws.users:
        raise SlackError("user_not_found")
    if not isinstance(view, dict) or view.get("type") != "home":
        message = "[ERROR] must be home [json-pointer:/view/type]"
        raise SlackError("invalid_arguments", response_metadata={"messages": [message]})
    current = ws.homes.get(user)
    if current and args.get("hash") and args["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    view_id = current["id"] if current else ws.next_id("V")
    stored = _shaped_view(ws, view, view_id=view_id, root=view_id, previous=None)
    ws.homes[user] = stored
    return {"view": stored}


def usergroups_users_list(ws: Workspace, args: JSON) -> JSON:
    members = ws.usergroups.get(str(args.get("usergroup") or ""))
    if members is None:
        raise SlackError("no_such_subteam")
    return {"users": list(members)}


def users_info(ws: Workspace, args: JSON) -> JSON:
    user = str(args.get("user") or "")
    if user not in ws.users:
        raise SlackError("user_not_found")
    name = ws.users[user]
    profile = {"display_name": name, "real_name": name}
    return {
        "user": {
            "id": user,
            "team_id": ws.identity.team_id,
            "name": name.lower().replace(" ", "."),
            "real_name": name,
            "deleted": False,
            "is_bot": False,
            "profile": profile,
        }
    }


def conversations_info(ws: Workspace, args: JSON) -> JSON:
    channel = _channel(ws, args)
    return {
        "channel": {
            "id": channel,
            "name": ws.channels[channel],
            "is_channel": True,
            "is_private": False,
            "is_archived": False,
            "is_member": True,
        }
    }


METHODS: dict[str, Callable[[Workspace, JSON], JSON]] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "chat.delete": chat_delete,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
    "usergroups.users.list": usergroups_users_list,
    "users.info": users_info,
    "conversations.info": conversations_info,
}
