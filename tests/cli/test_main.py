"""`migrate-bot` as an operator runs it: a real process, settings from the environment."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from alembic.config import Config

from bot.clock import ManualClock
from bot.slackdouble import SlackDouble
from bot.store.schema_status import MIGRATIONS, schema_status
from bot.store.store import Store
from tests.support.pool import Pool, demo_pool
from tests.support.processes import free_port

PASSWORD = "pa55:w/rd-0f-the-db"
WRITTEN = quote(PASSWORD, safe="")  # as a URL holds it
OLD = "0003"  # an Alembic revision older than the code's head


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


def test_check_usage_error_exits_2() -> None:
    """Bad grammar is answered with the usage, before any setting is needed; a command
    that is not a migration is a usage error too. Exit 2, as argparse's own errors."""
    result = _cli("check", "vm01 host3", env={})
    assert result.returncode == 2
    assert "/migrate <vm> to <host>" in result.stderr
    status = _cli("check", "status", env={})
    assert status.returncode == 2 and "check takes a migration" in status.stderr
    assert _cli("check", env={}).returncode == 2  # argparse: the text is missing


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
    assert result.returncode == 2
    assert result.stderr.strip() == "check --run takes one VM; file batches in Slack"


def test_missing_setting_is_one_line_naming_it() -> None:
    """No XEN_URL: exit 2 with one line that names the variable."""
    result = _cli("check", "vm01 to host3", env={})
    assert result.returncode == 2
    assert "XEN_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture
def ready(pool: Pool) -> Iterator[dict[str, str]]:
    """The settings of a bot that would work: a pool, Slack (the double), approvers."""
    with SlackDouble(usergroups={"S1": ["ULEAD2"]}, channels={"C1": "ops"}) as slack:
        yield {
            **_xen(pool),
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": "s",
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "BOT_APPROVERS": "ULEAD,S1",
        }


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _with_password(url: str) -> str:
    """The URL with PASSWORD (the test cluster trusts every connection, so it still works)."""
    written = sa.make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
    assert f":{WRITTEN}@" in written
    return written


def _no_password(result: subprocess.CompletedProcess[str]) -> bool:
    output = result.stdout + result.stderr
    return PASSWORD not in output and WRITTEN not in output


