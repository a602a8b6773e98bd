"""HTTP for the double: a threaded server on 127.0.0.1, port 0, that decodes and answers.

It knows requests and answers, not Slack: `/api/<method>` calls go to `api(method, args,
token)`, `/response/<key>` posts to `respond(key, body)`. Arguments come from the query,
then a form or JSON body (slack_sdk sends `chat.*` and `views.*` as JSON, the rest
form-encoded; JSON-valued fields such as `blocks` arrive as text inside a form and are
decoded). The token comes from `Authorization: Bearer`, else a `token` field. An answer
with status 0 closes the connection unanswered.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.slackdouble.state import JSON

_JSON_FIELDS = ("blocks", "view", "attachments", "metadata")


@dataclass(frozen=True)
class Answer:
    status: int  # 0: close the connection without a response
    body: JSON
    headers: dict[str, str] = field(default_factory=dict)


ApiHandler = Callable[[str, JSON, str], Answer]
ResponseHandler = Callable[[str, bytes], Answer]


class HttpServer:
    def __init__(self, api: ApiHandler, respond: ResponseHandler) -> None:
        self._server = _Server(api, respond)
        self.port: int = self._server.server_address[1]

    def start(self) -> None:
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def json_object(body: bytes) -> JSON | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        decoded = json.loads(body or b"null")
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _arguments(body: bytes, content_type: str, query: str) -> JSON | None:
    args: JSON = dict(parse_qsl(query))
    if content_type.startswith("application/json"):
        decoded = json_object(body)
        if decoded is None:
            return None
        args.update(decoded)
    else:
        args.update(parse_qsl(body.decode("utf-8")))
    for name in _JSON_FIELDS:
        if isinstance(args.get(name), str):
            with contextlib.suppress(ValueError):  # else left as text, refused by the method
                args[name] = json.loads(args[name])
    return args


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `calls`
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith("/api/"):
            answer = self._call(url.path.removeprefix("/api/"), body, url.query)
        elif url.path.startswith("/response/"):
            answer = self.server.respond(url.path.removeprefix("/response/"), body)
        else:
            answer = Answer(404, {"ok": False, "error": "not_found"})
        if answer.status == 0:
            self.close_connection = True
            return
        payload = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _call(self, method: str, body: bytes, query: str) -> Answer:
        args = _arguments(body, self.headers.get("Content-Type", ""), query)
        if args is None:
            return Answer(200, {"ok": False, "error": "invalid_json"})
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        param = str(args.pop("token", ""))
        return self.server.api(method, args, bearer or param)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a killed bot) is not the server's error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def __init__(self, api: ApiHandler, respond: ResponseHandler) -> None:
        self.api = api
        self.respond = respond
        super().__init__(("127.0.0.1", 0), _Handler)
