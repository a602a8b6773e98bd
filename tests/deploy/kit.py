"""The deployment kit in deploy/, read for its tests: paths, YAML, the Dockerfile, settings.

The kit is checked statically: no Docker engine, cluster or Slack here.
"""

from __future__ import annotations

import base64
import re
import shutil
import socket
import subprocess
import typing
from collections.abc import Callable
from functools import cache
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


# The replicas overlay, rendered in Python (no kubectl needed): the subset of kustomize
# the kit uses, refusing anything else so a new feature there cannot be skipped silently.

REPLICAS = DEPLOY / "kubernetes-replicas"
KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "secretGenerator",
    "patches",
    "labels",
    "images",
}
GENERATOR_KEYS = {"name", "type", "behavior", "files"}
# What an operator would have written for each secret file the kit generates from: a value
# named after the file, with the newline `echo` leaves.
Reader = Callable[[Path], bytes]


def placeholder(path: Path) -> bytes:
    return f"test-{path.name}\n".encode()


# Strategic merge: lists merged item by item on this key; any other list is replaced.
MERGE_KEYS = {
    "containers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def object_id(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """`patch` merged into `base` the way kustomize merges a strategic-merge patch: maps
    key by key (null deletes the key), known lists item by item on their merge key
    (`$patch: delete` drops the item), anything else replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        assert "$patch" not in patch, f"unsupported directive in {field}: {patch}"
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, key)
            else:
                merged[key] = value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and MERGE_KEYS.get(field):
        key = MERGE_KEYS[field]
        merged_list = list(base)
        for item in patch:
            found = [i for i, old in enumerate(merged_list) if old[key] == item[key]]
            if item.get("$patch") == "delete":
                assert found, f"{field}: nothing to delete for {item}"
                del merged_list[found[0]]
            elif found:
                merged_list[found[0]] = strategic_merge(merged_list[found[0]], item, field)
            else:
                merged_list.append(item)
        return merged_list
    return patch


def generate_secrets(
    folder: Path, generators: list[dict[str, Any]], objects: list[dict[str, Any]], read: Reader
) -> None:
    """kustomize's `secretGenerator` with `files` (the key is the file's name), creating a
    Secret or merging keys into one a base generated. The generated name is left without
    kustomize's content-hash suffix: the tests compare names with the suffix taken off."""
    for generator in generators:
        assert set(generator) <= GENERATOR_KEYS, set(generator) - GENERATOR_KEYS
        data = {
            Path(entry).name: base64.b64encode(read(folder / entry)).decode()
            for entry in generator["files"]
        }
        name = generator["name"]
        if generator.get("behavior", "create") == "merge":
            (secret,) = [obj for obj in objects if object_id(obj) == ("Secret", name)]
            secret["data"] = {**secret["data"], **data}
            continue
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": generator.get("type", "Opaque"),
            "data": data,
        }
        objects.append(secret)


def kustomize(folder: Path, read: Reader = placeholder) -> list[dict[str, Any]]:
    """What `kubectl kustomize folder` renders, for the features the kit uses, with the
    secret files' contents from `read` (by default placeholders: the real files are the
    operator's, git-ignored and absent here)."""
    kustomization = load(folder / "kustomization.yaml")
    assert set(kustomization) <= KUSTOMIZATION_KEYS, set(kustomization) - KUSTOMIZATION_KEYS
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (folder / entry).resolve()
        objects += kustomize(path, read) if path.is_dir() else documents(path)
    generate_secrets(folder, kustomization.get("secretGenerator", []), objects, read)
    for entry in kustomization.get("patches", []):
        assert set(entry) == {"path"}, f"only patches from a file: {entry}"
        (patch,) = documents(folder / entry["path"])
        index = {object_id(obj): i for i, obj in enumerate(objects)}
        target = index[object_id(patch)]  # a KeyError: the patch's target is missing
        if patch.get("$patch") == "delete":
            del objects[target]
        else:
            objects[target] = strategic_merge(objects[target], patch)
    for entry in kustomization.get("labels", []):
        assert set(entry) == {"pairs"}, f"labels on metadata only: {entry}"
        for obj in objects:
            obj["metadata"] = {
                **obj["metadata"],
                "labels": {**obj["metadata"].get("labels", {}), **entry["pairs"]},
            }
    for image in kustomization.get("images", []):
        for obj in objects:
            if obj["kind"] != "Deployment":
                continue
            for container in obj["spec"]["template"]["spec"]["containers"]:
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    name = image.get("newName", name)
                    container["image"] = f"{name}:{image.get('newTag', tag)}"
    return objects


