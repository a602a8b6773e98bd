"""deploy/kubernetes/: the objects' structure always; the Kubernetes schemas when
`kubernetes-validate` is installed, and `kubectl kustomize` when the machine has kubectl
(each skipped with the reason otherwise)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from tests.deploy.kit import (
    BOT_PORT,
    DEPLOY,
    K8S,
    REPLICAS,
    documents,
    filled_kit,
    k8s,
    kubectl_kustomize,
    kustomize,
    load,
    object_id,
    offline_validate,
    pod_spec,
    secret_setting_names,
    setting_names,
)


def bot_container() -> dict[str, Any]:
    (container,) = pod_spec()["containers"]
    return container


def container_port(port: int | str) -> int:
    """A probe's or Service's port, named or numbered, as the container port number."""
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in bot_container()["ports"] if p["name"] == port]
    return match


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
    """Every manifest, and the rendered kit with its generated Secret, passes
    kubernetes-validate's bundled schemas, strictly, with no network."""
    validate = offline_validate(monkeypatch)
    for name in k8s("kustomization.yaml")["resources"]:
        validate(k8s(name))
    for obj in kustomize(K8S):
        validate(obj)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_kustomize_renders_the_kit(tmp_path: Path) -> None:
    """`kubectl kustomize`, once the operator wrote the secret files, renders the seven
    objects with the retagged image, offline; the Deployment mounts the generated Secret
    by its hashed name; the rest is what the tests' own render checks."""
    base, _ = filled_kit(tmp_path)
    docs, hashed = kubectl_kustomize(base)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "PersistentVolumeClaim",
        "PrometheusRule",
        "Secret",
        "Service",
        "ServiceMonitor",
    ]
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    (image,) = k8s("kustomization.yaml")["images"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image['newName']}:{image['newTag']}"
    assert set(hashed) == {"migrate-bot-secrets"}
    raw = subprocess.run(
        ["kubectl", "kustomize", str(base)], capture_output=True, text=True, timeout=60
    ).stdout
    assert f"secretName: {hashed['migrate-bot-secrets']}" in raw
    assert sorted(docs, key=object_id) == sorted(kustomize(base), key=object_id)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
