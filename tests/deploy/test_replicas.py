"""deploy/kubernetes-replicas/: the overlay that runs replicas on PostgreSQL, rendered in
Python (`kit.kustomize`) so no kubectl is needed; the render is compared with
`kubectl kustomize` when the machine has kubectl, and validated against the Kubernetes
schemas when `kubernetes-validate` is installed (each skipped with the reason otherwise)."""

from __future__ import annotations

import base64
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.settings import Settings
from tests.deploy.kit import (
    BOT_PORT,
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
    """The base's objects but the PVC, plus a PodDisruptionBudget (the database password
    joins the base's Secret)."""
    base = {object_id(obj) for obj in kustomize(K8S)}
    ids = [object_id(obj) for obj in rendered()]
    assert len(ids) == len(set(ids))
    pvcs = {(kind, name) for kind, name in base if kind == "PersistentVolumeClaim"}
    assert pvcs and not pvcs & set(ids)
    assert set(ids) - base == {("PodDisruptionBudget", "migrate-bot")}
    assert base - set(ids) == pvcs


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_python_render_matches_kubectl_kustomize(tmp_path: Path) -> None:
    """`kubectl kustomize`, once the operator wrote the secret files, renders exactly what
    the tests check (the generated Secret's hash suffix aside), offline; the merged Secret
    gets a name of its own, so adding the password rolls the pods."""
    _, replicas = filled_kit(tmp_path)
    theirs, hashed = kubectl_kustomize(replicas)
    assert sorted(theirs, key=object_id) == sorted(rendered(), key=object_id)
    _, base_hashed = kubectl_kustomize(tmp_path / K8S.name)
    assert hashed["migrate-bot-secrets"] != base_hashed["migrate-bot-secrets"]


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


def test_overlay_takes_the_database_password_from_the_secret() -> None:
    """The PostgreSQL URL, without a password, replaces the base's SQLite URL in the
    ConfigMap; the password is one more key of the generated Secret (so one more file in
    BOT_SECRETS_DIR); nothing comes from a Secret into the environment."""
    config = named("ConfigMap", bot_container()["envFrom"][0]["configMapRef"]["name"])["data"]
    url = sa.make_url(config["BOT_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg" and url.password is None
    assert "sqlite" in k8s("configmap.yaml")["data"]["BOT_DATABASE_URL"]  # the base keeps it
    (volume,) = [v for v in deployment()["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    secret = named("Secret", volume["secret"]["secretName"])["data"]
    assert set(secret) <= setting_names()
    assert "BOT_DATABASE_PASSWORD" in secret
    assert set(the("Secret")["data"]) - {"BOT_DATABASE_PASSWORD"} == set(
        named("Secret", "migrate-bot-secrets")["data"]
    ) - {"BOT_DATABASE_PASSWORD"}
    assert "env" not in bot_container() and len(bot_container()["envFrom"]) == 1


def test_a_replica_connects_with_the_password_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Secret's keys as files, the ConfigMap as the environment: the URL the bot opens
    is the ConfigMap's with the operator's password in it."""
    config = the("ConfigMap")["data"]
    mounted = tmp_path / "migrate-bot"
    mounted.mkdir()
    for key, value in the("Secret")["data"].items():
        (mounted / key).write_bytes(base64.b64decode(value))
    for name in setting_names() | {"CREDENTIALS_DIRECTORY"}:
        monkeypatch.delenv(name, raising=False)
    for key, value in {**config, "BOT_SECRETS_DIR": str(mounted)}.items():
        monkeypatch.setenv(key, value)
    url = sa.make_url(Settings(_env_file=None).bot_database_url)
    assert url.password == "test-BOT_DATABASE_PASSWORD"
    given = sa.make_url(config["BOT_DATABASE_URL"])
    parts = ("drivername", "username", "host", "port", "database")
    assert [getattr(url, part) for part in parts] == [getattr(given, part) for part in parts]


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