def filled_kit(tmp: Path, read: Reader = placeholder) -> tuple[Path, Path]:
    """deploy/kubernetes and kubernetes-replicas copied under `tmp` (siblings, as in the
    repository) with the secret files the generators read written from `read`: what an
    operator does before `kubectl apply -k`. Returns the two copies."""
    copies = []
    for folder in (K8S, REPLICAS):
        target = tmp / folder.name
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("secrets"))
        for generator in load(folder / "kustomization.yaml").get("secretGenerator", []):
            for entry in generator["files"]:
                (target / entry).parent.mkdir(exist_ok=True)
                (target / entry).write_bytes(read(Path(entry)))
        copies.append(target)
    return copies[0], copies[1]


def kubectl_kustomize(folder: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """`kubectl kustomize folder`: the objects with the generated Secrets' hash suffixes
    taken off (as `kustomize` above names them), and each generated name's full name."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    names = {
        generator["name"]
        for path in (folder, folder.parent / K8S.name)
        for generator in load(path / "kustomization.yaml").get("secretGenerator", [])
    }
    hashed = {}
    for name in names:
        (full,) = set(re.findall(rf"\b{re.escape(name)}-[a-z0-9]{{10}}\b", result.stdout))
        hashed[name] = full
    text = result.stdout
    for name, full in hashed.items():
        text = text.replace(full, name)
    return [doc for doc in yaml.safe_load_all(text) if doc], hashed


# The Prometheus Operator's kinds, which kubernetes-validate does not bundle: the fields of
# its CRDs (monitoring.coreos.com/v1) that the kit uses, and no others, so a misspelt field
# fails here as it would under strict validation (the API server would drop it silently).
_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|y|w|d|h|m|s))+)$"}  # 30s, 1h30m
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}


def _crd(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "namespace": {"type": "string"},
                    "labels": _STRINGS,
                    "annotations": _STRINGS,
                },
            },
            "spec": spec,
        },
    }


def _closed(required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _crd(
        _closed(
            ["selector", "endpoints"],
            jobLabel={"type": "string"},
            selector=_closed([], matchLabels=_STRINGS),
            endpoints={
                "type": "array",
                "minItems": 1,
                "items": _closed(
                    ["port"],
                    port={"type": "string"},
                    path={"type": "string"},
                    scheme={"enum": ["http", "https"]},
                    interval=_DURATION,
                    scrapeTimeout=_DURATION,
                ),
            },
        )
    ),
    "PrometheusRule": _crd(
        _closed(
            ["groups"],
            groups={
                "type": "array",
                "items": _closed(
                    ["name", "rules"],
                    name={"type": "string", "minLength": 1},
                    interval=_DURATION,
                    rules={
                        "type": "array",
                        "items": _closed(
                            ["alert", "expr"],
                            alert={"type": "string"},
                            expr={"type": "string"},
                            labels=_STRINGS,
                            annotations=_STRINGS,
                            **{"for": _DURATION},
                        ),
                    },
                ),
            },
        )
    ),
}


def offline_validate(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], None]:
    """kubernetes-validate's bundled schemas, strictly, with the network cut off (skipped
    where it is not installed); the Prometheus Operator's kinds against `CRD_SCHEMAS`."""
    validator = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate not installed"
    )
    import jsonschema  # kubernetes-validate's own dependency

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the validator tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    version = validator.latest_version()

    def validate(obj: dict[str, Any]) -> None:
        if obj.get("apiVersion") == "monitoring.coreos.com/v1":
            jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
        else:
            validator.validate(obj, version, strict=True)

    return validate