@pytest.mark.parametrize("folder", [K8S, REPLICAS])
def test_kustomize_refuses_to_build_without_the_operators_secret_files(
    tmp_path: Path, folder: Path
) -> None:
    """The kit as committed ships no Secret: `kubectl kustomize` (so `apply -k`) stops on
    the first missing secret file, so an apply can never push placeholders over the real
    Secret."""
    base, replicas = filled_kit(tmp_path, read=lambda path: b"x")
    copy = base if folder == K8S else replicas
    generators = k8s("kustomization.yaml")["secretGenerator"]
    for entry in [file for generator in generators for file in generator["files"]]:
        (base / entry).unlink()
    result = subprocess.run(
        ["kubectl", "kustomize", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "secrets/SLACK_BOT_TOKEN" in result.stderr


def test_the_kit_commits_no_secret() -> None:
    """No manifest of either folder is a Secret or holds a placeholder for one: Secrets
    exist only as generated from the operator's git-ignored files."""
    for folder in (K8S, REPLICAS):
        for path in folder.glob("*.yaml"):
            assert not [doc for doc in documents(path) if doc.get("kind") == "Secret"], path
            assert "REPLACE-ME" not in path.read_text(encoding="utf-8"), path
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "secrets/" in ignored
    for folder in (K8S, REPLICAS):
        for generator in load(folder / "kustomization.yaml")["secretGenerator"]:
            assert all(entry.startswith("secrets/") for entry in generator["files"]), folder


def test_kubernetes_objects_have_the_expected_kinds() -> None:
    """Each file holds one object of the kind and apiVersion its name says."""
    expected = {
        "deployment.yaml": ("apps/v1", "Deployment"),
        "service.yaml": ("v1", "Service"),
        "configmap.yaml": ("v1", "ConfigMap"),
        "pvc.yaml": ("v1", "PersistentVolumeClaim"),
        "servicemonitor.yaml": ("monitoring.coreos.com/v1", "ServiceMonitor"),
        "prometheusrule.yaml": ("monitoring.coreos.com/v1", "PrometheusRule"),
        "kustomization.yaml": ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    }
    for name, (api_version, kind) in expected.items():
        docs = documents(K8S / name)
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
    """The claim, ConfigMap and generated Secret it names exist, /data is the PVC, the
    Service selects it."""
    spec = pod_spec()
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in bot_container()["volumeMounts"]}
    data = volumes[mounts["/data"]]
    assert data["persistentVolumeClaim"]["claimName"] == k8s("pvc.yaml")["metadata"]["name"]
    pvc = k8s("pvc.yaml")["spec"]
    assert pvc["accessModes"] == ["ReadWriteOnce"]
    assert pvc["resources"]["requests"]["storage"] == "1Gi"
    (source,) = bot_container()["envFrom"]
    assert source["configMapRef"]["name"] == k8s("configmap.yaml")["metadata"]["name"]
    (generator,) = k8s("kustomization.yaml")["secretGenerator"]
    (secrets,) = [v for v in spec["volumes"] if "secret" in v]
    assert secrets["secret"]["secretName"] == generator["name"]
    assert "sqlite:////data/" in k8s("configmap.yaml")["data"]["BOT_DATABASE_URL"]
    labels = k8s("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    selector = k8s("service.yaml")["spec"]["selector"]
    assert selector.items() <= labels.items()
    assert k8s("deployment.yaml")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def generated_keys() -> set[str]:
    (generator,) = k8s("kustomization.yaml")["secretGenerator"]
    return {Path(entry).name for entry in generator["files"]}


def test_kubernetes_config_names_only_real_settings_and_keeps_secrets_in_the_secret() -> None:
    """ConfigMap and Secret keys are Settings names; every secret but the database's (the
    replicas overlay adds it) is in the Secret, and in the Secret only."""
    config = k8s("configmap.yaml")["data"]
    assert set(config) <= setting_names(), set(config) - setting_names()
    assert generated_keys() == secret_setting_names() - {"BOT_DATABASE_PASSWORD"}
    assert not set(config) & secret_setting_names()
    assert all(isinstance(value, str) for value in config.values())


def test_secrets_reach_the_pod_as_files_not_environment_variables() -> None:
    """The Secret is a read-only volume at the ConfigMap's BOT_SECRETS_DIR, readable by the
    pod's group only; nothing takes a Secret into the environment, where a variable would
    win over the file and show in `kubectl describe`-style dumps."""
    container, spec = bot_container(), pod_spec()
    assert "secretRef" not in str(container.get("envFrom"))
    assert "secretKeyRef" not in str(container.get("env"))
    (volume,) = [v for v in spec["volumes"] if "secret" in v]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == k8s("configmap.yaml")["data"]["BOT_SECRETS_DIR"]
    assert mount["readOnly"] is True
    assert volume["secret"]["defaultMode"] == 0o440
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
    assert not spec["automountServiceAccountToken"]


def test_the_bot_reads_its_secrets_as_the_pod_mounts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendered Secret's keys written as the kubelet writes them (a file per key under
    BOT_SECRETS_DIR, behind its ..data symlinks), the ConfigMap as the environment: the bot
    has every secret, with the operator's value and no trailing newline."""
    objects = kustomize(K8S)
    (secret,) = [obj for obj in objects if obj["kind"] == "Secret"]
    (config,) = [obj for obj in objects if obj["kind"] == "ConfigMap"]
    mounted = tmp_path / "migrate-bot"
    (mounted / "..2026_01_01").mkdir(parents=True)
    (mounted / "..data").symlink_to("..2026_01_01")
    for key, value in secret["data"].items():
        (mounted / "..data" / key).write_bytes(base64.b64decode(value))
        (mounted / key).symlink_to(f"..data/{key}")
    for name in setting_names() | {"CREDENTIALS_DIRECTORY"}:
        monkeypatch.delenv(name, raising=False)
    for key, value in {**config["data"], "BOT_SECRETS_DIR": str(mounted)}.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    settings.require(*generated_keys())
    for key in generated_keys():
        assert getattr(settings, key.lower()).get_secret_value() == f"test-{key}"
