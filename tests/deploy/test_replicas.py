"""deploy/kubernetes-replicas/: the overlay that runs replicas on PostgreSQL, rendered in
Python (`kit.kustomize`) so no kubectl is needed; the render is compared with
`kubectl kustomize` when the machine has kubectl, and validated against the Kubernetes
schemas when `kubernetes-validate` is installed (each skipped with the reason otherwise)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from typing import Any

import pytest
import yaml

from tests.deploy.kit import (
    BOT_PORT,
    K8S,
    REPLICAS,
    documents,
    k8s,
    kustomize,
    load,
    object_id,
    offline_validate,
    setting_names,
)


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(REPLICAS))


def the(kind: str) -> dict[str, Any]:
    (obj,) = [obj for obj in rendered() if obj["kind"] == kind]
    return obj


def named(kind: str, name: str) -> dict[str, Any]:
    (obj,) = [obj for obj in rendered() if object_id(obj) == (kind, name)]
    return obj


def deployment() -> dict[str, Any]:
    return the("Deployment")


def bot_container() -> dict[str, Any]:
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    return container


def pod_labels() -> dict[str, str]:
    return deployment()["spec"]["template"]["metadata"]["labels"]


def test_overlay_builds_on_the_base_and_uses_each_of_its_files() -> None:
    """The overlay takes the whole base, and each file beside it is a resource or a patch."""
    overlay = load(REPLICAS / "kustomization.yaml")
    assert (REPLICAS / overlay["resources"][0]).resolve() == K8S
    used = set(overlay["resources"][1:]) | {patch["path"] for patch in overlay["patches"]}
    files = {p.name for p in REPLICAS.glob("*.yaml")} - {"kustomization.yaml"}
    assert used == files
    for name in files:
        assert len(documents(REPLICAS / name)) == 1, name


def test_overlay_renders_the_objects_of_a_replicated_bot() -> None:
    """The base's objects but the PVC, plus the database Secret and a PodDisruptionBudget."""
    base = {object_id(obj) for obj in kustomize(K8S)}
    ids = [object_id(obj) for obj in rendered()]
    assert len(ids) == len(set(ids))
    pvcs = {(kind, name) for kind, name in base if kind == "PersistentVolumeClaim"}
    assert pvcs and not pvcs & set(ids)
    assert set(ids) - base == {
        ("Secret", "migrate-bot-database"),
        ("PodDisruptionBudget", "migrate-bot"),
    }
    assert base - set(ids) == pvcs


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_python_render_matches_kubectl_kustomize() -> None:
    """`kubectl kustomize` renders exactly what the tests check, offline."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(REPLICAS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    theirs = sorted(yaml.safe_load_all(result.stdout), key=object_id)
    assert theirs == sorted(rendered(), key=object_id)


def test_overlay_objects_validate_against_the_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rendered object passes kubernetes-validate's bundled schemas, strictly, offline."""
    validate = offline_validate(monkeypatch)
    for obj in rendered():
        validate(obj)


def test_overlay_runs_two_replicas_with_a_rolling_update() -> None:
    """Two replicas; a rollout starts a new pod before it stops an old one, one at a time."""
    spec = deployment()["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def test_overlay_disruption_budget_keeps_a_replica() -> None:
    """The PDB selects the Deployment's pods and keeps one of them through a drain."""
    pdb = the("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in pdb["spec"]
    selector = pdb["spec"]["selector"]
    assert set(selector) == {"matchLabels"}
    assert selector["matchLabels"].items() <= pod_labels().items()
    assert selector["matchLabels"] == deployment()["spec"]["selector"]["matchLabels"]


def test_overlay_spreads_the_replicas_over_nodes() -> None:
    """A preferred anti-affinity on the host name: one node's loss leaves a replica."""
    anti = deployment()["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    match = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
    assert match.items() <= pod_labels().items()


def test_overlay_has_no_volume_for_a_database_file() -> None:
    """No PVC, no /data: the database is PostgreSQL and the root file system is read-only."""
    assert not [obj for obj in rendered() if obj["kind"] == "PersistentVolumeClaim"]
    volumes = deployment()["spec"]["template"]["spec"]["volumes"]
    assert not [v for v in volumes if "persistentVolumeClaim" in v]
    mounts = {m["mountPath"] for m in bot_container()["volumeMounts"]}
    assert "/data" not in mounts
    assert {m["name"] for m in bot_container()["volumeMounts"]} == {v["name"] for v in volumes}
    assert bot_container()["securityContext"]["readOnlyRootFilesystem"] is True


def test_overlay_reads_the_database_url_from_a_secret() -> None:
    """BOT_DATABASE_URL comes from a Secret key (required), is PostgreSQL, and has left the
    ConfigMap."""
    (env,) = [e for e in bot_container()["env"] if e["name"] == "BOT_DATABASE_URL"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert not ref.get("optional", False)
    secret = named("Secret", ref["name"])["stringData"]
    assert set(secret) <= setting_names()
    url = secret[ref["key"]]
    assert url.startswith("postgresql+psycopg://") and "REPLACE-ME" in url
    config = named("ConfigMap", bot_container()["envFrom"][0]["configMapRef"]["name"])
    assert "BOT_DATABASE_URL" not in config["data"]
    assert "BOT_DATABASE_URL" in k8s("configmap.yaml")["data"]  # the SQLite base keeps it


def test_overlay_keeps_the_probes_and_the_service() -> None:
    """Readiness on /readyz (200 on followers too), liveness on /healthz, the Service's
    selector on the pods (HTTP mode: it spreads Slack's requests over the replicas)."""
    container = bot_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (port,) = container["ports"]
    assert port["containerPort"] == BOT_PORT
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    assert the("Service")["spec"]["selector"].items() <= pod_labels().items()


def test_overlay_runs_the_image_built_with_the_postgresql_driver() -> None:
    """The overlay retags the base's image, and its header builds that tag with psycopg."""
    (base_image,) = k8s("kustomization.yaml")["images"]
    (image,) = load(REPLICAS / "kustomization.yaml")["images"]
    assert image["name"] == base_image["newName"]  # kustomize renames in the base first
    assert image["newTag"] != base_image["newTag"]
    reference = f"{base_image['newName']}:{image['newTag']}"
    assert bot_container()["image"] == reference
    header = (REPLICAS / "kustomization.yaml").read_text(encoding="utf-8")
    assert "--build-arg EXTRA_PACKAGES='psycopg[binary]'" in header
    assert f"-t {reference} ." in header
