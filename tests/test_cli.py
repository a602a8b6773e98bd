"""`migrate-bot check` as an operator runs it: a real process, settings from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.pool import Pool


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XEN_", "BOT_", "SLACK_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _xen(pool: Pool) -> dict[str, str]:
    return {"XEN_URL": pool.server.url, "XEN_USERNAME": "root", "XEN_PASSWORD": "secret"}


def test_check_prints_plan_and_checklist(pool: Pool) -> None:
    """A clean plan exits 0 and shows the route, the disks and the checklist."""
    result = _cli("check", "vm01 to host3 sr=nfs1 mode=offline", env=_xen(pool))
    assert result.returncode == 0, result.stderr
    assert "vm01: host1 → host3, offline" in result.stdout and "nfs1" in result.stdout
    assert "checklist:" in result.stdout


def test_check_unknown_name_suggests_and_exits_1(pool: Pool) -> None:
    """A typo is one line with the closest names, no traceback."""
    result = _cli("check", "vm0l to host3", env=_xen(pool))
    assert result.returncode == 1
    assert "did you mean vm01" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_usage_error_exits_1() -> None:
    """Bad grammar is answered with the usage, before any setting is needed."""
    result = _cli("check", "vm01 host3", env={})
    assert result.returncode == 1
    assert "/migrate <vm> to <host>" in result.stderr


def test_missing_setting_is_one_line_naming_it() -> None:
    """No XEN_URL: exit 2 with one line that names the variable."""
    result = _cli("check", "vm01 to host3", env={})
    assert result.returncode == 2
    assert "XEN_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
