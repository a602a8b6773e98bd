"""Slack's Socket Mode end: a WebSocket server the app's client connects to, sending envelopes.

Speaks the protocol as `slack_sdk.socket_mode.builtin.SocketModeClient` expects it: the
client gets its URL from `apps.connections.open` (`ws://127.0.0.1:PORT/link/?ticket=…`;
a plain socket because the port is not 443), is refused without an issued ticket, and
receives `{"type": "hello", …}` on connect. `send()` pushes one envelope to the newest
connection (Slack picks one at random) and waits for the client's ack
`{"envelope_id": …, "payload": …}`; `disconnect()` sends Slack's refresh notice, after
which the client fetches a new URL and reconnects.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

# Interactive payloads whose ack may carry an answer (response_action, options).
_ANSWERED = ("view_submission", "block_suggestion")
# Frequent pings wake the builtin client's blocking recv (3 s timeout), which its close()
# and reconnect wait for (real Slack pings far less often).
PING_INTERVAL_S = 0.1


@dataclass
class Envelope:
    """One envelope sent and, once the client acked it, the ack's payload."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    ack: dict[str, Any] | None = None
    acked: threading.Event = field(default_factory=threading.Event, repr=False)


class SocketModeServer:
    def __init__(self, app_id: str) -> None:
        self._app_id = app_id
        self._tickets: set[str] = set()
        self._connections: list[ServerConnection] = []
        self._changed = threading.Condition()
        self._envelopes: dict[str, Envelope] = {}
        self._server: Server | None = None
        self.port = 0

    @property
    def envelopes(self) -> list[Envelope]:
        """Every envelope sent so far, oldest first."""
        with self._changed:
            return list(self._envelopes.values())

    def start(self) -> None:
        self._server = serve(
            self._serve,
            "127.0.0.1",
            0,
            process_request=self._admit,
            compression=None,
            ping_interval=PING_INTERVAL_S,
            close_timeout=1,
        )
        self.port = self._server.socket.getsockname()[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def issue_url(self) -> str:
        """What `apps.connections.open` answers: a URL with a fresh ticket."""
        ticket = uuid.uuid4().hex
        with self._changed:
            self._tickets.add(ticket)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self._app_id}"

    def wait_connected(self, timeout: float = 5) -> None:
        """Block until a client has connected and been greeted; TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._connections), timeout):
                raise TimeoutError(f"no Socket Mode client connected within {timeout} s")

    def send(self, type_: str, payload: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
        """Send an envelope to the newest connection and return the payload of its ack.

        `type_` is "slash_commands", "interactive" or "events_api". Raises TimeoutError when
        no ack comes in time (Slack would show the user a timeout).
        """
        envelope = Envelope(uuid.uuid4().hex, type_, payload)
        answerable = type_ == "slash_commands" or payload.get("type") in _ANSWERED
        frame = {
            "envelope_id": envelope.envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": answerable,
        }
        with self._changed:
            if not self._connections:
                raise ConnectionError("no Socket Mode client is connected")
            connection = self._connections[-1]
            self._envelopes[envelope.envelope_id] = envelope
        connection.send(json.dumps(frame))
        if not envelope.acked.wait(timeout):
            raise TimeoutError(f"no ack for {type_} envelope within {timeout} s")
        return envelope.ack or {}

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every connected client to reconnect, as Slack does before it recycles a host."""
        with self._changed:
            connections = list(self._connections)
        notice = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-double"}}
        for connection in connections:
            connection.send(json.dumps(notice))

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        ticket = parse_qs(urlsplit(request.path).query).get("ticket", [""])[0]
        with self._changed:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return None
        return connection.respond(401, "invalid or used ticket\n")

    def _serve(self, connection: ServerConnection) -> None:
        with self._changed:
            count = len(self._connections) + 1
        hello = {
            "type": "hello",
            "num_connections": count,
            "debug_info": {"host": "applink-double", "approximate_connection_time": 18060},
            "connection_info": {"app_id": self._app_id},
        }
        try:
            with self._changed:  # hello goes first: no envelope can take this connection before
                connection.send(json.dumps(hello))
                self._connections.append(connection)
                self._changed.notify_all()
            for raw in connection:
                self._receive(raw)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._changed.notify_all()

    def _receive(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        with self._changed:
            envelope = self._envelopes.get(message.get("envelope_id", ""))
        if envelope is not None and not envelope.acked.is_set():
            envelope.ack = message.get("payload") or {}
            envelope.acked.set()
