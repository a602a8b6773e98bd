"""Log lines: one per event, human-readable or JSON, the request id on every line about
a request, and no secret ever, whoever logs it (bolt, slack_sdk, our code). A database
URL is shown with its password as *** (`shown_url`), and the password is redacted too.

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
from urllib.parse import urlsplit

import sqlalchemy as sa

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


def shown_url(url: str) -> str:
    """A database URL fit to print: SQLAlchemy's rendering with the password as ***.
    Raises sqlalchemy.exc.ArgumentError for text that is not such a URL."""
    return sa.make_url(url).render_as_string(hide_password=True)


def url_secrets(url: str) -> list[str]:
    """A database URL's password as it may turn up in a line: decoded (a driver's error)
    and as written in the URL (percent-encoded), for `Redact`."""
    try:
        password = sa.make_url(url).password
    except sa.exc.ArgumentError:
        return []
    return [p for p in {password, urlsplit(url).password} if p]


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
