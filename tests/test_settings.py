"""Settings: every variable of the design's table, typed, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

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
