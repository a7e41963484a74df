"""GET / and GET /api/v1/monitoring list every endpoint; /metrics serves the exposition itself; docs/service.md lists
every endpoint too."""

from __future__ import annotations

from starlette.routing import Route
from starlette.testclient import TestClient

from featurestore import conventions
from featurestore.conventions import METRICS_PATH
from service.app import routes
from service.index import ENDPOINTS
from tests.conftest import REPO
from tests.service.conftest import API


def test_the_root_and_the_api_root_list_every_endpoint_with_the_backend(duckdb_client: TestClient) -> None:
    for path in ("/", API):
        response = duckdb_client.get(path)
        assert response.status_code == 200, path
        body = response.json()
        assert body["service"] == "featurestore-monitoring"
        assert body["version"] not in ("", "unknown")
        assert body["backend"] == "duckdb"
        assert body["metrics_path"] == METRICS_PATH
        listed = {(line["method"], line["path"]) for line in body["endpoints"]}
        assert (("GET", f"{API}/health")) in listed
        assert ("POST", f"{API}/test/load") in listed
        assert all(line["summary"] for line in body["endpoints"])


def test_every_route_of_the_app_has_a_line_in_the_index() -> None:
    served = {(method, route.path) for route in routes() if isinstance(route, Route) for method in route.methods or ()}
    served -= {(method, path) for method, path in served if method == "HEAD"}
    assert served == set(ENDPOINTS)


def test_every_path_of_the_conventions_is_a_route_of_the_app_and_every_route_but_the_root_is_one_of_them() -> None:
    paths = {value for name, value in vars(conventions).items() if name.endswith(("_PATH", "_PREFIX"))}
    served = {route.path for route in routes() if isinstance(route, Route)}
    assert served - {"/"} == paths


def test_a_browser_gets_the_index_as_a_page_of_links(duckdb_client: TestClient) -> None:
    page = duckdb_client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    assert f'<a href="{METRICS_PATH}">' in page.text
    assert f'<a href="{API}/slo">' in page.text


def test_metrics_at_the_root_is_the_exposition_itself_without_a_redirect(duckdb_client: TestClient) -> None:
    response = duckdb_client.get("/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE manifest_insert_latency_ms histogram" in response.text
    assert "# TYPE manifest_insert_latency_ms histogram" in duckdb_client.get(f"{METRICS_PATH}").text


def test_metrics_with_a_trailing_slash_still_reaches_the_exposition(duckdb_client: TestClient) -> None:
    for path in ("/metrics/", f"{METRICS_PATH}/"):
        assert "# TYPE manifest_insert_latency_ms histogram" in duckdb_client.get(path).text, path


def test_the_service_page_lists_every_endpoint() -> None:
    text = (REPO / "docs" / "service.md").read_text(encoding="utf-8")
    rows = "\n".join(line for line in text.splitlines() if line.startswith("| `"))  # the endpoints table
    for method, path in ENDPOINTS:
        assert f"`{method} {path}`" in rows, f"docs/service.md's table does not list {method} {path}"
