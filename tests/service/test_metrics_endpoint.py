"""The metrics endpoint: the pool gauges are read from the pool when scraped, not left from the last insert."""

from __future__ import annotations

import pytest
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
