"""Helpers for tests that run the bot as a real process: its environment, a free port, is
it serving yet, what its database says."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from typing import Any

import sqlalchemy as sa

from bot.slackdouble import SlackDouble


def free_port() -> int:
    """A port the OS says is free now (for a child process that cannot be told port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(port: int) -> bool:
    """Does the bot on `port` answer its liveness probe?"""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def bot_env(
    xen_url: str, slack: SlackDouble, secret: str, db_url: str, **settings: str
) -> dict[str, str]:
    """The environment of `python -m bot run` in HTTP mode against a simulated pool and the
    Slack double, on a free port; none of the caller's own XEN_/BOT_/SLACK_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XEN_", "BOT_", "SLACK_"))}
    return clean | {
        "XEN_URL": xen_url,
        "XEN_USERNAME": "root",
        "XEN_PASSWORD": "secret",
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": slack.api_url,
        "BOT_MODE": "http",
        "BOT_HTTP_PORT": str(free_port()),
        "BOT_DATABASE_URL": db_url,
        "BOT_STUCK_GRACE_SECONDS": "3600",
        **settings,
    }


def db_rows(db_url: str, query: str) -> list[Any]:
    """The rows of `query` in the bot's database (read from outside the process)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql(query))
    finally:
        engine.dispose()


def leads(port: int, pool: str = "default") -> bool:
    """Does the replica on `port` say it runs the pool (`/readyz`)?"""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return bool(json.loads(answer.read())["pools"][pool]["leader"])
    except OSError:
        return False
