from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict
from starlette.testclient import TestClient

from featurestore.settings import dsn_secrets, redact_dsn, secret_parameters
from service.app import create_app
from service.redact import Redactor
from tests.service.conftest import API, LOOPBACK, service_settings, store_settings
from tests.service.test_health import closed_port

PASSWORD = "s3cret-pw"


@pytest.mark.parametrize(
    ("dsn", "secrets"),
    [
        ("postgresql://postgres:s3cret-pw@127.0.0.1:5432/postgres", ["s3cret-pw"]),
        ("postgresql://u:p%40ss@db/x?sslpassword=key-pw", ["p@ss", "key-pw"]),
        ("host=db user=u password='two words' sslpassword=k dbname=x", ["two words", "k"]),
        ("postgresql://postgres@127.0.0.1/postgres", []),
        ("host=db password='unterminated", []),
        ("postgresql://u:pw%20x@db/x?bogus_option=1", ["pw x"]),  # libpq refuses it: read as a URL
        (None, []),
    ],
)
def test_the_secrets_of_a_dsn_are_found_in_either_form(dsn: str | None, secrets: list[str]) -> None:
    assert sorted(dsn_secrets(dsn)) == sorted(secrets)


def test_libpqs_own_secret_parameters_are_all_known() -> None:
    assert {"password", "sslpassword"} <= secret_parameters()
    marked = {option.keyword.decode() for option in pq.Conninfo.get_defaults() if option.dispchar == b"*"}
    assert marked <= secret_parameters()


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres:postgres@127.0.0.1:5432/postgres?sslpassword=key-pw&application_name=fs",
        "host=127.0.0.1 port=5432 user=postgres password=postgres sslpassword='key-pw' dbname=postgres "
        "application_name=fs",
    ],
)
def test_a_redacted_dsn_drops_every_secret_parameter_and_keeps_the_rest_whole(dsn: str) -> None:
    shown = redact_dsn(dsn)
    params = conninfo_to_dict(shown)
    assert params == {
        "host": "127.0.0.1", "port": "5432", "user": "postgres", "dbname": "postgres", "application_name": "fs"
    }  # fmt: skip
    assert "key-pw" not in shown and "password" not in shown
    every_secret = " ".join(f"{name}=s-{name}" for name in sorted(secret_parameters()))
    assert "s-" not in redact_dsn(f"host=h {every_secret}")
    assert redact_dsn("host=h password='unterminated") == "<unparseable DSN>"


def test_shapes_are_masked_everywhere_and_known_secrets_only_as_whole_tokens_in_log_text() -> None:
    redactor = Redactor(["postgres", "tok-123", None, " "])
    assert redactor.text("Bearer tok-123 failed") == "Bearer *** failed"
    assert redactor.text("at postgresql://bob:other@h:5432/db") == "at postgresql://bob:***@h:5432/db"
    assert redactor.text("host=h password=other user=bob") == "host=h password=*** user=bob"
    assert (
        redactor.text("h?sslpassword=x&port=1 password = 'a b c' port=1")
        == "h?sslpassword=***&port=1 password = *** port=1"
    )
    assert (
        redactor.text("postgresql_manifest at postgresql://h/postgres1")
        == "postgresql_manifest at postgresql://h/postgres1"
    )
    assert redactor.text('missing "=" after "postgres"') == 'missing "=" after "***"'
    # A response body: shapes only, never a secret's value, so no word that equals a secret answers differently.
    body = {"postgresql_manifest": ["postgres", "tok-123", 5, None], "dsn": "password=x user=u"}
    assert redactor.scrub(body) == {
        "postgresql_manifest": ["postgres", "tok-123", 5, None],
        "dsn": "password=*** user=u",
    }


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


@pytest.mark.postgres
def test_a_password_that_is_a_word_of_the_api_hides_nothing_else_and_sslpassword_is_never_shown(
    pg_schema_dsn: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The local server trusts every connection: the password is sent nowhere, sslpassword only unlocks a client key.
    dsn = dsn_with_password(pg_schema_dsn, "postgres") + "&sslpassword=key-s3cret"
    assert "?options=" in dsn
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(service_settings(), store_settings(tmp_path / "cache", dsn)), client=LOOPBACK) as client:
        health = client.get(f"{API}/health").json()
        ready = client.get(f"{API}/health/ready").json()
        said = everything_said(client)
        run = client.post(f"{API}/test/load", json={"workers": 1, "duration_seconds": 1, "symbol": "postgres"})
        assert run.status_code == 200, run.text
        performance = client.get(f"{API}/performance").json()
        metrics = client.get(f"{API}/metrics").text
    assert set(health["components"]) == {"postgresql_manifest", "duckdb_fallback", "metrics"}
    assert health["components"]["postgresql_manifest"]["status"] == "healthy"
    assert "user=postgres" in health["components"]["postgresql_manifest"]["details"]["dsn"]
    assert ready["backend"] == "postgresql"
    assert "***" not in said
    assert "key-s3cret" not in said + json.dumps(performance) + metrics
    assert "key-s3cret" not in caplog.text
    # No oracle: a symbol equal to the password reads the same in /performance as in /metrics.
    assert "postgres" in [row["symbol"] for row in performance["top_symbols"]]
    assert 'symbol="postgres"' in metrics
