"""deploy/compose.yml and compose.postgres.yml; the Compose Specification's schema is checked
when `check-jsonschema` is installed, and skipped with the reason otherwise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.deploy.kit import BOT_PORT, DEPLOY, ROOT, dockerfile, load, setting_names


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


def test_compose_postgres_override_adds_postgres_and_points_the_bot_at_it() -> None:
    """The override adds postgres:16 with a volume and healthcheck, and a psycopg URL."""
    override = load(DEPLOY / "compose.postgres.yml")
    postgres = override["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in override["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    bot = override["services"]["bot"]
    url = bot["environment"]["BOT_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert set(bot["environment"]) <= setting_names()
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "psycopg" in bot["build"]["args"]["EXTRA_PACKAGES"]
    assert any(word == "ARG" and rest.startswith("EXTRA_PACKAGES") for word, rest in dockerfile())


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
