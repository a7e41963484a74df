from __future__ import annotations

import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from service.errors import INTERNAL_ERROR
from tests.service.conftest import API, LOOPBACK, scripted_app


def test_unknown_paths_and_methods_get_json_errors(duckdb_client: TestClient) -> None:
    missing = duckdb_client.get(f"{API}/nothing-here")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found: GET / lists every endpoint"})
    wrong = duckdb_client.put(f"{API}/health")
    assert (wrong.status_code, wrong.json()) == (405, {"error": "Method Not Allowed"})
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"}


def test_a_declared_body_over_the_limit_is_413_on_any_route(duckdb_client: TestClient) -> None:
    response = duckdb_client.post(f"{API}/health", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert "over the limit of 65536 bytes" in response.json()["error"]
    bogus = duckdb_client.get(f"{API}/health", headers={"Content-Length": "12abc"})
    assert bogus.status_code == 400
    huge = duckdb_client.get(f"{API}/health", headers={"Content-Length": "9" * 5000})
    assert huge.status_code == 413


def test_an_unexpected_exception_is_a_generic_json_500_and_a_redacted_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = "postgresql://postgres:hunter2-pw@127.0.0.1:5432/postgres"
    app, store = scripted_app(tmp_path, pg_dsn=dsn)
    with TestClient(app, client=LOOPBACK) as client:
        store().backend_error = RuntimeError(f"lost the manifest at {dsn}")
        with caplog.at_level(logging.ERROR, logger="service"):
            response = client.get(f"{API}/health/ready")
        store().backend_error = None
    assert response.status_code == 500
    assert response.json() == {"error": INTERNAL_ERROR}
    assert "Traceback" not in response.text
    assert "RuntimeError: lost the manifest at postgresql://postgres:***@127.0.0.1" in caplog.text
    assert "hunter2-pw" not in caplog.text
