"""deploy/compose.yml (SQLite, one bot) and compose.postgres.yml (PostgreSQL, two
replicas); the Compose Specification's schema is checked when `check-jsonschema` is
installed, and skipped with the reason otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.settings import Settings
from tests.deploy.kit import (
    BOT_PORT,
    DEPLOY,
    ROOT,
    dockerfile,
    load,
    secret_setting_names,
    setting_names,
)


def test_compose_builds_the_dockerfile_with_env_file_volume_and_healthcheck() -> None:
    """compose.yml builds deploy/Dockerfile from the repo root and runs it with the kit's files."""
    compose = load(DEPLOY / "compose.yml")
    bot = compose["services"]["bot"]
    context = (DEPLOY / bot["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / bot["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert bot["env_file"] == "migrate-bot.env"
    assert (DEPLOY / f"{bot['env_file']}.example").is_file()
    assert "bot-data:/data" in bot["volumes"] and "bot-data" in compose["volumes"]
    assert [str(p).rsplit(":", 1)[-1] for p in bot["ports"]] == [str(BOT_PORT)]
    assert bot["restart"] == "unless-stopped"
    test = bot["healthcheck"]["test"]
    assert test[0] == "CMD" and f"127.0.0.1:{BOT_PORT}/healthz" in test[-1]


def bot_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the bot: those built from deploy/Dockerfile."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def test_compose_postgres_runs_two_replicas_on_one_database() -> None:
    """compose.postgres.yml: two bots on the same psycopg URL, in HTTP mode on ports of their
    own, restarted on exit (code 3: the lead was lost), once PostgreSQL is healthy."""
    compose = load(DEPLOY / "compose.postgres.yml")
    bots = bot_services(compose)
    assert len(bots) == 2
    urls, host_ports, images = set(), set(), set()
    for name, bot in bots.items():
        assert (DEPLOY / bot["build"]["context"]).resolve() == ROOT, name
        assert "psycopg" in bot["build"]["args"]["EXTRA_PACKAGES"], name
        assert bot["env_file"] == "migrate-bot.env", name
        environment = bot["environment"]
        assert set(environment) <= setting_names(), name
        assert environment["BOT_MODE"] == "http", name
        url = environment["BOT_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url, name
        assert sa.make_url(url).password is None, f"{name}: the password is a secret file"
        urls.add(url)
        assert bot["restart"] in {"unless-stopped", "always"}, name
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert "volumes" not in bot, f"{name}: no database file on PostgreSQL"
        (port,) = bot["ports"]
        host, _, container = str(port).rpartition(":")
        assert container == str(BOT_PORT), name
        host_ports.add(host)
        test = bot["healthcheck"]["test"]
        assert test[0] == "CMD" and f"127.0.0.1:{BOT_PORT}/healthz" in test[-1], name
        images.add(bot["image"])
    assert len(urls) == 1, "the replicas must share one database"
    assert len(host_ports) == 2, "each replica publishes a port of its own"
    (image,) = images
    assert image != load(DEPLOY / "compose.yml")["services"]["bot"]["image"]
    assert any(word == "ARG" and rest.startswith("EXTRA_PACKAGES") for word, rest in dockerfile())


def test_compose_postgres_runs_a_healthy_postgres_for_the_replicas() -> None:
    """postgres:16 with a volume, a pg_isready healthcheck and a restart policy; the bots'
    URL names its user, database and password."""
    compose = load(DEPLOY / "compose.postgres.yml")
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["restart"] == "unless-stopped"
    env = postgres["environment"]
    assert "POSTGRES_PASSWORD" not in env
    (password,) = postgres["secrets"]
    assert env["POSTGRES_PASSWORD_FILE"] == f"/run/secrets/{password}"
    for bot in bot_services(compose).values():
        url = sa.make_url(bot["environment"]["BOT_DATABASE_URL"])
        assert (url.username, url.database) == (env["POSTGRES_USER"], env["POSTGRES_DB"])
        # The bots' BOT_DATABASE_PASSWORD is PostgreSQL's own password file.
        assert {"source": password, "target": "BOT_DATABASE_PASSWORD"} in bot["secrets"]


def mounted(service: dict[str, Any]) -> dict[str, str]:
    """The service's secrets: the file name under /run/secrets -> the top-level secret."""
    pairs = {}
    for entry in service["secrets"]:
        source = entry if isinstance(entry, str) else entry["source"]
        target = entry if isinstance(entry, str) else entry.get("target", source)
        pairs[target] = source
    return pairs


@pytest.mark.parametrize("name", ["compose.yml", "compose.postgres.yml"])
def test_compose_hands_the_bots_their_secrets_as_files(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every secret setting a bot needs is a compose secret (a file in /run/secrets, the
    default BOT_SECRETS_DIR) read from deploy/secrets/ (git-ignored), never an environment
    variable; the bot reads them as compose mounts them."""
    compose = load(DEPLOY / name)
    for service_name, bot in bot_services(compose).items():
        files = mounted(bot)
        wanted = secret_setting_names() - (
            set() if "postgres" in name else {"BOT_DATABASE_PASSWORD"}
        )
        assert set(files) == wanted, service_name
        assert not set(bot.get("environment", {})) & secret_setting_names(), service_name
        for source in files.values():
            assert compose["secrets"][source]["file"] == f"secrets/{source}"
        assert Settings.model_fields["bot_secrets_dir"].default == "/run/secrets"
        run_secrets = tmp_path / service_name
        run_secrets.mkdir()
        for target, source in files.items():
            (run_secrets / target).write_text(f"{source}-value\n")
        for setting in setting_names() | {"CREDENTIALS_DIRECTORY"}:
            monkeypatch.delenv(setting, raising=False)
        for key, value in {
            **bot.get("environment", {}),
            "BOT_SECRETS_DIR": str(run_secrets),
        }.items():
            monkeypatch.setenv(key, str(value))
        settings = Settings(_env_file=None)
        settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "XEN_PASSWORD")
        assert settings.xen_password.get_secret_value() == "XEN_PASSWORD-value"  # type: ignore[union-attr]
        if "postgres" in name:
            password = sa.make_url(settings.bot_database_url).password
            assert password == "POSTGRES_PASSWORD-value"
    assert "secrets/" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_compose_files_match_the_compose_spec() -> None:
    """Both compose files validate against the Compose Specification's JSON schema, offline."""
    pytest.importorskip("check_jsonschema", reason="check-jsonschema not installed")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yml"),
            str(DEPLOY / "compose.postgres.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
