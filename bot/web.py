"""HTTP: Slack's events endpoint and the probes, as one WSGI app behind waitress.

`POST /slack/events` goes to bolt (which verifies Slack's signature); `GET /healthz` is
liveness; `GET /readyz` says whether the database and the scheduler work (XAPI's state is
reported in the body but does not fail it, so a probe never cuts Slack off).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.request.internals import parse_body
from waitress.server import create_server

from bot.metrics import CONTENT_TYPE, Metrics

MAX_BODY = 1 << 20  # Slack's payloads are kilobytes; anything near a megabyte is not Slack
WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Readiness = Callable[[], tuple[bool, dict[str, Any]]]  # ready?, and the body that says why


def wsgi_app(readiness: Readiness, app: App | None, metrics: Metrics | None = None) -> WSGI:
    """Slack's events (when `app`), the probes, and /metrics (when `metrics`)."""
    slack = SlackRequestHandler(app) if app is not None else None

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path == "/slack/events" and slack is not None and method == "POST":
            if not _readable(environ):
                return _json(start_response, 400, {"error": "not a Slack request"})
            return slack(environ, start_response)
        if path == "/metrics" and metrics is not None and method == "GET":
            return _metrics(start_response, metrics)
        if path == "/healthz" and method == "GET":
            return _json(start_response, 200, {"ok": True})
        if path == "/readyz" and method == "GET":
            ready, body = readiness()
            return _json(start_response, 200 if ready else 503, body)
        return _json(start_response, 404, {"error": "not found"})

    return serve


def metrics_app(metrics: Metrics) -> WSGI:
    """/metrics alone, for `BOT_METRICS_PORT` (off the port Slack reaches)."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == "/metrics":
            return _metrics(start_response, metrics)
        return _json(start_response, 404, {"error": "not found"})

    return serve


def _readable(environ: dict[str, Any]) -> bool:
    """Whether bolt can parse the body. bolt parses it before it checks Slack's signature,
    so a body that is not UTF-8, or a `payload=` cut short, raised there: a 500 and a
    traceback for anyone on the network. Read here once, and handed on unread."""
    try:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:  # CONTENT_LENGTH that is not a number
        return False
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        parse_body(body.decode("utf-8"), environ.get("CONTENT_TYPE"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return True


def _metrics(start_response: Callable[..., Any], metrics: Metrics) -> list[bytes]:
    body = metrics.render()
    start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}[status]
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class WebServer:
    """waitress in a thread; port 0 picks a free one (`port` tells which)."""

    def __init__(self, app: WSGI, host: str, port: int, threads: int = 8) -> None:
        self._server = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="migrate-bot",
            max_request_body_size=MAX_BODY,
        )
        self.port: int = self._server.effective_port  # type: ignore[union-attr]
        self.url = f"http://{host}:{self.port}"
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._server.run()
        except OSError:
            if not self._stopping:  # closing the sockets under the loop ends it this way
                raise

    def stop(self) -> None:
        self._stopping = True
        self._server.close()
        self._thread.join(5)
