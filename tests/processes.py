"""Helpers for tests that run the bot as a real process: a free port, is it serving yet."""

from __future__ import annotations

import socket
import urllib.request


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
