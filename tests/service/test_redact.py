from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict
from starlette.testclient import TestClient

from service.app import create_app
from service.redact import Redactor, dsn_password
from tests.service.conftest import API, LOOPBACK, service_settings, store_settings
from tests.service.test_health import closed_port

PASSWORD = "s3cret-pw"


@pytest.mark.parametrize(
    ("dsn", "password"),
    [
        ("postgresql://postgres:s3cret-pw@127.0.0.1:5432/postgres", "s3cret-pw"),
        ("postgresql://u:p%40ss@db/x", "p@ss"),
        ("host=db user=u password='two words' dbname=x", "two words"),
        ("postgresql://postgres@127.0.0.1/postgres", None),
        (None, None),
    ],
)
def test_the_password_of_a_dsn_is_found_in_either_form(dsn: str | None, password: str | None) -> None:
    assert dsn_password(dsn) == password


def test_known_secrets_and_anything_shaped_like_a_dsn_password_are_masked() -> None:
    redactor = Redactor(["tok-123", None])
    assert redactor.text("Bearer tok-123 failed") == "Bearer *** failed"
    assert redactor.text("at postgresql://bob:other@h:5432/db") == "at postgresql://bob:***@h:5432/db"
    assert redactor.text("host=h password=other user=bob") == "host=h password=*** user=bob"
    assert redactor.text("password = 'a b c' port=1") == "password = *** port=1"
    assert redactor.scrub({"tok-123": ["tok-123", 5, None]}) == {"***": ["***", 5, None]}


def dsn_with_password(dsn: str, password: str, port: int | None = None) -> str:
    """`dsn` in URL form, with a password and optionally another port (the search_path option kept)."""
    parts = conninfo_to_dict(dsn)
    host, dbname = parts.get("host", "127.0.0.1"), parts.get("dbname", "postgres")
    url = f"postgresql://{parts.get('user', 'postgres')}:{password}@{host}:{port or parts.get('port', 5432)}/{dbname}"
    options = parts.get("options")
    return f"{url}?options={quote(str(options))}" if options else url


def everything_said(client: TestClient) -> str:
    """Every response body and header of one tour of the endpoints, a short load run and some errors included."""
    responses = [
        client.post(f"{API}/test/load", json={"workers": 2, "duration_seconds": 1, "think_ms": 20}),
        *(client.get(f"{API}/{path}") for path in ("health", "health/ready", "health/live", "slo", "performance")),
        client.get(f"{API}/test/load"),
        client.get(f"{API}/metrics"),
        client.get(f"{API}/nope"),
        client.post(f"{API}/test/load", json={"workers": 500}),
        client.post(f"{API}/test/load", content=b"{"),
    ]
    return "\n".join(f"{response.headers}\n{response.text}" for response in responses)


@pytest.mark.postgres
@pytest.mark.parametrize("server", ["up", "down"])
def test_a_dsn_password_appears_in_no_response_log_line_or_metric(
    server: str, pg_schema_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = dsn_with_password(pg_schema_dsn, PASSWORD, closed_port() if server == "down" else None)
    settings = store_settings(tmp_path / "cache", dsn, connect_timeout_s=1)
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(service_settings(), settings), client=LOOPBACK) as client:
        said = everything_said(client)
        health = client.get(f"{API}/health").json()
    assert health["components"]["postgresql_manifest"]["status"] == ("healthy" if server == "up" else "unhealthy")
    assert "featurestore_http_requests_total" in said
    assert caplog.records
    assert PASSWORD not in said
    assert PASSWORD not in caplog.text
