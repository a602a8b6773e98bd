"""`migrate-bot check` as an operator runs it: a real process, settings from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

from bot.slackdouble import SlackDouble
from tests.support.pool import Pool


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


def test_check_evacuate_prints_every_move_and_exits_0(pool: Pool) -> None:
    """An evacuation that can go: the subject, the overview, a row per move, the checklist."""
    result = _cli("check", "evacuate host2 sr=nfs1", env=_xen(pool))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "evacuate host2: 5 moves to host1, host3"
    assert lines[1].startswith("estimate ") and "with 3 at a time" in lines[1]
    assert lines[3].split() == ["VM", "HOST", "SR", "MODE", "ESTIMATE"]
    rows = {line.split()[0]: line.split()[1:4] for line in lines[4:9]}
    assert rows.keys() == {"ci-runner-1", "build01", "vm02", "web", "dns01"}
    assert all(row == ["host1", "nfs1", "live"] for row in rows.values())
    assert "checklist:" in lines and "⛔" not in result.stdout


def test_check_batch_with_a_blocker_exits_1(pool: Pool) -> None:
    """A VM that fits nowhere is left out with its reason, and the batch cannot go."""
    result = _cli("check", "evacuate host1", env=_xen(pool))
    assert result.returncode == 1, result.stderr
    assert "left out:" in result.stdout
    assert "⛔ bigdb: bigdb (96.8 GiB) fits on no host" in result.stdout


def test_check_batch_unknown_host_exits_1(pool: Pool) -> None:
    """A host typo is one line with the closest names, no traceback, nothing printed."""
    result = _cli("check", "evacuate hots1", env=_xen(pool))
    assert result.returncode == 1
    assert result.stderr.strip() == "no host 'hots1'; did you mean host1, host2 or host3?"
    assert result.stdout == ""


def test_check_run_refuses_a_batch() -> None:
    """--run moves one VM; a batch is refused before any setting is needed."""
    result = _cli("check", "--run", "evacuate host1", env={})
    assert result.returncode == 1
    assert result.stderr.strip() == "check --run takes one VM; file batches in Slack"


def test_missing_setting_is_one_line_naming_it() -> None:
    """No XEN_URL: exit 2 with one line that names the variable."""
    result = _cli("check", "vm01 to host3", env={})
    assert result.returncode == 2
    assert "XEN_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_config_passes_against_a_working_pool_and_slack(pool: Pool) -> None:
    """Every check passes: settings, XAPI login and version, Slack bot and app tokens, groups."""
    with SlackDouble(usergroups={"S1": ["ULEAD2"]}, channels={"C1": "ops"}) as slack:
        env = {
            **_xen(pool),
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "BOT_APPROVERS": "ULEAD,S1",
        }
        result = _cli("check-config", env=env)
    assert result.returncode == 0, result.stdout
    assert "✓ XAPI: pool" in result.stdout and "API 2.21" in result.stdout
    assert "✓ Slack: bot @" in result.stdout and result.stdout.strip().endswith("ready")


def test_check_config_says_what_is_wrong(pool: Pool) -> None:
    """A wrong XAPI password and a revoked Slack token are each named, exit 1."""
    with SlackDouble(channels={"C1": "ops"}) as slack:
        env = {
            **_xen(pool),
            "XEN_PASSWORD": "wrong",
            "SLACK_BOT_TOKEN": "xoxb-revoked",
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": slack.api_url,
            "BOT_MODE": "http",
            "BOT_APPROVERS": "ULEAD",
        }
        result = _cli("check-config", env=env)
    assert result.returncode == 1
    assert "✗ XAPI: the pool refused XEN_USERNAME / XEN_PASSWORD" in result.stdout
    assert "✗ Slack (SLACK_BOT_TOKEN): invalid_auth" in result.stdout
    assert "wrong" not in result.stdout.replace("wrong kind", "")
