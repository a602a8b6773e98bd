"""The deployment kit in deploy/, read for its tests: paths, YAML, the Dockerfile, settings.

The kit is checked statically: no Docker engine, cluster or Slack here.
"""

from __future__ import annotations

import typing
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
BOT_PORT = 3000


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
