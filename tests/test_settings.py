"""Settings: every variable of the design's table, typed, with one-line errors."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from bot import logs
from bot.settings import Settings, SettingsError, load_settings, pool_configs, require_approvers

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
    "BOT_POOLS_FILE",
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


def _pools_file(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "pools.yaml"
    path.write_text(text)
    return Settings(_env_file=None, bot_pools_file=str(path), bot_max_concurrent_migrations=4)


def test_the_xen_settings_are_one_pool_named_default() -> None:
    settings = Settings(_env_file=None, xen_url="https://x", xen_username="root", xen_password="pw")
    (pool,) = pool_configs(settings)
    assert (pool.name, pool.url, pool.password, pool.max_concurrent) == (
        "default",
        "https://x",
        "pw",
        3,
    )
    assert pool.approvers is None and pool.verify_tls is True


def test_a_pools_file_lists_pools_with_their_own_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "b.pw").write_text("from-a-file\n")
    monkeypatch.setenv("POOL_A_PW", "from-the-env")
    settings = _pools_file(
        tmp_path,
        f"""
pools:
  - name: site-a
    url: https://xen-a
    username: root
    password_env: POOL_A_PW
  - name: site-b
    url: https://xen-b
    username: admin
    password_file: {tmp_path / "b.pw"}
    verify_tls: false
    max_concurrent_migrations: 1
    approvers: S0LEADS, U9
    channels: [C7]
  - name: lab
    url: http://127.0.0.1:8080
    username: root
    password: plain
""",
    )
    a, b, lab = pool_configs(settings)
    assert (a.name, a.password, a.max_concurrent, a.approvers) == (
        "site-a",
        "from-the-env",
        4,
        None,
    )
    assert (b.password, b.verify_tls, b.max_concurrent) == ("from-a-file", False, 1)
    assert b.approvers == ("S0LEADS", "U9") and b.channels == ("C7",) and b.requesters is None
    assert lab.password == "plain"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("pools: []", "BOT_POOLS_FILE: pools"),
        ("pools: [{name: a, url: u, username: r}]", "pool a: give exactly one of"),
        (
            "pools: [{name: a, url: u, username: r, password: p, password_env: X}]",
            "pool a: give exactly one of",
        ),
        ("pools: [{name: a, url: u, username: r, password_env: NOT_SET_ANYWHERE}]", "is not set"),
        ("pools: [{name: a, url: u, username: r, password_file: /nonexistent}]", "cannot read"),
        ("pools: [{name: Site A, url: u, username: r, password: p}]", "pool name 'Site A'"),
        ("pools: [{name: a, url: u, username: r, password: p, colour: red}]", "colour"),
        (
            "pools: [{name: a, url: u, username: r, password: p},"
            " {name: a, url: v, username: r, password: p}]",
            "two pools have the name a",
        ),
        (
            "pools: [{name: a, url: u, username: r, password: p},"
            " {name: b, url: u, username: r, password: p}]",
            "two pools have the url u",
        ),
        ("pools: [{name: a, url: u", "not valid YAML"),
    ],
)
def test_a_mistake_in_the_pools_file_is_one_line(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(SettingsError) as raised:
        pool_configs(_pools_file(tmp_path, text))
    message = str(raised.value)
    assert said in message and "\n" not in message, message


def test_a_pools_file_that_is_not_there_says_where_it_looked(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, bot_pools_file=str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError, match="BOT_POOLS_FILE: no file at"):
        pool_configs(settings)


def test_every_pool_needs_an_approver_when_approval_is_on(tmp_path: Path) -> None:
    text = """
pools:
  - {name: a, url: u, username: r, password: p, approvers: [U1]}
  - {name: b, url: v, username: r, password: p}
