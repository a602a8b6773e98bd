"""deploy/Dockerfile and its dockerignore, read statically (no Docker engine here); the
HEALTHCHECK's command runs against a local probe server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.deploy.kit import BOT_PORT, DEPLOY, ROOT, dockerfile, pod_spec, setting_names


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
        "tests/deploy/test_docker.py",
        ".hypothesis/examples",
        ".ruff_cache/x",
        ".env",
        "migrate-bot.db",
        "deploy/migrate-bot.env",
        "deploy/secrets/SLACK_BOT_TOKEN",
        "deploy/kubernetes/secrets/XEN_PASSWORD",
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
