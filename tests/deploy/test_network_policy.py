"""The NetworkPolicies and the PodDisruptionBudget of rendered/kubernetes/, read as a cluster would: which pod may
open which port of which workload. The load endpoint shares the service's one port with /metrics, so "only
Prometheus reaches the load endpoint" means "only Prometheus reaches that port"."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from starlette.routing import Route

from featurestore.conventions import LOAD_TEST_PATH, METRICS_PATH
from service.app import routes
from tests.conftest import REPO

KUBERNETES = REPO / "rendered" / "kubernetes"
PROMETHEUS = {"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"}  # what prometheus-operator labels
CURL = {"run": "curl"}  # any other pod of the cluster


def documents(kind: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        found.extend(d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == kind)
    return found


def workload(name: str) -> dict[str, Any]:
    (found,) = [d for kind in ("Deployment", "Job") for d in documents(kind) if d["metadata"]["name"] == name]
    return found


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # matchExpressions would need more than this reader
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


def admits(target: dict[str, Any], port: str, source: dict[str, str], *, same_namespace: bool) -> bool:
    """Whether some NetworkPolicy selecting `target`'s pods lets a pod labelled `source` open the named `port`
    (and, as in a cluster, whether no policy selects them at all)."""
    pod_labels = target["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in documents("NetworkPolicy") if selects(p["spec"]["podSelector"], pod_labels)]
    if not policies:
        return True
    for policy in policies:
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"].get("ingress", []):
            if not any(allowed["port"] == port for allowed in rule.get("ports", [])):
                continue
            for peer in rule.get("from", []):
                namespaces = "namespaceSelector" in peer and peer["namespaceSelector"] == {}
                if (same_namespace or namespaces) and selects(peer.get("podSelector", {}), source):
                    return True
    return False


def test_the_load_endpoint_and_metrics_share_the_services_one_port() -> None:
    paths = {route.path for route in routes() if isinstance(route, Route)}
    assert {LOAD_TEST_PATH, METRICS_PATH} <= paths
    (container,) = workload("featurestore-monitoring")["spec"]["template"]["spec"]["containers"]
    assert [port["name"] for port in container["ports"]] == ["http"]


@pytest.mark.parametrize("name", ["featurestore-monitoring", "featurestore-training"])
def test_prometheus_from_any_namespace_reaches_the_service_port_and_no_other_pod_does(name: str) -> None:
    target = workload(name)
    assert admits(target, "http", PROMETHEUS, same_namespace=False)
    assert not admits(target, "http", CURL, same_namespace=True)
    pooler = workload("featurestore-pgbouncer")["spec"]["template"]["metadata"]["labels"]
    training = workload("featurestore-training")["spec"]["template"]["metadata"]["labels"]
    assert not admits(target, "http", pooler, same_namespace=True)
    assert not admits(target, "http", training, same_namespace=True)


def test_the_pooler_admits_the_feature_stores_pods_to_postgresql_and_prometheus_to_the_exporter_only() -> None:
    pooler = workload("featurestore-pgbouncer")
    for client in ("featurestore-monitoring", "featurestore-training"):
        labels = workload(client)["spec"]["template"]["metadata"]["labels"]
        assert admits(pooler, "postgresql", labels, same_namespace=True)
        assert not admits(pooler, "postgresql", labels, same_namespace=False)
    assert admits(pooler, "metrics", PROMETHEUS, same_namespace=False)
    assert not admits(pooler, "postgresql", PROMETHEUS, same_namespace=False)
    assert not admits(pooler, "postgresql", CURL, same_namespace=True)
    assert not admits(pooler, "metrics", CURL, same_namespace=True)


def test_the_pooler_keeps_a_replica_through_a_voluntary_disruption() -> None:
    (budget,) = documents("PodDisruptionBudget")
    pooler = workload("featurestore-pgbouncer")
    assert selects(budget["spec"]["selector"], pooler["spec"]["template"]["metadata"]["labels"])
    assert 1 <= budget["spec"]["minAvailable"] < pooler["spec"]["replicas"]
