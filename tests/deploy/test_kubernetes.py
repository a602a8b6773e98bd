"""deploy/kubernetes/: the objects' structure always; the Kubernetes schemas when
`kubernetes-validate` is installed, and `kubectl kustomize` when the machine has kubectl
(each skipped with the reason otherwise)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from bot.settings import Settings
from tests.deploy.kit import (
    BOT_PORT,
    K8S,
    k8s,
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
    """Every manifest passes kubernetes-validate's bundled schemas, strictly, with no network."""
    validate = offline_validate(monkeypatch)
    for name in k8s("kustomization.yaml")["resources"]:
        validate(k8s(name))


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_kustomize_renders_the_kit() -> None:
    """`kubectl kustomize` renders the seven objects with the retagged image, offline."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
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


def test_kubernetes_objects_have_the_expected_kinds() -> None:
    """Each file holds one object of the kind and apiVersion its name says."""
    expected = {
        "deployment.yaml": ("apps/v1", "Deployment"),
        "service.yaml": ("v1", "Service"),
        "configmap.yaml": ("v1", "ConfigMap"),
        "secret.yaml": ("v1", "Secret"),
        "pvc.yaml": ("v1", "PersistentVolumeClaim"),
        "servicemonitor.yaml": ("monitoring.coreos.com/v1", "ServiceMonitor"),
        "prometheusrule.yaml": ("monitoring.coreos.com/v1", "PrometheusRule"),
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
