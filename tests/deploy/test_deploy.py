"""The deployment kit in deploy/, checked statically (no Docker engine, cluster or Slack here).

Schema validators run when their PyPI packages are installed (`kubernetes-validate` for
the Kubernetes manifests, `check-jsonschema` for the compose files) and are skipped with
the reason otherwise; the structural checks below them always run. `systemd-analyze` and
`kubectl` are used when the machine has them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
import typing
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
BOT_PORT = 3000


# ---- helpers ------------------------------------------------------------------------------


def setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def secret_setting_names() -> set[str]:
    return {
        name.upper()
        for name, field in Settings.model_fields.items()
        if SecretStr in (field.annotation, *typing.get_args(field.annotation))
    }


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def k8s(name: str) -> dict[str, Any]:
    return load(K8S / name)


def pod_spec() -> dict[str, Any]:
    return k8s("deployment.yaml")["spec"]["template"]["spec"]


def bot_container() -> dict[str, Any]:
    (container,) = pod_spec()["containers"]
    return container


def container_port(port: int | str) -> int:
    """A probe's or Service's port, named or numbered, as the container port number."""
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in bot_container()["ports"] if p["name"] == port]
    return match


@cache
def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may also sit between continuation lines
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        instructions.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    ins = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def copy_sources(args: str) -> tuple[list[str], dict[str, str]]:
    """COPY's sources and its --flags (the destination dropped)."""
    words = exec_form(args) if args.startswith("[") else shlex.split(args)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return paths[:-1], flags


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """One .dockerignore pattern as moby's patternmatcher reads it."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


@cache
def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negate, _ignore_regex(pattern)))
    return rules


def ignored(relative: str) -> bool:
    """Whether the builder would leave this context path out (last matching rule wins)."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in ignore_rules():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


