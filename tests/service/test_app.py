from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from featurestore.metrics import COMPONENT_DUCKDB, COMPONENT_METRICS, COMPONENT_POSTGRESQL, HEALTH_STATUS
from service.app import create_app
from slos.loader import load_specs
from tests.service.conftest import API, LOOPBACK, scripted_app, service_of


def test_every_endpoint_answers_with_the_guides_shapes(client: TestClient) -> None:
    configured = service_of(client).store_settings.pg_dsn is not None

    health = client.get(f"{API}/health")
    assert health.status_code == 200
    body = health.json()
    assert set(body) == {"timestamp", "overall_status", "components"}
    assert body["overall_status"] == "healthy"
    assert set(body["components"]) == {"postgresql_manifest", "duckdb_fallback", "metrics"}
    postgresql = body["components"]["postgresql_manifest"]
    # A DuckDB-only install does not use PostgreSQL: not a fault, and not a database checked and found healthy.
    assert postgresql["status"] == ("healthy" if configured else "not_configured")
    assert postgresql["details"]["configured"] is configured
    assert postgresql["details"]["connection"] is configured
    if configured:
        assert set(postgresql["details"]["pool_stats"]) >= {"total", "active"}
        assert isinstance(postgresql["details"]["lock_stats"]["total_advisory_locks"], int)

    ready = client.get(f"{API}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert client.get(f"{API}/health/live").json()["status"] == "alive"

    slo = client.get(f"{API}/slo").json()
    assert set(slo["slos"]) == {item.name for item in load_specs().slos}

    performance = client.get(f"{API}/performance").json()
    assert set(performance["backends"]) == {"postgresql", "duckdb"}
    assert performance["backend_in_use"] == ("postgresql" if configured else "duckdb")

    scrape = client.get(f"{API}/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    assert "featurestore_http_requests_total" in scrape.text

    assert client.get(f"{API}/test/load").json() == {"status": "idle", "id": None, "result": None, "error": None}


def test_the_health_gauge_follows_the_checks_and_has_no_postgresql_series_without_postgresql(
    client: TestClient,
) -> None:
    registry = service_of(client).instruments.registry
    configured = service_of(client).store_settings.pg_dsn is not None
    client.get(f"{API}/health")

    def gauge(component: str) -> float | None:
        return registry.get_sample_value(HEALTH_STATUS.name, {"component": component})

    assert gauge(COMPONENT_DUCKDB) == 1.0
    assert gauge(COMPONENT_METRICS) == 1.0
    assert gauge(COMPONENT_POSTGRESQL) == (1.0 if configured else None)


def test_the_scrape_is_the_apps_own_registry_in_prometheus_text_format(duckdb_client: TestClient) -> None:
    duckdb_client.get(f"{API}/health")
    families = {family.name for family in text_string_to_metric_families(duckdb_client.get(f"{API}/metrics").text)}
    assert {"featurestore_http_requests", "featurestore_health_check_status", "manifest_insert_latency_ms"} <= families
    # The global registry's process_* and python_* collectors are not ours.
    assert not any(name.startswith(("process_", "python_")) for name in families)


def test_create_app_reads_the_environment_when_called_not_when_imported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERVICE_SLO_WINDOW_S", "42")
    monkeypatch.setenv("FEATURESTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FEATURESTORE_PG_DSN", raising=False)
    monkeypatch.delenv("SERVICE_ADMIN_TOKEN", raising=False)
    with TestClient(create_app(), client=LOOPBACK) as client:
        assert client.get(f"{API}/slo").json()["window_seconds"] == 42.0
        assert service_of(client).store.settings.resolved_cache_dir() == (tmp_path / "cache").resolve()


def test_the_lifespan_closes_the_store_it_opened(tmp_path: Path) -> None:
    app, store = scripted_app(tmp_path)
    with TestClient(app, client=LOOPBACK):
        assert not store().closed
    assert store().closed


def test_requests_outside_the_lifespan_get_a_json_503(tmp_path: Path) -> None:
    app, _ = scripted_app(tmp_path)
    client = TestClient(app, client=LOOPBACK)  # not entered: no lifespan, no store
    for path in ("health", "slo", "performance", "metrics"):
        response = client.get(f"{API}/{path}")
        assert response.status_code == 503
        assert "starting" in response.json()["error"]
    assert client.get(f"{API}/health/live").json()["status"] == "alive"