def _at_revision(url: str, revision: str) -> None:
    """The database as an older bot left it: the schema at `revision`."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _lines(text: str, start: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(start)]


def test_check_config_passes_against_a_working_pool_and_slack(
    ready: dict[str, str], tmp_path: Path
) -> None:
    """Every check passes: settings, the database (none yet: the bot creates it), XAPI login
    and version, Slack bot and app tokens, groups. The database file is not created."""
    db = tmp_path / "bot.db"
    result = _cli("check-config", env={**ready, "BOT_DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 0, result.stdout
    assert f"✓ database sqlite:///{db}: empty; `migrate-bot run` creates" in result.stdout
    assert "✓ XAPI: pool" in result.stdout and "API 2.21" in result.stdout
    assert "✓ Slack: bot @" in result.stdout and result.stdout.strip().endswith("ready")
    assert not db.exists()


def test_check_config_connects_and_never_shows_the_database_password(
    ready: dict[str, str], postgres_url: str
) -> None:
    """A PostgreSQL URL with a password: the database line says the schema is up to date,
    with *** where the password was, and the password appears nowhere, decoded or not."""
    url = _with_password(postgres_url)
    Store(url, ManualClock()).close()  # the schema at head, as the bot leaves it
    result = _cli("check-config", env={**ready, "BOT_DATABASE_URL": url})
    assert result.returncode == 0, result.stdout
    (line,) = _lines(result.stdout, "✓ database")
    assert line.startswith("✓ database postgresql+psycopg://postgres:***@127.0.0.1:")
    assert "schema up to date" in line
    assert _no_password(result)


def test_check_config_says_when_the_database_is_unreachable(ready: dict[str, str]) -> None:
    """Nobody listens on the database's port: one ✗ line saying so, exit 1, no password."""
    pytest.importorskip("psycopg", reason="the psycopg driver (pip install '.[postgres]')")
    url = _with_password(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres")
    result = _cli("check-config", env={**ready, "BOT_DATABASE_URL": url})
    assert result.returncode == 1
    (line,) = _lines(result.stdout, "✗")
    assert line.startswith("✗ database postgresql+psycopg://postgres:***@127.0.0.1:")
    assert "cannot connect" in line
    assert "1 problem(s)" in result.stdout and "Traceback" not in result.stderr
    assert _no_password(result)


def test_check_config_reports_an_older_schema_and_changes_nothing(
    ready: dict[str, str], url: str
) -> None:
    """A schema an older bot left: said plainly (⚠, the next start upgrades it), still ready,
    and the database stays at its revision."""
    _at_revision(url, OLD)
    result = _cli("check-config", env={**ready, "BOT_DATABASE_URL": url})
    head = schema_status(url).head
    assert result.returncode == 0, result.stdout
    (line,) = _lines(result.stdout, "⚠ database")
    assert f"its schema (revision {OLD}) is older than this version's ({head})" in line
    assert "`migrate-bot run` upgrades it" in line
    assert schema_status(url).current == OLD


def test_audit_refuses_an_older_schema_and_leaves_it_alone(url: str) -> None:
    """`audit` only reads: on a schema older than the code it says so with the next step,
    exits 1, and neither upgrades the schema nor writes anything (on SQLite: not a byte)."""
    _at_revision(url, OLD)
    file = sa.make_url(url).database if url.startswith("sqlite") else None
    before = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file else None
    result = _cli("audit", env={"BOT_DATABASE_URL": url})
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert f"its schema (revision {OLD}) is older" in line and "`migrate-bot run`" in line
    assert schema_status(url).current == OLD
    if file:
        assert hashlib.sha256(Path(file).read_bytes()).hexdigest() == before


def test_audit_reads_a_current_schema_through_a_store_that_cannot_write(url: str) -> None:
    """At head the export works as before; the store it opens refuses writes (the database
    itself does), so an export never changes the record."""
    store = Store(url, ManualClock())
    try:
        store.audit(None, "U1", "created", {"vm": "vm01"})
    finally:
        store.close()
    result = _cli("audit", env={"BOT_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["actor"] == "U1" and event["details"] == {"vm": "vm01"}
    reader = Store(url, ManualClock(), read_only=True)
    try:
        assert len(reader.audit_events()) == 1
        with pytest.raises(sa.exc.DBAPIError, match=r"read-?only"):
            reader.audit(None, "U2", "created")
        assert len(reader.audit_events()) == 1
    finally:
        reader.close()


def test_audit_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    """A BOT_DATABASE_URL naming no file: one line asking whether it is right; no file made."""
    db = tmp_path / "typo.db"
    result = _cli("audit", env={"BOT_DATABASE_URL": f"sqlite:///{db}"})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"database sqlite:///{db} holds no migrate-bot schema: is BOT_DATABASE_URL the bot's?"
    )
    assert not db.exists()


def test_version_comes_from_the_installed_package() -> None:
    result = _cli("--version", env={})
    assert result.returncode == 0
    assert result.stdout == f"migrate-bot {metadata.version('migrate-bot')}\n"


def test_a_time_zone_works_without_the_systems_zone_files(tmp_path: Path) -> None:
    """BOT_TIMEZONE=Asia/Jakarta with no zone files on the system (a slim image: here an
    empty PYTHONTZPATH) reads `--since` in Jakarta time (UTC+7), from the tzdata package."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    for hour in (18, 20):  # 01:30 and 03:30 on the 26th in Jakarta
        at = datetime(2026, 11, 25, hour, 30, tzinfo=UTC).timestamp()
        store = Store(url, ManualClock(at))
        store.audit(None, f"U{hour}", "created")
        store.close()
    env = {"BOT_DATABASE_URL": url, "BOT_TIMEZONE": "Asia/Jakarta", "PYTHONTZPATH": ""}
    result = _cli("audit", "--since", "2026-11-26T02:00", env=env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["actor"] for line in result.stdout.splitlines()] == ["U20"]


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


@pytest.fixture
def second(pool: Pool) -> Iterator[Pool]:
    """Another demo pool: every name is in both."""
    yield from demo_pool()


def _pools(tmp_path: Path, *pools: Pool, password: str = "secret") -> dict[str, str]:
    """BOT_POOLS_FILE naming the pools site-a, site-b, … (passwords from the environment)."""
    entries = [
        {"name": f"site-{'ab'[i]}", "url": p.server.url, "username": "root"}
        | {"password_env": f"POOL_{i}_PASSWORD"}
        for i, p in enumerate(pools)
    ]
    (tmp_path / "pools.yaml").write_text(yaml.safe_dump({"pools": entries}))
    passwords = {f"POOL_{i}_PASSWORD": "secret" for i in range(len(pools))}
    passwords["POOL_1_PASSWORD"] = password
    return {"BOT_POOLS_FILE": str(tmp_path / "pools.yaml"), **passwords}


def test_check_with_several_pools_asks_which_and_names_the_one_chosen(
    pool: Pool, second: Pool, tmp_path: Path
) -> None:
    env = _pools(tmp_path, pool, second)
    asked = _cli("check", "vm02 to host3", env=env)
    assert asked.returncode == 1 and "in more than one pool (site-a, site-b)" in asked.stderr
    chosen = _cli("check", "vm02@site-b to host3", env=env)
    assert chosen.returncode == 0, chosen.stderr
    assert "pool site-b" in chosen.stdout and "vm02: host2 → host3" in chosen.stdout


def test_check_config_logs_in_to_every_pool(
    ready: dict[str, str], pool: Pool, second: Pool, tmp_path: Path
) -> None:
    db = {"BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
    result = _cli("check-config", env={**ready, **db, **_pools(tmp_path, pool, second)})
    assert result.returncode == 0, result.stdout
    assert "pools site-a, site-b" in result.stdout
    assert "✓ XAPI (site-a): pool 'demo'" in result.stdout
    assert "✓ XAPI (site-b): pool 'demo'" in result.stdout
    refused = _pools(tmp_path, pool, second, password="wrong")
    result = _cli("check-config", env={**ready, **db, **refused})
    assert result.returncode == 1
    assert "✗ XAPI (site-b): the pool refused its username / password" in result.stdout
    assert "wrong" not in result.stdout


SECRET_NAMES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "XEN_PASSWORD")


@pytest.mark.parametrize("directory", ["BOT_SECRETS_DIR", "CREDENTIALS_DIRECTORY"])
def test_check_config_passes_with_the_secrets_in_files(
    ready: dict[str, str], tmp_path: Path, directory: str
) -> None:
    """The secrets as Kubernetes or Docker (BOT_SECRETS_DIR) and systemd's LoadCredential=
    (CREDENTIALS_DIRECTORY) deliver them, none in the environment: every check passes and
    no secret is printed."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    env = {**ready, "SLACK_SIGNING_SECRET": "signing-secret-from-a-file"}
    given = {name: env.pop(name) for name in SECRET_NAMES}
    for name, value in given.items():
        (folder / name).write_text(value + "\n")
    db = tmp_path / "bot.db"
    result = _cli(
        "check-config",
        env={**env, directory: str(folder), "BOT_DATABASE_URL": f"sqlite:///{db}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ XAPI: pool" in result.stdout and "✓ Slack: bot @" in result.stdout
    assert result.stdout.strip().endswith("ready")
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        assert given[name] not in result.stdout + result.stderr, name


def test_check_config_takes_the_database_password_from_a_file(
    ready: dict[str, str], postgres_url: str, tmp_path: Path
) -> None:
    """BOT_DATABASE_URL without a password, BOT_DATABASE_PASSWORD in a secret file: the bot
    connects with it, and prints the URL with *** and the password nowhere."""
    Store(postgres_url, ManualClock()).close()
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "BOT_DATABASE_PASSWORD").write_text(PASSWORD + "\n")
    assert sa.make_url(postgres_url).password is None  # the URL as the ConfigMap holds it
    env = {**ready, "BOT_DATABASE_URL": postgres_url, "BOT_SECRETS_DIR": str(folder)}
    result = _cli("check-config", env=env)
    assert result.returncode == 0, result.stdout
    (line,) = _lines(result.stdout, "✓ database")
    assert line.startswith("✓ database postgresql+psycopg://postgres:***@127.0.0.1:")
    assert _no_password(result)


def test_a_secret_file_it_cannot_read_is_one_line(ready: dict[str, str], tmp_path: Path) -> None:
    """A secret file that does not decode: exit 2, one line naming the variable."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "XEN_PASSWORD").write_bytes(b"\xff\xfe")
    env = {k: v for k, v in ready.items() if k != "XEN_PASSWORD"}
    result = _cli("check-config", env={**env, "BOT_SECRETS_DIR": str(folder)})
    assert result.returncode == 2
    assert result.stderr.strip() == "migrate-bot: XEN_PASSWORD: its file is not UTF-8 text"
