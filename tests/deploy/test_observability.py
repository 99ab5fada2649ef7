"""Alert rules, Prometheus configs and the Grafana dashboard: promtool checks and unit-tests the rules,
the Kubernetes PrometheusRule is rendered from the same file, and every query names a metric the services
define. (That the running services really export series of them: test_live_metrics.py exercises and
scrapes them; test_deploy_runs.py scrapes the services started from the rendered deploy files.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import (
    OBSERVABILITY,
    ROOT,
    dashboard_queries,
    exported_metric_names,
    promql_metric_names,
    promtool,
    rule_groups,
    run_tool,
)

pytestmark = pytest.mark.unit

# Metrics that come from Prometheus itself or kube-state-metrics, not from the services.
EXTERNAL_METRICS = {"up", "kube_job_status_failed"}
REQUIRED_ALERTS = {"KsbbConsumerLagGrowing", "KsbbDeadLettersPresent", "KsbbOutboxBacklogStuck",
                   "KsbbWebhookEndpointFailing", "KsbbWebhookQueueStale", "KsbbJobNotSucceeding", "KsbbHttp5xxRate",
                   "KsbbReadinessFlapping", "KsbbServiceDown", "KsbbKubernetesJobFailed"}


def test_promtool_checks_the_rules() -> None:
    result = run_tool(promtool(), "check", "rules", str(OBSERVABILITY / "rules" / "ksbb-alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_every_alert() -> None:
    result = run_tool(promtool(), "test", "rules", "tests/ksbb-alerts.test.yml", cwd=OBSERVABILITY)
    assert result.returncode == 0, result.stdout + result.stderr
    tested = yaml.safe_load((OBSERVABILITY / "tests" / "ksbb-alerts.test.yml").read_text(encoding="utf-8"))
    names = {case["alertname"] for test in tested["tests"] for case in test.get("alert_rule_test", [])}
    alerts = {r["alert"] for g in rule_groups() for r in g["rules"] if "alert" in r}
    assert alerts == REQUIRED_ALERTS
    assert names == alerts, f"alerts without a promtool test: {alerts - names}"


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" in rule:
                assert f"### {rule['alert']}" in runbook, f"docs/operations.md lacks {rule['alert']}"
                assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"


@pytest.mark.parametrize("config", ["local/prometheus.yml", "compose/prometheus.yml"])
def test_prometheus_configs_are_valid_and_load_the_rules(config: str, tmp_path: Path) -> None:
    text = (OBSERVABILITY / config).read_text(encoding="utf-8")
    if config.startswith("compose/"):  # rules are mounted at /etc/prometheus/rules in the container
        shutil.copytree(OBSERVABILITY / "rules", tmp_path / "rules")
        text = text.replace("/etc/prometheus/rules", str(tmp_path / "rules"))
        target = tmp_path / "prometheus.yml"
        target.write_text(text, encoding="utf-8")
    else:
        target = OBSERVABILITY / config
    result = run_tool(promtool(), "check", "config", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    jobs = {job["job_name"] for job in yaml.safe_load(text)["scrape_configs"]}
    assert jobs == {"ksbb-registry", "ksbb-pledges", "ksbb-notifier", "ksbb-publisher"}


def test_prometheus_rule_resource_is_rendered_from_the_rules_file() -> None:
    result = run_tool("python", str(OBSERVABILITY / "render_prometheusrule.py"), "--check")
    assert result.returncode == 0, result.stderr
    resource = yaml.safe_load((OBSERVABILITY / "prometheusrule.yaml").read_text(encoding="utf-8"))
    assert resource["spec"]["groups"] == rule_groups()


def _defined_metric_names() -> set[str]:
    """Names of the metrics the kit and services register (what their /metrics pages can show)."""
    import importlib

    from prometheus_client import REGISTRY, generate_latest

    importlib.import_module("ksbb_kit.metrics")
    for service in ("registry", "pledges", "notifier", "publisher"):
        importlib.import_module(f"ksbb_{service}.bootstrap")
    return exported_metric_names(generate_latest(REGISTRY).decode())


def test_rules_and_dashboard_name_only_defined_metrics() -> None:
    defined = _defined_metric_names()
    recorded = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}
    for group in rule_groups():
        for rule in group["rules"]:
            unknown = promql_metric_names(rule["expr"]) - defined - recorded - EXTERNAL_METRICS
            assert not unknown, f"{rule.get('alert') or rule.get('record')} reads unknown metrics {unknown}"
    for query in dashboard_queries():
        names = promql_metric_names(query)
        assert names, f"no metric in {query}"
        assert not names - defined - {"up"}, f"dashboard query reads unknown metrics: {query}"


def test_metric_name_extraction() -> None:
    expr = ('histogram_quantile(0.95, sum by (job, le) (rate(ksbb_http_request_seconds_bucket{job=~"$job"}[5m])))'
            ' / on (job) group_left max without (instance) (up{job="x"} offset 5m) and ksbb:recorded:rule')
    assert promql_metric_names(expr) == {"ksbb_http_request_seconds_bucket", "up", "ksbb:recorded:rule"}
    assert promql_metric_names("label_values(ksbb_http_requests_total, job)") == {"ksbb_http_requests_total"}