"""
    settings = _pools_file(tmp_path, text)
    with pytest.raises(SettingsError, match="pool b names none"):
        require_approvers(settings, pool_configs(settings))
    require_approvers(settings.model_copy(update={"bot_approvers": ["U2"]}), pool_configs(settings))


# Secrets as orchestrators deliver them: files named after the variable.

SECRETS = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "XEN_PASSWORD"]


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty secrets directory as BOT_SECRETS_DIR; no systemd credentials."""
    for name in ("BOT_SECRETS_DIR", "CREDENTIALS_DIRECTORY", "BOT_DATABASE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "secrets"
    folder.mkdir()
    monkeypatch.setenv("BOT_SECRETS_DIR", str(folder))
    return folder


def test_secrets_come_from_files_named_after_the_variable(files: Path) -> None:
    """Docker and Kubernetes secrets: one file per variable, in upper or lower case, its
    trailing newline stripped; the values are secrets (hidden, and handed to log redaction)."""
    for name in SECRETS:
        (files / (name if name.startswith("SLACK") else name.lower())).write_text(f"{name}-v\n")
    settings = load_settings()
    for name in SECRETS:
        assert getattr(settings, name.lower()).get_secret_value() == f"{name}-v"
    assert sorted(settings.secret_values()) == sorted(f"{name}-v" for name in SECRETS)
    assert "XEN_PASSWORD-v" not in repr(settings)
    settings.require(*SECRETS)


def test_systemd_credentials_are_read_and_win_over_the_secrets_dir(
    files: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """LoadCredential= puts files in $CREDENTIALS_DIRECTORY: read, and preferred to a file
    of the same name in BOT_SECRETS_DIR (the unit's own credential is the more specific)."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "XEN_PASSWORD").write_text("from-systemd")
    (files / "XEN_PASSWORD").write_text("from-dir")
    (files / "SLACK_BOT_TOKEN").write_text("xoxb-dir")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = load_settings()
    assert settings.xen_password.get_secret_value() == "from-systemd"  # type: ignore[union-attr]
    assert settings.slack_bot_token.get_secret_value() == "xoxb-dir"  # type: ignore[union-attr]


def test_an_environment_variable_wins_over_a_file(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set both ways, the variable wins (pydantic-settings' order): an override needs no
    edit of the mounted secret; a file alone fills what the environment leaves out."""
    (files / "XEN_PASSWORD").write_text("from-file")
    (files / "SLACK_BOT_TOKEN").write_text("xoxb-file")
    monkeypatch.setenv("XEN_PASSWORD", "from-env")
    settings = load_settings()
    assert settings.xen_password.get_secret_value() == "from-env"  # type: ignore[union-attr]
    assert settings.slack_bot_token.get_secret_value() == "xoxb-file"  # type: ignore[union-attr]


def test_any_setting_may_come_from_a_file(files: Path) -> None:
    """Not only secrets: a file BOT_HTTP_PORT is read and validated as the variable is."""
    (files / "BOT_HTTP_PORT").write_text("3100\n")
    assert load_settings().bot_http_port == 3100
    (files / "BOT_HTTP_PORT").write_text("eighty")
    with pytest.raises(SettingsError, match=r"^BOT_HTTP_PORT: "):
        load_settings()


def test_missing_secrets_directories_are_fine(
    files: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No directory mounted (the default /run/secrets on a plain host, an unset or gone
    $CREDENTIALS_DIRECTORY): nothing read, no warning, the settings load."""
    monkeypatch.setenv("BOT_SECRETS_DIR", str(tmp_path / "not-there"))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "gone"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = load_settings()
    assert settings.slack_bot_token is None
    monkeypatch.setenv("BOT_SECRETS_DIR", "")  # empty: no directory at all
    assert load_settings().bot_secrets_dir == ""


def test_the_secrets_dir_may_be_set_in_dot_env(
    files: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """BOT_SECRETS_DIR is a setting like the others: `.env` may name it too."""
    monkeypatch.delenv("BOT_SECRETS_DIR")
    (files / "SLACK_APP_TOKEN").write_text("xapp-1")
    (tmp_path / ".env").write_text(f"BOT_SECRETS_DIR={files}\n")
    assert load_settings().slack_app_token.get_secret_value() == "xapp-1"  # type: ignore[union-attr]


def test_an_unreadable_secret_file_is_one_line_naming_the_variable(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the bot's user may not read (a compose bind mount owned by another uid):
    one line with the variable, the path and why, no traceback."""
    secret = files / "SLACK_BOT_TOKEN"
    secret.write_text("xoxb-1")
    secret.chmod(0)
    if os.access(secret, os.R_OK):  # root reads anything: refuse the read as the kernel would
        real = Path.read_text

        def refuse(self: Path, *args: Any, **kwargs: Any) -> str:
            if self == secret:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == f"SLACK_BOT_TOKEN: cannot read {secret} (Permission denied)"


def test_a_secret_file_that_is_not_text_is_one_line(files: Path) -> None:
    (files / "XEN_PASSWORD").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SettingsError, match=r"^XEN_PASSWORD: its file is not UTF-8 text$"):
        load_settings()


@pytest.mark.parametrize("name", ["BOT_SECRETS_DIR", "CREDENTIALS_DIRECTORY"])
def test_a_secrets_dir_that_is_a_file_is_one_line(
    files: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    monkeypatch.setenv(name, str(plain))
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == f"{name}: {plain} is not a directory"


def test_the_database_password_from_a_file_goes_into_the_url(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BOT_DATABASE_PASSWORD (a file, beside a URL without a password) completes the URL,
    escaped for it; the password is a secret, redacted in logs as written and as encoded."""
    password = "p@ss/w:rd%"
    (files / "BOT_DATABASE_PASSWORD").write_text(password + "\n")
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql+psycopg://migrate_bot@db:5432/migrate_bot")
    settings = load_settings()
    url = sa.make_url(settings.bot_database_url)
    assert (url.username, url.password, url.host, url.database) == (
        "migrate_bot",
        password,
        "db",
        "migrate_bot",
    )
    assert password in settings.secret_values()
    assert quote(password, safe="") in logs.url_secrets(settings.bot_database_url)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "postgresql+psycopg://u:inline@db/x",
            "BOT_DATABASE_PASSWORD: BOT_DATABASE_URL holds a password already; "
            "give it in one place",
        ),
        ("sqlite:///bot.db", "BOT_DATABASE_PASSWORD: a sqlite database takes no password"),
        ("not a url", "BOT_DATABASE_URL: not a database URL"),
    ],
)
def test_a_database_password_that_cannot_go_into_the_url_is_one_line(
    files: Path, monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    (files / "BOT_DATABASE_PASSWORD").write_text("pw")
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == said