ENV_LINE = re.compile(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> list[tuple[bool, str, str]]:
    """(active, NAME, value) for each `NAME=value` or commented-out `#NAME=value` line."""
    entries = []
    for raw in (DEPLOY / "migrate-bot.env.example").read_text(encoding="utf-8").splitlines():
        match = ENV_LINE.match(raw)
        if match:
            entries.append((not match[1], match[2], match[3]))
    return entries


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


# ---- YAML and the Slack app manifest -----------------------------------------------------


def test_every_yaml_file_under_deploy_parses() -> None:
    """Every .yml/.yaml file in deploy/ is valid YAML whose documents are mappings."""
    files = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
    assert len(files) >= 9
    for path in files:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        assert documents, path
        assert all(isinstance(doc, dict) for doc in documents), path


def test_slack_manifest_asks_for_exactly_the_least_scopes() -> None:
    """The app asks for commands, chat:write and usergroups:read only (no chat:write.public)."""
    scopes = load(DEPLOY / "slack-app-manifest.yml")["oauth_config"]["scopes"]
    assert sorted(scopes["bot"]) == sorted(["commands", "chat:write", "usergroups:read"])
    assert len(scopes["bot"]) == len(set(scopes["bot"]))
    assert "user" not in scopes


def test_slack_manifest_declares_the_migrate_command() -> None:
    """/migrate is the one slash command, with a description, usage hint and no escaping."""
    manifest = load(DEPLOY / "slack-app-manifest.yml")
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/migrate"
    assert command["description"]
    assert command["usage_hint"] == "vm01 to host3 sr=nfs1 mode=offline | help"
    assert command["should_escape"] is False
    assert "url" not in command  # Socket Mode: Slack needs no request URL


def test_slack_manifest_turns_on_interactivity_and_socket_mode() -> None:
    """Buttons and the modal work over Socket Mode; no org deploy, no token rotation."""
    manifest = load(DEPLOY / "slack-app-manifest.yml")
    settings = manifest["settings"]
    assert settings["interactivity"] == {"is_enabled": True}
    assert settings["socket_mode_enabled"] is True
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert "event_subscriptions" not in settings  # the bot listens to no events
    assert manifest["display_information"]["name"] == "migrate-bot"
    assert manifest["features"]["bot_user"] == {
        "display_name": "migrate-bot",
        "always_online": True,
    }


def test_slack_manifest_keeps_to_the_manifest_schema() -> None:
    """Only keys Slack's manifest schema knows, within its length limits."""
    manifest = load(DEPLOY / "slack-app-manifest.yml")
    assert set(manifest) <= {
        "_metadata",
        "display_information",
        "features",
        "oauth_config",
        "settings",
    }
    display = manifest["display_information"]
    assert set(display) <= {"name", "description", "long_description", "background_color"}
    assert len(display["name"]) <= 35
    assert len(display["description"]) < 140  # Slack's API refuses 140 itself
    assert 175 <= len(display["long_description"]) <= 4000
    assert re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", display["background_color"])
    features = manifest["features"]
    assert set(features) <= {
        "app_home",
        "bot_user",
        "shortcuts",
        "slash_commands",
        "unfurl_domains",
    }
    assert re.fullmatch(r"[\w\-.]{1,80}", features["bot_user"]["display_name"])
    for command in features["slash_commands"]:
        assert set(command) <= {"command", "description", "should_escape", "url", "usage_hint"}
        assert command["command"].startswith("/") and len(command["command"]) <= 32
        assert len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000
    assert set(manifest["oauth_config"]) <= {"redirect_urls", "scopes"}
    settings = manifest["settings"]
    assert set(settings) <= {
        "allowed_ip_address_ranges",
        "event_subscriptions",
        "interactivity",
        "org_deploy_enabled",
        "socket_mode_enabled",
        "token_rotation_enabled",
    }
    assert set(settings["interactivity"]) <= {
        "is_enabled",
        "request_url",
        "message_menu_options_url",
    }


# ---- the settings file ---------------------------------------------------------------------


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


def test_env_example_values_load_as_socket_mode_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The active lines, with only their placeholders, are valid settings for Socket Mode."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    active = {name.lower(): value for on, name, value in env_example() if on}
    settings = Settings(_env_file=None, **active)
    assert settings.bot_mode == "socket"
    assert settings.bot_http_port == BOT_PORT
    settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "XEN_URL", "XEN_USERNAME")
    settings.require("XEN_PASSWORD", "BOT_APPROVERS")
    secrets = {name for on, name, _ in env_example() if on} & secret_setting_names()
    assert secrets == secret_setting_names(), "every secret needs a placeholder line"
    for _, name, value in env_example():
        if name in secret_setting_names():
            assert "REPLACE-ME" in value, f"{name} must be a placeholder"


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


# ---- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_copies_only_files_that_reach_the_builder() -> None:
    """Every COPY source exists in the build context (the repo root) and is not ignored."""
    copies = [copy_sources(args) for word, args in dockerfile() if word == "COPY"]
    from_context = [sources for sources, flags in copies if "from" not in flags]
    assert from_context
    for sources in from_context:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the build context"
            assert not ignored(source), f"COPY {source}: excluded by the dockerignore"


def test_dockerignore_sends_the_package_and_nothing_private() -> None:
    """Every file of the bot and handlers packages is sent; venv, git, tests, secrets are not."""
    for package in ("bot", "handlers"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                relative = path.relative_to(ROOT).as_posix()
                assert not ignored(relative), f"{relative} would be missing from the image"
    for private in (
        ".venv/bin/python",
        ".git/config",
        "tests/deploy/test_deploy.py",
        ".hypothesis/examples",
        ".ruff_cache/x",
        ".env",
        "migrate-bot.db",
        "deploy/migrate-bot.env",
        "bot/__pycache__/cli.cpython-311.pyc",
        "bot/.env",
        "handlers/migrate-bot.db",
    ):
        assert ignored(private), f"{private} would be sent to the builder"


def test_dockerfile_builds_a_venv_from_the_constraints_in_two_stages() -> None:
    """A slim Python 3.11 base, a build stage that pip-installs with -c constraints.txt."""
    ins = dockerfile()
    args = {
        name: default
        for word, rest in ins[: next(i for i, (w, _) in enumerate(ins) if w == "FROM")]
        if word == "ARG"
        for name, _, default in [rest.partition("=")]
    }
    bases = [rest.split()[0] for word, rest in ins if word == "FROM"]
    assert len(bases) >= 2, "multi-stage"
    for base in bases:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], base)
        assert resolved == "python:3.11-slim", base
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "pip install -c constraints.txt ." in runs
    assert any(word == "COPY" and "--from=build" in rest for word, rest in final_stage())


