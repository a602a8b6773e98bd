"""deploy/migrate-bot.env.example against the settings the bot really has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.deploy.kit import BOT_PORT, DEPLOY, secret_setting_names, setting_names

ENV_LINE = re.compile(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> list[tuple[bool, str, str]]:
    """(active, NAME, value) for each `NAME=value` or commented-out `#NAME=value` line."""
    entries = []
    for raw in (DEPLOY / "migrate-bot.env.example").read_text(encoding="utf-8").splitlines():
        match = ENV_LINE.match(raw)
        if match:
            entries.append((not match[1], match[2], match[3]))
    return entries


def test_env_example_names_exactly_the_settings() -> None:
    """migrate-bot.env.example names every setting `Settings` defines, once, and no other."""
    names = [name for _, name, _ in env_example()]
    assert len(names) == len(set(names)), "a setting is named twice"
    assert set(names) - setting_names() == set(), "unknown settings"
    assert setting_names() - set(names) == set(), "settings missing from the example"


def test_env_example_is_plain_enough_for_systemd_and_compose() -> None:
    """Each line is blank, a `# ` comment, or an unquoted `NAME=value` with no trailing comment."""
    text = (DEPLOY / "migrate-bot.env.example").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line == "#" or line.startswith("# "):
            continue
        match = ENV_LINE.match(line)
        assert match, f"not a setting or a comment: {line!r}"
        value = match[3]
        assert not value.startswith(("'", '"')) and " #" not in value, line
        assert value == value.strip(), line


def test_env_example_values_load_as_socket_mode_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The active lines, with the secrets as files in BOT_SECRETS_DIR, are valid settings
    for Socket Mode. No secret is an active line (a variable would win over its file); each
    has a commented-out placeholder saying it is a secret."""
    for name in (*setting_names(), "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    for name in secret_setting_names() - {"BOT_DATABASE_PASSWORD"}:  # PostgreSQL only
        (tmp_path / name).write_text(f"{name}-from-a-file\n")
    active = {name.lower(): value for on, name, value in env_example() if on}
    settings = Settings(_env_file=None, **active, bot_secrets_dir=str(tmp_path))
    assert settings.bot_mode == "socket"
    assert settings.bot_http_port == BOT_PORT
    settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "XEN_URL", "XEN_USERNAME")
    settings.require("XEN_PASSWORD", "BOT_APPROVERS")
    assert not {name for on, name, _ in env_example() if on} & secret_setting_names()
    lines = (DEPLOY / "migrate-bot.env.example").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        match = ENV_LINE.match(line)
        if match and match[2] in secret_setting_names():
            assert "REPLACE-ME" in match[3], f"{match[2]} must be a placeholder"
            comment = []
            for before in reversed(lines[:index]):
                if not before.startswith("# "):
                    break
                comment.insert(0, before)
            assert any(c.startswith("# Secret") for c in comment), match[2]


def test_env_example_defaults_are_the_real_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A commented-out line shows the setting's actual default, unless its comment says e.g."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    text = (DEPLOY / "migrate-bot.env.example").read_text(encoding="utf-8")
    lines = text.splitlines()
    defaults = Settings(_env_file=None)
    for index, line in enumerate(lines):
        match = ENV_LINE.match(line)
        if not match or not match[1]:
            continue
        comment = []
        for before in reversed(lines[:index]):
            if not before.startswith("# "):
                break
            comment.append(before)
        if "e.g." in " ".join(comment):
            continue
        field = match[2].lower()
        shown = Settings(_env_file=None, **{field: match[3]})
        assert getattr(shown, field) == getattr(defaults, field), line
