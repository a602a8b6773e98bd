"""Settings: every variable of the design's table, typed, with one-line errors."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError, load_settings

ALL = [
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "XEN_URL",
    "XEN_USERNAME",
    "XEN_PASSWORD",
    "XEN_VERIFY_TLS",
    "XEN_TIMEOUT_SECONDS",
    "BOT_MODE",
    "BOT_HTTP_PORT",
    "BOT_DATABASE_URL",
    "BOT_APPROVERS",
    "BOT_REQUIRE_APPROVAL",
    "BOT_ALLOW_SELF_APPROVAL",
    "BOT_ALLOWED_CHANNELS",
    "BOT_STUCK_GRACE_SECONDS",
    "BOT_APPROVAL_TTL_SECONDS",
    "BOT_BACKUP_EXCLUDE_TAG",
    "BOT_TIMEZONE",
    "BOT_MAX_CONCURRENT_MIGRATIONS",
    "BOT_REQUESTERS",
    "BOT_LIVE_CPU_THRESHOLD",
    "BOT_DEFAULT_THROUGHPUT_MBPS",
    "BOT_STALL_SECONDS",
    "BOT_MISSED_WINDOW_GRACE_SECONDS",
    "XEN_CA_BUNDLE",
    "BOT_LOG_FORMAT",
    "BOT_LOG_LEVEL",
    "BOT_METRICS_PORT",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ALL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_every_documented_variable_is_a_setting() -> None:
    """Each name in the design's settings table maps to a field."""
    fields = set(Settings.model_fields)
    assert {name.lower() for name in ALL} <= fields


def test_defaults_from_the_design() -> None:
    """Defaults are the design's: socket mode, port 3000, approval on, grace 120 s, …"""
    s = Settings()
    assert (s.bot_mode, s.bot_http_port, s.bot_require_approval) == ("socket", 3000, True)
    assert (s.bot_stuck_grace_seconds, s.bot_approval_ttl_seconds) == (120, 1800)
    assert (s.bot_backup_exclude_tag, s.bot_timezone) == ("xo:no-bak", "UTC")
    assert (s.bot_max_concurrent_migrations, s.bot_live_cpu_threshold) == (3, 0.8)
    assert (s.bot_stall_seconds, s.bot_missed_window_grace_seconds) == (600, 900)
    assert s.xen_verify_tls is True and s.xen_timeout_seconds == 30
    assert s.slack_api_url == "https://slack.com/api/"


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOT_APPROVERS takes comma-separated ids, spaces allowed."""
    monkeypatch.setenv("BOT_APPROVERS", "U123, S456 ,U789")
    assert Settings().bot_approvers == ["U123", "S456", "U789"]


def test_secrets_are_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets never show in repr or str."""
    monkeypatch.setenv("XEN_PASSWORD", "hunter2")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    text = repr(Settings()) + str(Settings())
    assert "hunter2" not in text and "xoxb-secret" not in text
    assert Settings().xen_password.get_secret_value() == "hunter2"  # type: ignore[union-attr]


def test_api_url_with_or_without_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    """SLACK_API_URL works with or without its trailing slash."""
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    assert Settings().slack_api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOT_HTTP_PORT", "eighty"),
        ("BOT_MODE", "carrier-pigeon"),
        ("BOT_TIMEZONE", "Mars/Base"),
        ("BOT_LIVE_CPU_THRESHOLD", "1.5"),
        ("XEN_VERIFY_TLS", "maybe"),
    ],
)
def test_malformed_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """A malformed value is one line starting with the variable's name."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(name + ":") and "\n" not in str(error.value)


def test_require_names_the_missing_variable() -> None:
    """require() stops at the first unset variable, by its environment name."""
    with pytest.raises(SettingsError, match=r"^XEN_URL is not set$"):
        Settings().require("XEN_URL", "XEN_PASSWORD")


def test_env_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A .env file in the working folder is read."""
    (tmp_path / ".env").write_text("BOT_HTTP_PORT=3100\n")
    assert Settings().bot_http_port == 3100
