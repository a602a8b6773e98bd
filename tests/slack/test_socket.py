"""The same journey over Socket Mode: envelopes on a WebSocket, no public HTTP endpoint."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from bot.slack.outbox import Outbox
from bot.slackdouble import SlackDouble, block_actions, slash_command
from bot.slackdouble.driver import until
from bot.states import State
from bot.wiring import start
from tests.support.pool import Pool, Ticker
from tests.support.slack_rig import CHANNEL, GROUPS, USERS, settings_for


def test_command_and_approval_over_socket_mode(pool: Pool, tmp_path: Path) -> None:
    """A slash command envelope is acked with the first answer; an approve press runs it."""
    with SlackDouble(users=USERS, usergroups=GROUPS, channels={CHANNEL: "ops"}) as slack:
        settings = settings_for(
            pool.server.url,
            slack,
            tmp_path / "bot.db",
            bot_mode="socket",
            slack_app_token=slack.app_token,
        )
        with Ticker(pool.clock, step=0.5):
            service = start(settings, "127.0.0.1", pool.clock, Outbox(0.2, retry_seconds=0.1))
            try:
                slack.socket.wait_connected(10)
                fields = slash_command(
                    "vm02 to host3",
                    user_id="U1",
                    channel_id=CHANNEL,
                    response_url=slack.response_url("cmd"),
                )
                ack = slack.socket.send("slash_commands", fields)
                assert "Checking vm02" in ack["text"]
                store = service.core.store
                req = until(lambda: (r := store.get(1)) and r.message_ts and r)
                message = slack.message(CHANNEL, req.message_ts)
                press = block_actions(
                    user_id="ULEAD",
                    channel_id=CHANNEL,
                    message_ts=message.ts,
                    action_id="approve",
                    response_url=slack.response_url("press"),
                    message={"type": "message", "ts": message.ts, "blocks": message.blocks},
                )
                slack.socket.send("interactive", press)
                done = until(
                    lambda: (r := store.get(1)).state in (State.SUCCEEDED, State.FAILED) and r
                )
                assert done.state == State.SUCCEEDED, done.outcome
                with urllib.request.urlopen(f"{service.web.url}/healthz", timeout=5) as answer:
                    assert answer.status == 200  # the probes are served in Socket Mode too
                    assert json.load(answer) == {"ok": True}
            finally:
                service.stop()
