"""deploy/migrate-bot.service: its directives, and `systemd-analyze` where the machine has it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.deploy.kit import DEPLOY, secret_setting_names, setting_names

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictRealtime": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
    "ReadWritePaths": "/var/lib/migrate-bot",
    "UMask": "0077",
}


def unit_directives() -> dict[str, list[str]]:
    """The unit's `Key=value` lines; a key may repeat."""
    directives: dict[str, list[str]] = {}
    for raw in (DEPLOY / "migrate-bot.service").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def test_systemd_unit_runs_the_venv_script_with_hardening() -> None:
    """The unit runs the venv's `migrate-bot run` as migrate-bot, stops on SIGTERM, is sandboxed."""
    unit = unit_directives()
    expected = {
        "Type": "simple",
        "ExecStart": "/opt/migrate-bot/.venv/bin/migrate-bot run",
        "EnvironmentFile": "/etc/migrate-bot/migrate-bot.env",
        "User": "migrate-bot",
        "WorkingDirectory": "/var/lib/migrate-bot",
        "StateDirectory": "migrate-bot",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "30",
        **HARDENING,
    }
    for key, value in expected.items():
        assert unit.get(key, [None])[0] == value, key
    assert "@system-service" in unit["SystemCallFilter"]


def credentials() -> dict[str, str]:
    """The unit's LoadCredential= lines: credential id -> the file systemd reads."""
    return dict(line.split(":", 1) for line in unit_directives()["LoadCredential"])


def test_systemd_unit_hands_the_secrets_over_as_credentials() -> None:
    """Each secret the single-pool bot on SQLite needs is a credential named after its
    setting, read from /etc/migrate-bot/credentials/; the environment file is for the
    rest (the example file keeps secrets out of it)."""
    loaded = credentials()
    assert set(loaded) == secret_setting_names() - {"BOT_DATABASE_PASSWORD"}
    for name, path in loaded.items():
        assert path == f"/etc/migrate-bot/credentials/{name}", name
    unit = (DEPLOY / "migrate-bot.service").read_text(encoding="utf-8")
    database = "BOT_DATABASE_PASSWORD:/etc/migrate-bot/credentials/BOT_DATABASE_PASSWORD"
    assert f"# LoadCredential={database}" in unit  # for PostgreSQL, one uncomment away
    assert not {key for key in unit_directives() if key in setting_names()}


def test_the_bot_reads_systemds_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What systemd does at start: a private directory with a file per credential id, its
    path in $CREDENTIALS_DIRECTORY. The bot finds every secret there (with no
    BOT_SECRETS_DIR on the host)."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name in credentials():
        (tmp_path / name).write_text(f"{name}-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = Settings(_env_file=None, bot_secrets_dir=str(tmp_path / "no-run-secrets"))
    for name in credentials():
        assert getattr(settings, name.lower()).get_secret_value() == f"{name}-credential"


def _unit_for_verify(tmp_path: Path) -> Path:
    """The unit with ExecStart on an executable that exists here (verify checks it)."""
    script = Path(sys.executable).with_name("migrate-bot")
    program = script if script.exists() else Path("/bin/true")
    text = (DEPLOY / "migrate-bot.service").read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^ExecStart=\S+", f"ExecStart={program}", text)
    assert count == 1
    unit = tmp_path / "migrate-bot.service"
    unit.write_text(text, encoding="utf-8")
    return unit


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit without errors or warnings about it."""
    unit = _unit_for_verify(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if unit.name in line
    ]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_unit_exposure_is_low(tmp_path: Path) -> None:
    """`systemd-analyze security --offline` rates the unit's exposure at most 2.0 (OK)."""
    unit = _unit_for_verify(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match[1]) <= 2.0
