"""The local overlay changes only the documented local differences of rendered/ configs."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack.overlay import (
    AlertmanagerOverlay,
    PrometheusOverlay,
    alertmanager_config,
    dump_yaml,
    load_yaml,
    prometheus_config,
)
from tests.conftest import REPO, require_tool

RENDERED = REPO / "rendered"

PROMETHEUS_RENDERED: dict[str, Any] = {
    "global": {"scrape_interval": "30s", "evaluation_interval": "30s", "external_labels": {"team": "ml-platform"}},
    "rule_files": ["rules/*.yml"],
    "alerting": {"alertmanagers": [{"kubernetes_sd_configs": [{"role": "pod"}]}]},
    "scrape_configs": [
        {
            "job_name": "featurestore",
            "metrics_path": "/api/v1/monitoring/metrics",
            "scrape_interval": "30s",
            "kubernetes_sd_configs": [{"role": "endpoints"}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_service_name"], "regex": "featurestore", "action": "keep"},
                {"target_label": "team", "replacement": "ml-platform"},
            ],
        }
    ],
}
OVERLAY = PrometheusOverlay(
    service_address="127.0.0.1:18000",
    alertmanager_address="127.0.0.1:19093",
    rule_dir=Path("/srv/rendered/prometheus"),
    scrape_interval="1s",
    evaluation_interval="1s",
)


def test_the_prometheus_overlay_points_every_job_at_the_local_service_and_keeps_its_name_and_path() -> None:
    config = prometheus_config(PROMETHEUS_RENDERED, OVERLAY)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "featurestore"
    assert job["metrics_path"] == "/api/v1/monitoring/metrics"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:18000"]}]
    assert "kubernetes_sd_configs" not in job
    # A rule reading Kubernetes metadata would drop the static target; a plain label rule stays.
    assert job["relabel_configs"] == [{"target_label": "team", "replacement": "ml-platform"}]


def test_the_prometheus_overlay_makes_rule_files_absolute_and_targets_the_local_alertmanager() -> None:
    config = prometheus_config(PROMETHEUS_RENDERED, OVERLAY)
    assert config["rule_files"] == ["/srv/rendered/prometheus/rules/*.yml"]
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["127.0.0.1:19093"]}]}]


def test_the_prometheus_overlay_sets_intervals_only_when_asked_and_leaves_the_input_alone() -> None:
    original = copy.deepcopy(PROMETHEUS_RENDERED)
    fast = prometheus_config(PROMETHEUS_RENDERED, OVERLAY)
    as_rendered = prometheus_config(
        PROMETHEUS_RENDERED, PrometheusOverlay("127.0.0.1:1", "127.0.0.1:2", Path("/r"), None, None)
    )
    assert PROMETHEUS_RENDERED == original
    assert fast["global"]["scrape_interval"] == fast["scrape_configs"][0]["scrape_interval"] == "1s"
    assert fast["global"]["evaluation_interval"] == "1s"
    assert as_rendered["global"]["scrape_interval"] == as_rendered["scrape_configs"][0]["scrape_interval"] == "30s"
    assert fast["global"]["external_labels"] == {"team": "ml-platform"}


def test_a_prometheus_config_without_scrape_jobs_is_refused() -> None:
    with pytest.raises(ValueError, match="no scrape_configs"):
        prometheus_config({"global": {}}, OVERLAY)


ALERTMANAGER_RENDERED: dict[str, Any] = {
    "global": {"resolve_timeout": "5m", "slack_api_url": "https://hooks.slack.com/services/X"},
    "route": {
        "receiver": "ticket",
        "group_by": ["alertname", "slo"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [{"matchers": ['severity="critical"'], "receiver": "page", "group_wait": "10s"}],
    },
    "receivers": [
        {"name": "page", "pagerduty_configs": [{"routing_key": "<secret>"}]},
        {"name": "ticket", "slack_configs": [{"channel": "#featurestore"}]},
    ],
    "inhibit_rules": [{"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"']}],
}
AM_OVERLAY = AlertmanagerOverlay(
    receiver_url="http://127.0.0.1:15001", config_dir=Path("/srv/rendered/alertmanager"), group_wait="1s",
    group_interval="1s",
)  # fmt: skip


def test_the_alertmanager_overlay_sends_every_receiver_to_the_local_webhook_under_its_own_name() -> None:
    config = alertmanager_config(ALERTMANAGER_RENDERED, AM_OVERLAY)
    assert config["receivers"] == [
        {"name": "page", "webhook_configs": [{"url": "http://127.0.0.1:15001/page", "send_resolved": True}]},
        {"name": "ticket", "webhook_configs": [{"url": "http://127.0.0.1:15001/ticket", "send_resolved": True}]},
    ]
    assert config["global"] == {"resolve_timeout": "5m"}


def test_the_alertmanager_overlay_keeps_routes_and_inhibitions_and_shortens_only_the_timings_it_is_given() -> None:
    config = alertmanager_config(ALERTMANAGER_RENDERED, AM_OVERLAY)
    route = config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("1s", "1s", "4h")
    assert route["routes"] == [{"matchers": ['severity="critical"'], "receiver": "page", "group_wait": "1s"}]
    assert route["group_by"] == ["alertname", "slo"]
    assert config["inhibit_rules"] == ALERTMANAGER_RENDERED["inhibit_rules"]


def _check(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool(tool), *args], capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.promtool
def test_the_overlay_of_the_rendered_prometheus_config_passes_promtool_with_every_rule_file(tmp_path: Path) -> None:
    rendered = RENDERED / "prometheus" / "prometheus.yml"
    if not rendered.is_file():
        pytest.fail(f"{rendered} is missing: the generators must render it (python -m generators)")
    overlay = PrometheusOverlay("127.0.0.1:18000", "127.0.0.1:19093", rendered.parent, "1s", "1s")
    path = tmp_path / "prometheus.yml"
    dump_yaml(prometheus_config(load_yaml(rendered), overlay), path, rendered)
    result = _check("promtool", "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = sorted((RENDERED / "prometheus" / "rules").glob("*.yml"))
    assert rule_files
    assert all(f"{rule_file}" in result.stdout for rule_file in rule_files), result.stdout


@pytest.mark.promtool
def test_the_overlay_of_the_rendered_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    rendered = RENDERED / "alertmanager" / "alertmanager.yml"
    if not rendered.is_file():
        pytest.fail(f"{rendered} is missing: the generators must render it (python -m generators)")
    path = tmp_path / "alertmanager.yml"
    overlay = AlertmanagerOverlay("http://127.0.0.1:15001", rendered.parent, "1s", "1s")
    dump_yaml(alertmanager_config(load_yaml(rendered), overlay), path, rendered)
    result = _check("amtool", "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
