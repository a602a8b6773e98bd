"""The monitoring kit: deploy/prometheus/rules.yml (checked and unit-tested with promtool),
deploy/grafana/migrate-bot.json, and the Prometheus Operator objects in deploy/kubernetes/.

Every metric the rules and the dashboard query must be one a running bot exposes: a rule on
a misspelt name is valid PromQL that never fires, a panel on one stays empty.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.kit import DEPLOY, K8S, ROOT, k8s, kustomize, load, offline_validate
from tests.support.pool import demo_pool
from tests.test_metrics import socket_bot

RULES = DEPLOY / "prometheus" / "rules.yml"
RULE_TESTS = Path(__file__).parent / "promtool" / "rules_test.yml"
DASHBOARD = DEPLOY / "grafana" / "migrate-bot.json"
JOB = "migrate-bot"  # the scrape job the rules select (`up{job="migrate-bot"}`)
SYNTHETIC = {"up"}  # series Prometheus itself writes for each target
GRID_WIDTH = 24  # Grafana's dashboard grid has 24 columns
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "unknown": ("",),
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus; .ci/run does)")
    return found


def alerts() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels() -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in dashboard()["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def panel_exprs() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: label values, matchers, ranges and
    grouping clauses removed, then every identifier that is not a function or keyword."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for found in re.finditer(r"(?<![\w:.$])[A-Za-z_:][\w:]*", expr):
        if not expr[found.end() :].lstrip().startswith("(") and found[0] not in PROMQL_WORDS:
            names.add(found[0])
    return names


def exposed_series(exposition: str) -> set[str]:
    """Every series name an exposition offers, those of families with no sample yet too
    (a labelled counter before its first increment)."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in SERIES_SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What a real bot in Socket Mode serves on /metrics (Socket Mode: every gauge shows)."""
    with (
        contextlib.contextmanager(demo_pool)() as pool,
        socket_bot(pool, tmp_path_factory.mktemp("bot")) as (service, _),
        urllib.request.urlopen(f"{service.web.url}/metrics", timeout=5) as answer,
    ):
        return exposed_series(answer.read().decode())


def test_the_metric_name_reader_finds_every_name_and_no_function_label_or_keyword() -> None:
    """A misspelt metric in a PromQL expression is found, functions and labels are not."""
    expr = (
        'sum by (state) (rate(migrate_bot_requestz{state="a b"}[5m])) > 0.5 and on (pool) '
        "histogram_quantile(0.9, sum without (le) (increase(x_bucket[$__rate_interval]))) "
        "or up == bool 1 unless absent(process_start_time_seconds)"
    )
    assert metric_names(expr) == {
        "migrate_bot_requestz",
        "x_bucket",
        "up",
        "process_start_time_seconds",
    }


def test_rules_and_dashboard_query_only_metrics_a_running_bot_exposes(exposed: set[str]) -> None:
    """Every metric a rule or a panel reads is on a real bot's /metrics (or is `up`)."""
    assert {"migrate_bot_requests", "process_resident_memory_bytes"} <= exposed
    for where, exprs in (
        ("rules.yml", [a["expr"] for a in alerts()]),
        (DASHBOARD.name, panel_exprs()),
    ):
        for expr in exprs:
            unknown = metric_names(expr) - exposed - SYNTHETIC
            assert not unknown, (
                f"{where}: {expr!r} reads {sorted(unknown)}, which the bot does not expose"
            )


def test_dashboard_shows_every_metric_of_the_bot(exposed: set[str]) -> None:
    """Each migrate_bot_* family has a panel, so a new metric is not left off the board."""
    read = {name for expr in panel_exprs() for name in metric_names(expr)}
    families = {
        name.removesuffix("_total").removesuffix("_bucket")
        for name in exposed
        if name.startswith("migrate_bot_") and not name.endswith(("_created", "_sum", "_count"))
    }
    shown = {name.removesuffix("_total").removesuffix("_bucket") for name in read}
    assert families - shown == set()


def test_dashboard_is_a_grafana_dashboard_on_a_datasource_variable() -> None:
    """Valid JSON; unique panel ids; each panel on the grid without overlapping another; every
    query on the `${datasource}` variable, which picks a Prometheus data source."""
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    taken: dict[tuple[int, int], str] = {}
    for panel in panels():
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid), panel["title"]
        assert grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        for cell in (
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        ):
            assert cell not in taken, f"{panel['title']!r} overlaps {taken[cell]!r}"
            taken[cell] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
            assert source == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_every_alert_has_a_severity_summary_runbook_and_a_unit_test() -> None:
    """Each alert says how bad it is, what happened and what to do, and promtool sees it
    fire in rules_test.yml."""
    tests = load(RULE_TESTS)["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    names = [alert["alert"] for alert in alerts()]
    assert len(names) == len(set(names))
    for alert in alerts():
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert alert["annotations"]["summary"].strip(), alert["alert"]
        assert len(alert["annotations"]["runbook"]) > 40, alert["alert"]
        assert alert["alert"] in fired, (
            f"{alert['alert']} is never seen firing in {RULE_TESTS.name}"
        )
    assert f'up{{job="{JOB}"}}' in next(
        a["expr"] for a in alerts() if a["alert"] == "MigrateBotDown"
    )


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules`: valid PromQL, templates and durations."""
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules`: each alert fires, and stays quiet, on the series it should."""
    result = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheusrule_carries_the_rules_file() -> None:
    """The Operator's PrometheusRule holds exactly the groups of rules.yml."""
    assert k8s("prometheusrule.yaml")["spec"]["groups"] == load(RULES)["groups"]


def test_servicemonitor_scrapes_the_bot_service_as_the_job_the_rules_name() -> None:
    """It selects the rendered Service, on a port the Service has, at /metrics, and the job
    label it takes from the Service is the one the rules select."""
    objects = {(obj["kind"], obj["metadata"]["name"]): obj for obj in kustomize(K8S)}
    monitor = objects["ServiceMonitor", "migrate-bot"]["spec"]
    service = objects["Service", "migrate-bot"]
    labels = service["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    ports = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["endpoints"]:
        assert endpoint["port"] in ports
        assert endpoint.get("path", "/metrics") == "/metrics"
    assert labels[monitor["jobLabel"]] == JOB


def test_the_offline_validator_rejects_a_misspelt_operator_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Operator's kinds are checked too: a typo'd field fails instead of being dropped."""
    validate = offline_validate(monkeypatch)
    from jsonschema import ValidationError  # installed with kubernetes-validate

    monitor = k8s("servicemonitor.yaml")
    validate(monitor)
    typo = {**monitor, "spec": {**monitor["spec"], "endpoint": monitor["spec"]["endpoints"]}}
    with pytest.raises(ValidationError, match="endpoint"):
        validate(typo)
