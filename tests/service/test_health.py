from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from starlette.testclient import TestClient

from featurestore import FeatureStore
from featurestore.layout import MANIFEST_FILE
from featurestore.manifest.base import DEGRADED, HEALTHY, UNHEALTHY, ComponentHealth
from featurestore.metrics import COMPONENT_POSTGRESQL, HEALTH_STATUS
from featurestore.settings import FeatureStoreSettings
from service.app import create_app
from service.window import SampleRing
from tests.service.conftest import API, LOOPBACK, scripted_app, service_of, service_settings, store_settings
from tests.service.test_window import Clock


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_postgresql_down_with_a_working_fallback_is_degraded_and_still_ready(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"
    app = create_app(service_settings(), store_settings(tmp_path / "cache", dsn, connect_timeout_s=1))
    with TestClient(app, client=LOOPBACK) as client:
        body = client.get(f"{API}/health").json()
        postgresql = body["components"]["postgresql_manifest"]
        assert postgresql["status"] == UNHEALTHY
        assert postgresql["details"]["connection"] is False
        assert body["components"]["duckdb_fallback"]["status"] == HEALTHY
        assert body["overall_status"] == DEGRADED
        registry = service_of(client).instruments.registry
        assert registry.get_sample_value(HEALTH_STATUS.name, {"component": COMPONENT_POSTGRESQL}) == 0.0
        ready = client.get(f"{API}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["overall_status"] == DEGRADED


def test_an_exhausted_pool_the_store_reports_is_degraded_with_its_reason(tmp_path: Path) -> None:
    # The store decides what exhausted means (featurestore.manifest.postgres.pool_exhausted); the service reports it.
    app, store = scripted_app(tmp_path, pg_dsn="postgresql://postgres@127.0.0.1:5432/postgres", pool_max_size=2)
    with TestClient(app, client=LOOPBACK) as client:
        pool = {"total": 2, "active": 2, "waiting": 0}
        reason = "pool exhausted: 2 of 2 connections in use, 0 waiting"
        store().components["postgresql"] = ComponentHealth(
            DEGRADED, {"connection": True, "pool_stats": pool, "reason": reason}
        )
        body = client.get(f"{API}/health").json()
        postgresql = body["components"]["postgresql_manifest"]
        assert (postgresql["status"], postgresql["details"]["reason"]) == (DEGRADED, reason)
        assert postgresql["details"]["pool_stats"] == pool
        assert body["overall_status"] == DEGRADED
        pool = {"total": 2, "active": 1, "waiting": 0}
        store().components["postgresql"] = ComponentHealth(HEALTHY, {"connection": True, "pool_stats": pool})
        assert client.get(f"{API}/health").json()["overall_status"] == HEALTHY


def test_a_check_that_hangs_is_abandoned_and_reported_unhealthy(tmp_path: Path) -> None:
    app, store = scripted_app(tmp_path, health_check_timeout_s=0.2)
    with TestClient(app, client=LOOPBACK) as client:
        store().health_delay_s = 2.0
        body = client.get(f"{API}/health").json()
        duckdb = body["components"]["duckdb_fallback"]
        assert duckdb["status"] == UNHEALTHY
        assert "did not answer within 0.2 s" in duckdb["details"]["error"]
        assert body["overall_status"] == UNHEALTHY
        store().health_delay_s = 0.0


def test_readiness_is_503_with_the_reason_when_the_store_is_unhealthy(tmp_path: Path) -> None:
    app, store = scripted_app(tmp_path)
    with TestClient(app, client=LOOPBACK) as client:
        store().components["duckdb"] = ComponentHealth(UNHEALTHY, {"error": "disk full"})
        response = client.get(f"{API}/health/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["error"] == "not ready: duckdb_fallback is unhealthy: disk full"


def test_a_load_run_on_a_symbol_named_like_the_manifests_wal_leaves_the_manifest_usable(
    duckdb_client: TestClient, duckdb_settings: FeatureStoreSettings
) -> None:
    with FeatureStore.open(settings=duckdb_settings):
        pass  # the manifest exists, checkpointed: no WAL file until the next write
    for symbol in ("manifest.duckdb.wal", "manifest.duckdb", "TEST_CONTENTION"):
        run = duckdb_client.post(
            f"{API}/test/load", json={"workers": 1, "duration_seconds": 1, "think_ms": 20, "symbol": symbol}
        )
        assert run.status_code == 200, run.text
        assert run.json()["result"]["errors"] == 0, run.text
    assert duckdb_client.get(f"{API}/health/ready").status_code == 200
    with FeatureStore.open(settings=duckdb_settings) as store:
        assert {entry.symbol for entry in store.entries()} == {
            "manifest.duckdb.wal",
            "manifest.duckdb",
            "TEST_CONTENTION",
        }


@pytest.mark.parametrize("damage", ["wal is a folder", "manifest is not a database"])
def test_readiness_is_503_with_the_reason_when_the_duckdb_manifest_cannot_be_opened(
    duckdb_client: TestClient, duckdb_settings: FeatureStoreSettings, damage: str
) -> None:
    with FeatureStore.open(settings=duckdb_settings):
        pass
    assert duckdb_client.get(f"{API}/health/ready").status_code == 200
    manifest = duckdb_settings.resolved_cache_dir() / MANIFEST_FILE
    if damage == "wal is a folder":
        manifest.with_name(f"{MANIFEST_FILE}.wal").mkdir()
    else:
        manifest.write_bytes(b"not a DuckDB file, " * 512)
    response = duckdb_client.get(f"{API}/health/ready")
    assert response.status_code == 503, response.text
    assert "duckdb_fallback is unhealthy" in response.json()["error"] and str(manifest) in response.json()["error"]
    health = duckdb_client.get(f"{API}/health").json()
    assert health["components"]["duckdb_fallback"]["status"] == UNHEALTHY


def test_a_failing_health_check_is_reported_not_raised(tmp_path: Path) -> None:
    app, store = scripted_app(tmp_path)
    with TestClient(app, client=LOOPBACK) as client:

        def explode() -> None:
            raise OSError("manifest folder vanished")

        store().on_health = explode
        response = client.get(f"{API}/health")
        assert response.status_code == 200
        assert response.json()["components"]["duckdb_fallback"]["details"]["error"] == "manifest folder vanished"


def test_the_metrics_component_fails_when_the_registry_snapshots_stop(duckdb_client: TestClient) -> None:
    clock = Clock()
    checker = service_of(duckdb_client).health
    checker.ring = SampleRing(service_of(duckdb_client).instruments.registry, 300.0, clock=clock)
    checker.ring.record()
    assert duckdb_client.get(f"{API}/health").json()["components"]["metrics"]["status"] == HEALTHY
    clock.now += checker.snapshot_deadline_s + 1
    metrics = duckdb_client.get(f"{API}/health").json()["components"]["metrics"]
    assert metrics["status"] == UNHEALTHY
    assert metrics["details"]["error"].startswith("no registry snapshot for")


def test_liveness_never_asks_the_store(tmp_path: Path) -> None:
    app, store = scripted_app(tmp_path)
    with TestClient(app, client=LOOPBACK) as client:
        for _ in range(3):
            assert client.get(f"{API}/health/live").status_code == 200
        assert store().health_calls == 0


@pytest.fixture
def own_database_dsn(pg_dsn: str) -> Iterator[str]:
    """A fresh database of our own: pg_locks counts per database, so no other session's locks show in it."""
    name = f"svc_locks_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(pg_dsn, dbname=name)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_the_lock_count_is_what_pg_locks_shows(tmp_path: Path, own_database_dsn: str) -> None:
    app = create_app(service_settings(), store_settings(tmp_path / "cache", own_database_dsn))
    with TestClient(app, client=LOOPBACK) as client, psycopg.connect(own_database_dsn, autocommit=True) as holder:

        def locks() -> int:
            details = client.get(f"{API}/health").json()["components"]["postgresql_manifest"]["details"]
            return int(details["lock_stats"]["total_advisory_locks"])

        assert locks() == 0
        holder.execute("SELECT pg_advisory_lock(727274), pg_advisory_lock(727275)")
        assert locks() == 2
        holder.execute("SELECT pg_advisory_unlock_all()")
        assert locks() == 0


def test_postgresql_without_a_dsn_reads_not_configured_and_leaves_the_overall_status_healthy(
    duckdb_client: TestClient,
) -> None:
    body = duckdb_client.get(f"{API}/health").json()
    postgresql = body["components"]["postgresql_manifest"]
    assert postgresql["status"] == "not_configured"
    assert postgresql["details"]["configured"] is False
    assert body["overall_status"] == HEALTHY
    assert duckdb_client.get(f"{API}/health/ready").status_code == 200
