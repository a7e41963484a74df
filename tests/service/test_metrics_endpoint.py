"""The metrics endpoint: text format 0.0.4 from featurestore.exposition, the pool gauges read from the pool when
scraped (not left from the last insert)."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from featurestore.metrics import POOL_ACTIVE, POOL_TOTAL, POOL_WAITING
from featurestore.settings import FeatureStoreSettings
from service.app import create_app
from tests.service.conftest import API, service_of, service_settings


@pytest.mark.postgres
def test_a_scrape_reads_the_pool_gauges_from_the_pool_itself(pg_settings: FeatureStoreSettings) -> None:
    with TestClient(create_app(service_settings(), pg_settings)) as client:
        service = service_of(client)
        service.instruments.set_pool(0, 7, 99)  # what a stale gauge would still show
        scraped = client.get(f"{API}/metrics")
        registry = service.instruments.registry
        gauges = {spec.name: registry.get_sample_value(spec.name) for spec in (POOL_TOTAL, POOL_ACTIVE, POOL_WAITING)}

    assert scraped.status_code == 200
    assert gauges[POOL_TOTAL.name] == pg_settings.pool_max_size
    assert 0 <= (gauges[POOL_ACTIVE.name] or 0) <= pg_settings.pool_max_size  # a health check may hold one
    assert gauges[POOL_WAITING.name] == 0
    assert f"{POOL_TOTAL.name} {float(pg_settings.pool_max_size)}\n" in scraped.text


def test_the_scrape_is_text_format_0_0_4_without_created_series_gzipped_when_asked(duckdb_client: TestClient) -> None:
    duckdb_client.get(f"{API}/health")
    plain = duckdb_client.get(f"{API}/metrics", headers={"Accept-Encoding": "identity"})
    zipped = duckdb_client.get(f"{API}/metrics", headers={"Accept-Encoding": "gzip"})

    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(zipped.content)  # httpx decoded it
    for response in (plain, zipped):
        families = {family.name: family for family in text_string_to_metric_families(response.text)}
        assert {"featurestore_health_check_status", "manifest_insert_latency_ms", "featurestore_hits"} <= set(families)
        assert not [name for name in families if name.endswith("_created")]


def test_a_name_filter_is_answered_by_prometheus_clients_exposition(duckdb_client: TestClient) -> None:
    scraped = duckdb_client.get(f"{API}/metrics", params={"name[]": POOL_TOTAL.name})
    assert scraped.status_code == 200
    assert [family.name for family in text_string_to_metric_families(scraped.text)] == [POOL_TOTAL.name]


def test_a_fresh_service_exports_every_bounded_series_at_zero_so_idle_is_not_absent(duckdb_client: TestClient) -> None:
    scraped = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(duckdb_client.get(f"{API}/metrics").text)
        for sample in family.samples
    }
    for backend in ("postgresql", "duckdb"):
        assert scraped[("manifest_insert_latency_ms_count", (("backend", backend), ("symbol", "__other__")))] == 0
        assert scraped[("manifest_read_latency_ms_count", (("backend", backend), ("symbol", "__other__")))] == 0
    assert scraped[("advisory_lock_wait_time_ms_count", (("symbol", "__other__"),))] == 0
    assert scraped[("featurestore_hits_total", (("symbol", "__other__"),))] == 0
    assert math.isnan(scraped[("featurestore_hit_ratio", ())])  # no lookup yet: no ratio, no alert
