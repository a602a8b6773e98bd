"""What the campaign sends: Slack payloads drawn from one seeded `random.Random`.

Shapes are Slack's (what it signs always has a user it knows, a modal action its view);
what people type, pick or edit is fuzzed: texts, values, ids, form states, metadata.
The same seed gives the same inputs in the same order, so a failure found at input N is
found again by `make fuzz SEED=…`. Most inputs are meant to be refused before XAPI
(someone who may not file, a channel not enabled, a usage error, a button value that is
not ours); a small share comes from people who may act, in the enabled channel, with
names the pool knows, so the planner, the engine and Slack messages are exercised too.

Who is who is part of the oracle: `HOSTILE` inputs come from users who may neither file
nor press, and `FORGER` is an approver and requester whose payloads are only ever sent
forged, replayed or truncated: anything he achieves is a forged request accepted.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.slack.actions import Action
from bot.slack.blocks.modal import MODAL_ID, SEARCHES
from bot.slackdouble import (
    block_actions,
    block_suggestion,
    form_body,
    payload_body,
    slash_command,
    view_submission,
)

CHANNEL = "C1"  # the one channel enabled (BOT_ALLOWED_CHANNELS)
OTHER_CHANNEL = "C2"  # a channel Slack knows, not enabled
REQUESTERS = ("U1", "ULEAD")
APPROVERS = ("ULEAD", "ULEAD2")  # ULEAD2 through the group S1
FORGER = "UFORGE"  # approver and requester, but only ever forged
LEGIT = ("U1", "ULEAD", "ULEAD2")
KINDS = ("command", "press", "submit", "search", "modal_action")
FORGERIES = (
    "wrong_secret",
    "flipped",
    "no_signature",
    "no_timestamp",
    "other_version",
    "garbage",
    "replayed",
    "future",
    "truncated",
)
# Characters that have broken chat bots: controls, bidi and zero-width marks, curly
# quotes, Slack's markup, entities, emoji, combining marks, full-width digits.
NASTY = [
    "\x00",
    "\n",
    "\t",
    "\r",
    "\x7f",
    "\x85",
    "\u202e",
    "\u200b",
    "\ufeff",
    "“",
    "”",
    "\u2018",
    "«",
    '"',
    "'",
    "\\",
    "<!channel>",
    "<!here>",
    "<@U1>",
    "<@ULEAD>",
    "<#C1|ops>",
    "<https://x.y|z>",
    "*",
    "_",
    "~",
    "`",
    "```",
    "&amp;",
    "&lt;",
    "<",
    ">",
    "&",
    "🚀",
    "👨‍👩‍👧",
    "e\u0301",
    "\uff10",
    "\uff11",
    "%",
    "+",
    "=",
    ":",
    ",",
    "@",
    "#",
    "$(id)",
    "{}",
    "[]",
]
KEYWORDS = [
    "to",
    "evacuate",
    "enable",
    "status",
    "cancel",
    "list",
    "help",
    "dry-run",
    "mode=live",
    "mode=offline",
    "mode=",
    "mode=fast",
    "shutdown=hard",
    "shutdown=clean",
    "shutdown=x",
    "at=02:00",
    "at=2030-01-01T02:00",
    "at=25:99",
    "at=yesterday",
    "at=",
    "at=1999-01-01",
    "tag:xo:no-bak",
    "tag:",
    "tag:nosuch",
    "pool=default",
    "pool=nosuch",
    "disk:0=nfs2",
    "disk:xvda=nfs1",
    "disk:=",
    "sr=",
    "sr=nfs1",
    "sr=nfs2",
    "sr=iso-library",
    '"web server"',
    '"',
    "1",
    "42",
    "-1",
    "99999999999999999999",
    "#1",
]


@dataclass(frozen=True)
class Input:
    """One request to send. `forgery` None: signed as Slack signs; else how it is spoiled."""

    index: int
    kind: str
    body: bytes
    user: str
    routed: bool = True  # the app has a listener for it (else bolt's 404 is right)
    forgery: str | None = None
    cut: int | None = None  # truncated: the bytes sent of the body that was signed
    over_socket: bool = False  # sent over HTTP to waitress, not dispatched in-process


@dataclass(frozen=True)
class Names:
    """What the pool holds (for plausible inputs), and the modal views Slack has open."""

    vms: tuple[str, ...]
    hosts: tuple[str, ...]
    srs: tuple[str, ...]
    vm_uuids: tuple[str, ...]
    views: tuple[str, ...]


class Inputs:
    """The campaign's inputs, one after another; `response_url(key)` issues answer URLs."""

    def __init__(
        self,
        seed: int,
        names: Names,
        response_url: Callable[[str], str],
        trigger: Callable[[], str],
        meet: Callable[[str], None],
        legit_share: float = 0.06,
        socket_every: int = 50,
    ) -> None:
        self.rng = random.Random(seed)
        self.names = names
        self.response_url = response_url
        self.trigger = trigger
        self.meet = meet
        self.legit_share = legit_share
        self.socket_every = socket_every
        self.count = 0
        self.hostile: set[str] = set()  # every user id sent that may neither file nor press

    # -- the draws ----------------------------------------------------------------------
    def next(self) -> Input:
        """A signed payload of any kind; every `socket_every`-th goes over HTTP."""
        kind = self.rng.choices(KINDS, weights=(40, 30, 12, 12, 6))[0]
        body, user, routed = getattr(self, kind)()
        self.count += 1
        over_socket = self.socket_every > 0 and self.count % self.socket_every == 0
        return Input(self.count, kind, body, user, routed, over_socket=over_socket)

    def rejected(self) -> Input:
        """A dangerous payload from the forger, then spoiled: Slack's signature must stop it."""
        self.count += 1
        kind = self.rng.choice(("command", "press", "submit"))
        key = f"forged-{self.count}"
        if kind == "command":
            text = self.rng.choice(["vm01 to host3", "list", "evacuate host1", "enable host1"])
            fields = slash_command(
                text, user_id=FORGER, channel_id=CHANNEL, response_url=self.response_url(key)
            )
            body = form_body(fields)
        elif kind == "press":
            action = self.rng.choice([Action.APPROVE, Action.CANCEL, Action.REJECT])
            body = payload_body(
                block_actions(
                    user_id=FORGER,
                    channel_id=CHANNEL,
                    message_ts="1.000001",
                    action_id=action,
                    response_url=self.response_url(key),
                    value=f"{self.rng.randint(1, 30)}:{self.rng.randint(0, 4)}",
                )
            )
        else:
            values = {
                "vm": _option("external_select", self.rng.choice(self.names.vms)),
                "host": _option("external_select", self.rng.choice(self.names.hosts)),
            }
            body = payload_body(view_submission(user_id=FORGER, view=_view(CHANNEL), values=values))
        forgery = self.rng.choice(FORGERIES)
        if forgery == "garbage":
            body = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 400)))
        cut = self.rng.randrange(len(body)) if forgery == "truncated" else None
        return Input(self.count, "rejected", body, FORGER, True, forgery, cut, self.count % 10 == 0)

    # -- one kind each ------------------------------------------------------------------
    def command(self) -> tuple[bytes, str, bool]:
        user, channel = self._who()
        text = self.text()
        trigger = self.trigger() if not text.strip() and self.rng.random() < 0.5 else None
        fields = slash_command(
            text,
            user_id=user,
            channel_id=channel,
            response_url=self.response_url(f"fz-{self.count + 1}"),
            **({"trigger_id": trigger} if trigger else {}),
        )
        if self.rng.random() < 0.03:  # a field bolt and the bot do not need
            fields.pop(self.rng.choice(["text", "channel_name", "team_id", "token"]))
        return form_body(fields), user, True

    def press(self) -> tuple[bytes, str, bool]:
        user, channel = self._who(press=True)
        action = (
            self.rng.choice(sorted(Action))
            if self.rng.random() < 0.92
            else self.rng.choice(["", "approve ", "APPROVE", "vm01", self._junk_text(20)])
        )
        payload = block_actions(
            user_id=user,
            channel_id=channel,
            message_ts=self.rng.choice(["1.000001", "", "x", f"{self.rng.random() * 2e9:.6f}"]),
            action_id=action,
            response_url=self.response_url(f"fz-{self.count + 1}"),
            value=self.button_value(),
        )
        if self.rng.random() < 0.05:  # a value that is not a string at all
            payload["actions"][0]["value"] = self._junk()
        return payload_body(payload), user, action in set(Action)

    def submit(self) -> tuple[bytes, str, bool]:
        user, channel = self._who()
        metadata = self.rng.choice(
            [
                json.dumps({"channel": channel}),
                json.dumps({"channel": channel}),
                "",
                "{",
                "[]",
                "null",
                '{"channel": 7}',
                self._junk_text(60),
            ]
        )
        view = _view(channel)
        view["private_metadata"] = metadata
        if self.rng.random() < 0.05:
            view["callback_id"] = self._junk_text(12)
        values: Any = self.form() if self.rng.random() < 0.85 else self._junk()
        body = payload_body(view_submission(user_id=user, view=view, values=values))
        return body, user, view["callback_id"] == MODAL_ID

    def search(self) -> tuple[bytes, str, bool]:
        user = self._user()
        kind = self.rng.choice(sorted(SEARCHES)) if self.rng.random() < 0.95 else "nosuch"
        typed = self.rng.choice(
            [self.text(), "", " ", self.rng.choice(self.names.vms)[:3], self._junk_text(50)]
        )
        element = {"type": "external_select", "action_id": kind}
        view = {
            "id": "V1",
            "type": "modal",
            "blocks": [{"type": "input", "block_id": kind, "element": element}],
        }
        payload = block_suggestion(user_id=user, action_id=kind, value=typed, view=view)
        return payload_body(payload), user, kind in SEARCHES

    def modal_action(self) -> tuple[bytes, str, bool]:
        """A choice inside the open modal (`vm`, `what`), on a view Slack has open or not."""
        user = self._user()
        action_id = self.rng.choice(["vm", "what"])
        chosen = (
            self.rng.choice((*self.names.vm_uuids, "nosuch", ""))
            if action_id == "vm"
            else self.rng.choice(["one", "several", "evacuate", "", "x" * 80])
        )
        views = self.names.views or ("V0",)
        view = _view(CHANNEL)
        view["id"] = self.rng.choice(views) if self.rng.random() < 0.9 else "VNOSUCH"
        if self.rng.random() < 0.2:
            view["hash"] = f"stale-{self.rng.randint(0, 9)}"
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": action_id,
            "type": "external_select" if action_id == "vm" else "radio_buttons",
            "action_ts": "1.0",
        }
        if self.rng.random() < 0.95:
            action["selected_option"] = {"value": chosen}
        payload = {
            "type": "block_actions",
            "team": {"id": "T1", "domain": "double"},
            "user": {"id": user, "username": "u", "name": "u", "team_id": "T1"},
            "api_app_id": "A0DOUBLE",
            "token": "verification-token-double",
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "view": view,
            "actions": [action],
        }
        return payload_body(payload), user, True

    # -- the pieces ---------------------------------------------------------------------
    def text(self) -> str:
        """Command text: tokens of the grammar and the pool's names, then mangled; or noise."""
        roll = self.rng.random()
        if roll < 0.1:
            return self._junk_text(300)
        if roll < 0.13:
            return self.rng.choice(
                ["web ", "vm01 to host3 ", "a", "<!channel>"]
            ) * self.rng.randint(300, 1500)
        n = self.names
        pieces = [*n.vms, *n.hosts, *n.srs, *KEYWORDS, *KEYWORDS]
        words = [self.rng.choice(pieces) for _ in range(self.rng.randint(0, 8))]
        if words and self.rng.random() < 0.5:  # the common shape: <vm> to <host> …
            words = [self.rng.choice(n.vms), "to", self.rng.choice(n.hosts), *words[3:]]
        if self.rng.random() < 0.15:
            words = [",".join(self.rng.sample(n.vms, self.rng.randint(2, 5))), *words]
        text = self.rng.choice([" ", "  ", "\t", " \n"]).join(words)
        for _ in range(self.rng.choices([0, 1, 2, 4], weights=(50, 25, 15, 10))[0]):
            text = self._mutate(text)
        return text

    def form(self) -> dict[str, Any]:
        """A modal's state values: the fields the form has, each plausible or odd."""
        n, rng = self.names, self.rng
        blocks: dict[str, Any] = {}
        what = rng.choice(["one", "several", "evacuate", None, "x"])
        if what is not None:
            blocks["what"] = _option("radio_buttons", what)
        pick = rng.choice
        maybe = {
            "vm": lambda: _option("external_select", pick(n.vm_uuids + n.vms + ("nosuch", ""))),
            "host": lambda: _option("external_select", pick((*n.hosts, "nosuch"))),
            "sr": lambda: _option("external_select", pick(n.srs)),
            "disk_0": lambda: _option("static_select", pick(n.srs)),
            "disk_" + self._junk_text(5): lambda: _option("static_select", pick(n.srs)),
            "mode": lambda: _option("radio_buttons", pick(["live", "offline", "x"])),
            "shutdown": lambda: _option("radio_buttons", pick(["clean", "hard", ""])),
            "at": lambda: _typed(pick(["02:00", "2030-01-01T02:00", "“02:00”", self.text()])),
            "vms": lambda: _options(rng.sample(n.vm_uuids + n.vms, rng.randint(0, 6))),
            "tag": lambda: _typed(pick(["xo:no-bak", "tag:web", "nosuch", "“x”", self.text()])),
            "to": lambda: _options(rng.sample(n.hosts, rng.randint(0, len(n.hosts)))),
            "evacuate": lambda: _option("external_select", pick((*n.hosts, "nosuch"))),
        }
        for block, make in maybe.items():
            if rng.random() < 0.5:
                blocks[block] = make() if rng.random() < 0.9 else {"a": self._junk()}
        return blocks

    def button_value(self) -> str:
        """Mostly `id:revision` near the requests that exist; else edited by hand."""
        if self.rng.random() < 0.6:
            return f"{self.rng.randint(1, 60)}:{self.rng.randint(0, 8)}"
        return self.rng.choice(
            [
                "",
                "1:",
                ":1",
                "1:2:3",
                "-1:0",
                " 1:0",
                "1:0\n",
                "\uff11:\uff10",
                "0x1:0",
                "1.0:0",
                "9" * 18 + ":" + "9" * 18,
                "9" * 19 + ":0",
                "1:" + "9" * 30,
                "null",
                json.dumps({"id": 1}),
                self._junk_text(40),
                "7" * 2500,
            ]
        )

    def _who(self, press: bool = False) -> tuple[str, str]:
        """Who sends it from where: rarely someone who may act in the enabled channel."""
        if self.rng.random() < (self.legit_share * (4 if press else 1)):
            return self.rng.choice(LEGIT if press else REQUESTERS), CHANNEL
        user = self._user()
        channel = self.rng.choice(
            [CHANNEL, CHANNEL, OTHER_CHANNEL, "D0123", "", "C404", self._junk_text(12)]
        )
        if user in LEGIT and channel == CHANNEL:
            channel = OTHER_CHANNEL
        return user, channel

    def _user(self) -> str:
        user = self.rng.choice(["U3", "W0", "U3", "u1", "U1 ", "", self._junk_text(12)])
        if self.rng.random() < 0.25:
            user = self.rng.choice(LEGIT)
        if user not in LEGIT and user not in self.hostile:
            self.hostile.add(user)
            self.meet(user)
        return user

    def _mutate(self, text: str) -> str:
        rng = self.rng
        at = rng.randint(0, len(text))
        how = rng.randrange(5)
        if how == 0:
            return text[:at] + rng.choice(NASTY) + text[at:]
        if how == 1:
            return text[:at] + text[at + rng.randint(1, 4) :]
        if how == 2:
            return text[:at] + text[at:].upper()
        if how == 3:
            return text[:at] + text[at : at + 8] * rng.randint(2, 30) + text[at:]
        return text[:at] + self._junk_text(8) + text[at:]

    def _junk_text(self, most: int) -> str:
        """Any text: printable ASCII, other planes, controls (no lone surrogates: Slack
        sends UTF-8)."""
        alphabet = self.rng.choice(
            [string.printable, "".join(NASTY), "абвгд漢字한국어عربيעברית", "\U0001f600\U0001f680"]
        )
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(0, most)))

    def _junk(self, depth: int = 0) -> Any:
        """A JSON value of any shape."""
        roll = self.rng.randrange(7 if depth < 2 else 4)
        if roll == 0:
            return None
        if roll == 1:
            return self.rng.choice([True, False, 0, -1, 2**63, 1.5])
        if roll in (2, 3):
            return self._junk_text(20)
        if roll in (4, 5):
            return {
                self._junk_text(6): self._junk(depth + 1) for _ in range(self.rng.randint(0, 3))
            }
        return [self._junk(depth + 1) for _ in range(self.rng.randint(0, 3))]


def _option(kind: str, value: str) -> dict[str, Any]:
    return {"a": {"type": kind, "selected_option": {"value": value}}}


def _options(values: list[str]) -> dict[str, Any]:
    chosen = [{"value": v} for v in values]
    return {"a": {"type": "multi_external_select", "selected_options": chosen}}


def _typed(value: str) -> dict[str, Any]:
    return {"a": {"type": "plain_text_input", "value": value}}


def _view(channel: str) -> dict[str, Any]:
    return {
        "id": "V1",
        "type": "modal",
        "callback_id": MODAL_ID,
        "private_metadata": json.dumps({"channel": channel}),
        "blocks": [],
    }
