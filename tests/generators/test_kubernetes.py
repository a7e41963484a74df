"""The Kubernetes resources agree with each other and with prometheus.yml."""

from __future__ import annotations

import tomllib
from typing import Any

import yaml

from generators.__main__ import DEFAULT_OUT
from tests.conftest import REPO

K8S = DEFAULT_OUT / "kubernetes"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((K8S / name).read_text())
    assert isinstance(data, dict)
    return data


def test_the_service_monitor_scrapes_what_prometheus_yml_scrapes() -> None:
    (job,) = yaml.safe_load((DEFAULT_OUT / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    (endpoint,) = load("servicemonitor.yaml")["spec"]["endpoints"]
    assert (endpoint["path"], endpoint["interval"]) == (job["metrics_path"], job["scrape_interval"])
    assert (job["job_name"], job["metrics_path"], job["scrape_interval"]) == (
        "featurestore",
        "/api/v1/monitoring/metrics",
        "30s",
    )


def test_service_monitor_service_and_deployment_agree_on_port_name_and_labels() -> None:
    monitor, service, deployment = load("servicemonitor.yaml"), load("service.yaml"), load("deployment.yaml")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "featurestore"  # job="featurestore"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    (service_port,) = service["spec"]["ports"]
    assert monitor["spec"]["endpoints"][0]["port"] == service_port["name"] == port["name"] == "http"
    assert service_port["targetPort"] == "http" and port["containerPort"] == service_port["port"] == 8000


def test_the_deployment_runs_the_service_with_probes_and_requests() -> None:
    (container,) = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"featurestore-monitoring:{VERSION}"
    assert container["command"] == ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/api/v1/monitoring/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/api/v1/monitoring/health/ready", "port": "http"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}


def test_the_prometheus_rule_carries_exactly_the_rendered_rule_groups() -> None:
    rule = load("prometheusrule-featurestore.yaml")
    groups = yaml.safe_load((DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml").read_text())
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["spec"] == groups
