"""Log lines: one per event, human-readable or JSON, the request id on every line about
a request, and no secret ever, whoever logs it (bolt, slack_sdk, our code).

The request id travels in a context variable set where work on a request begins (a run,
a press), so lines from deep inside (the XAPI gateway, the outbox) carry it too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

current_request: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_request", default=None
)


@contextmanager
def about(request_id: int) -> Iterator[None]:
    """Lines logged inside are about this request."""
    token = current_request.set(request_id)
    try:
        yield
    finally:
        current_request.reset(token)


class RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request.get()
        record.request = f"#{record.request_id} " if record.request_id is not None else ""
        return True


class Redact(logging.Filter):
    """Replaces every configured secret in the final message (and traceback) by ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self._clean(record.getMessage())
        if record.exc_info:
            record.exc_text = self._clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        record.msg, record.args = message, ()
        return True

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None),
            "message": record.getMessage(),
        }
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


TEXT = "%(asctime)s %(levelname)s %(name)s: %(request)s%(message)s"


def configure(fmt: str, level: str, secrets: Iterable[str], stream: object = None) -> None:
    """Root logging for `migrate-bot run`: one handler, our format, redaction, request ids."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(RequestId())
    handler.addFilter(Redact(secrets))
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
