"""The service on a metrics folder (service/exporter.py FleetExporter, service/health.py): a file it cannot parse is
skipped with the rest served, named in /health and counted in a gauge; a second service on the folder is refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from starlette.testclient import TestClient

from featurestore.errors import MetricsFolderError
from featurestore.layout import METRICS_FOLDER
from featurestore.settings import FeatureStoreSettings
from service.app import create_app
from tests.service.conftest import API, LOOPBACK, service_settings


def _ended_process_files(folder: Path, identity: str, hits: float) -> None:
    file = MmapedDict(str(folder / f"counter_{identity}.db"))  # type: ignore[no-untyped-call]
    key = mmap_key("featurestore_hits", "featurestore_hits_total", ["symbol"], ["AAPL"], "Cache hits")
    file.write_value(key, hits, 0.0)  # type: ignore[no-untyped-call]
    file.close()  # type: ignore[no-untyped-call]


def test_an_unreadable_file_is_skipped_the_rest_served_and_health_names_it_once_in_the_log(
    duckdb_settings: FeatureStoreSettings, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app(service_settings(), duckdb_settings), client=LOOPBACK) as client:
        folder = duckdb_settings.resolved_cache_dir() / METRICS_FOLDER
        _ended_process_files(folder, "7-good", 5.0)
        damaged = folder / "counter_8-damaged.db"
        damaged.write_bytes(b"\x10\x27\0\0" + b"\xff" * 60)  # a header past its end, then noise
        with caplog.at_level(logging.WARNING, logger="featurestore.fleet"):
            scrapes = [client.get(f"{API}/metrics") for _ in range(3)]
        assert [response.status_code for response in scrapes] == [200, 200, 200]
        assert 'featurestore_hits_total{symbol="AAPL"} 5.0' in scrapes[-1].text
        assert "featurestore_metrics_files_skipped 1.0" in scrapes[-1].text
        warnings = [record.getMessage() for record in caplog.records if str(damaged) in record.getMessage()]
        assert len(warnings) == 1, warnings  # once, not at every scrape
        for path in ("slo", "performance"):
            assert client.get(f"{API}/{path}").status_code == 200
        health = client.get(f"{API}/health").json()["components"]["metrics"]
        assert health["status"] == "degraded" and str(damaged) in health["details"]["reason"]
        assert client.get(f"{API}/health/ready").status_code == 200  # readiness does not depend on it
        damaged.unlink()
        assert "featurestore_metrics_files_skipped 0.0" in client.get(f"{API}/metrics").text
        assert client.get(f"{API}/health").json()["components"]["metrics"]["status"] == "healthy"


def test_a_second_service_on_a_folder_another_service_serves_is_refused_with_the_reason(
    duckdb_settings: FeatureStoreSettings,
) -> None:
    with TestClient(create_app(service_settings(), duckdb_settings), client=LOOPBACK):
        second = TestClient(create_app(service_settings(), duckdb_settings), client=LOOPBACK)
        with pytest.raises(MetricsFolderError, match="another service already serves the metrics folder"):
            second.__enter__()
    with TestClient(create_app(service_settings(), duckdb_settings), client=LOOPBACK) as client:  # the first stopped
        assert client.get(f"{API}/metrics").status_code == 200
