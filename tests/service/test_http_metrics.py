from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from featurestore.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from service.app import routes
from service.http_metrics import KNOWN_METHODS, OTHER_METHOD, UNMATCHED
from tests.service.conftest import API, service_of


def requests_total(client: TestClient, route: str, method: str, status_class: str) -> float | None:
    registry = service_of(client).instruments.registry
    labels = {"route": route, "method": method, "status_class": status_class}
    return registry.get_sample_value(HTTP_REQUESTS.name, labels)


def test_requests_are_counted_by_route_template_method_and_status_class(duckdb_client: TestClient) -> None:
    for _ in range(3):
        duckdb_client.get(f"{API}/health/live")
    duckdb_client.get(f"{API}/no/such/path")
    duckdb_client.delete(f"{API}/slo")
    duckdb_client.post(f"{API}/test/load", content=b"{not json")

    assert requests_total(duckdb_client, f"{API}/health/live", "GET", "2xx") == 3
    assert requests_total(duckdb_client, UNMATCHED, "GET", "4xx") == 1
    assert requests_total(duckdb_client, f"{API}/slo", "DELETE", "4xx") == 1  # 405 keeps its route
    assert requests_total(duckdb_client, f"{API}/test/load", "POST", "4xx") == 1
    registry = service_of(duckdb_client).instruments.registry
    duration_count = registry.get_sample_value(
        f"{HTTP_REQUEST_DURATION.name}_count", {"route": f"{API}/health/live", "method": "GET"}
    )
    assert duration_count == 3


def test_labels_stay_bounded_whatever_the_paths_and_methods(duckdb_client: TestClient) -> None:
    for index in range(20):
        duckdb_client.get(f"{API}/health/live/{index}")
        duckdb_client.get(f"/random-{index}?x={index}")
        duckdb_client.request(f"BREW{index}", f"{API}/health")
    scrape = duckdb_client.get(f"{API}/metrics").text
    templates = {str(getattr(route, "path", "")) for route in routes()} | {UNMATCHED}
    seen_routes, seen_methods = set(), set()
    for family in text_string_to_metric_families(scrape):
        if family.name == HTTP_REQUESTS.name.removesuffix("_total"):
            for sample in family.samples:
                seen_routes.add(sample.labels["route"])
                seen_methods.add(sample.labels["method"])
    assert seen_routes <= templates
    assert seen_methods <= KNOWN_METHODS | {OTHER_METHOD}
    assert OTHER_METHOD in seen_methods


def test_the_metrics_endpoint_counts_its_own_scrapes(duckdb_client: TestClient) -> None:
    duckdb_client.get(f"{API}/metrics")
    duckdb_client.get(f"{API}/metrics")
    assert requests_total(duckdb_client, f"{API}/metrics", "GET", "2xx") == 2