def test_dockerfile_runtime_stage_is_non_root_with_data_volume_and_entrypoint() -> None:
    """Final stage: a numeric non-root USER, /data volume, EXPOSE 3000, migrate-bot run."""
    final = final_stage()
    (user,) = [rest for word, rest in final if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets runAsNonRoot verify it"
    assert pod_spec()["securityContext"]["runAsUser"] == int(uid)
    assert ("WORKDIR", "/data") in final
    assert ("VOLUME", '["/data"]') in final
    assert [rest for word, rest in final if word == "EXPOSE"] == [str(BOT_PORT)]
    (entrypoint,) = [exec_form(rest) for word, rest in final if word == "ENTRYPOINT"]
    (cmd,) = [exec_form(rest) for word, rest in final if word == "CMD"]
    assert (entrypoint, cmd) == (["migrate-bot"], ["run"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "migrate-bot" in scripts["project"]["scripts"]
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "BOT_DATABASE_URL=sqlite:////data/migrate-bot.db" in env
    assert f"BOT_HTTP_PORT={BOT_PORT}" in env
    for name in re.findall(r"\b((?:BOT|XEN|SLACK)_[A-Z_]+)=", env):
        assert name in setting_names(), name


def healthcheck_command() -> list[str]:
    (healthcheck,) = [rest for word, rest in final_stage() if word == "HEALTHCHECK"]
    options, _, command = healthcheck.partition(" CMD ")
    assert "--timeout=" in options
    return exec_form(command.strip())


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_dockerfile_healthcheck_probes_healthz_on_the_bot_port(
    probe_server: ThreadingHTTPServer,
) -> None:
    """HEALTHCHECK asks 127.0.0.1:$BOT_HTTP_PORT/healthz past any proxy: 0 on 200, else not."""
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    code = command[2]
    assert "/healthz" in code and "127.0.0.1" in code and f"'{BOT_PORT}'" in code
    port = str(probe_server.server_address[1])
    run = [sys.executable, "-c", code]
    # A proxy in the environment (set for the bot's own traffic) must not catch the probe.
    env = {"BOT_HTTP_PORT": port, "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}
    assert subprocess.run(run, env=env, capture_output=True, timeout=20).returncode == 0
    _Probe.status = 503
    try:
        assert subprocess.run(run, env=env, capture_output=True, timeout=20).returncode != 0
    finally:
        _Probe.status = 200


# ---- systemd -------------------------------------------------------------------------------


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


# ---- compose -------------------------------------------------------------------------------


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


# ---- Kubernetes ----------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_sets_the_image() -> None:
    """kustomization.yaml lists each manifest in deploy/kubernetes and retags the bot image."""
    kustomization = k8s("kustomization.yaml")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    (image,) = kustomization["images"]
    assert image["name"] == bot_container()["image"]


def test_kubernetes_manifests_validate_against_the_schemas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every manifest passes kubernetes-validate's bundled schemas, strictly, with no network."""
    validator = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate not installed"
    )

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the validator tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    version = validator.latest_version()
    for name in k8s("kustomization.yaml")["resources"]:
        validator.validate(k8s(name), version, strict=True)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_kustomize_renders_the_kit() -> None:
    """`kubectl kustomize` renders the five objects with the retagged image, offline."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Secret", "Service"]
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    (image,) = k8s("kustomization.yaml")["images"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"


def test_kubernetes_objects_have_the_expected_kinds() -> None:
    """Each file holds one object of the kind and apiVersion its name says."""
    expected = {
        "deployment.yaml": ("apps/v1", "Deployment"),
        "service.yaml": ("v1", "Service"),
        "configmap.yaml": ("v1", "ConfigMap"),
        "secret.yaml": ("v1", "Secret"),
        "pvc.yaml": ("v1", "PersistentVolumeClaim"),
        "kustomization.yaml": ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    }
    for name, (api_version, kind) in expected.items():
        docs = list(yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")))
        assert len(docs) == 1, name
        assert (docs[0]["apiVersion"], docs[0]["kind"]) == (api_version, kind), name


def test_deployment_runs_exactly_one_instance() -> None:
    """One replica, replaced with Recreate, so two bots never share the scheduler and watcher."""
    spec = k8s("deployment.yaml")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_deployment_probes_hit_healthz_and_readyz_on_the_bot_port() -> None:
    """Liveness /healthz, readiness /readyz, on the port BOT_HTTP_PORT and EXPOSE name."""
    container = bot_container()
    live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert live["path"] == "/healthz" and ready["path"] == "/readyz"
    assert container_port(live["port"]) == container_port(ready["port"]) == BOT_PORT
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # readyz answers within 2 s by design; the probe must wait at least that long.
    assert container["readinessProbe"].get("timeoutSeconds", 1) > 2
    assert k8s("configmap.yaml")["data"]["BOT_HTTP_PORT"] == str(BOT_PORT)
    assert Settings.model_fields["bot_http_port"].default == BOT_PORT
    (service_port,) = k8s("service.yaml")["spec"]["ports"]
    assert k8s("service.yaml")["spec"]["type"] == "ClusterIP"
    assert service_port["port"] == BOT_PORT
    assert container_port(service_port["targetPort"]) == BOT_PORT


def test_deployment_is_locked_down_with_bounded_resources() -> None:
    """Non-root, read-only root, no privilege escalation, no capabilities, 256Mi memory limit."""
    container = bot_container()
    assert pod_spec()["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    resources = container["resources"]
    assert resources["limits"]["memory"] == "256Mi"
    assert {"cpu", "memory"} <= set(resources["requests"])


def test_deployment_wires_the_pvc_config_secret_and_service() -> None:
    """The claim, ConfigMap and Secret it names exist, /data is the PVC, the Service selects it."""
    spec = pod_spec()
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in bot_container()["volumeMounts"]}
    data = volumes[mounts["/data"]]
    assert data["persistentVolumeClaim"]["claimName"] == k8s("pvc.yaml")["metadata"]["name"]
    pvc = k8s("pvc.yaml")["spec"]
    assert pvc["accessModes"] == ["ReadWriteOnce"]
    assert pvc["resources"]["requests"]["storage"] == "1Gi"
    sources = bot_container()["envFrom"]
    assert sources[0]["configMapRef"]["name"] == k8s("configmap.yaml")["metadata"]["name"]
    assert sources[-1]["secretRef"]["name"] == k8s("secret.yaml")["metadata"]["name"]
    assert "sqlite:////data/" in k8s("configmap.yaml")["data"]["BOT_DATABASE_URL"]
    labels = k8s("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    selector = k8s("service.yaml")["spec"]["selector"]
    assert selector.items() <= labels.items()
    assert k8s("deployment.yaml")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_kubernetes_config_names_only_real_settings_and_keeps_secrets_in_the_secret() -> None:
    """ConfigMap and Secret keys are Settings names; every secret is in the Secret only."""
    config = k8s("configmap.yaml")["data"]
    secret = k8s("secret.yaml")["stringData"]
    assert set(config) <= setting_names(), set(config) - setting_names()
    assert set(secret) <= setting_names(), set(secret) - setting_names()
    assert set(secret) == secret_setting_names()
    assert not set(config) & secret_setting_names()
    assert all(isinstance(value, str) for value in config.values())
    assert all("REPLACE-ME" in value for value in secret.values())


# ---- the operator guide ---------------------------------------------------------------------


def test_deploy_readme_covers_every_artefact() -> None:
    """deploy/README.md names each file of the kit, so none is left unexplained."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.name not in {"README.md", ".gitignore"}:
            assert path.name in readme, f"{path.relative_to(ROOT)} is not in deploy/README.md"
