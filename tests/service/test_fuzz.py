"""Every endpoint under random input: no 5xx, no traceback; a refusal is a 4xx with a JSON message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from featurestore.settings import FeatureStoreSettings
from service.app import create_app, routes
from tests.service.conftest import API, LOOPBACK, service_settings

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PATHS = sorted({str(getattr(route, "path", "")) for route in routes()})
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
load_fields = st.fixed_dictionaries(
    {},
    optional={
        "workers": json_values | st.integers(min_value=-5, max_value=200),
        "duration_seconds": json_values | st.floats(min_value=-1, max_value=400),
        "symbol": json_values | st.text(max_size=80) | st.sampled_from(["..", "../x", "a/b", "a\x00b", "X" * 10_000]),
        "hold_ms": json_values,
        "think_ms": json_values,
        "read_fraction": json_values | st.floats(min_value=-1, max_value=2),
        "wait": json_values,
    },
)
odd_segments = st.text(max_size=40) | st.sampled_from(["..", "../..", "%2e%2e/", "\x00", "a/b/../../c", "X" * 10_000])


@pytest.fixture
def fuzz_client(duckdb_settings: FeatureStoreSettings, instant_runs: list[Any]) -> Iterator[TestClient]:
    with TestClient(create_app(service_settings(), duckdb_settings), client=LOOPBACK) as client:
        yield client


def assert_refused_or_served(response: Any) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["error"], str)


@FUZZ
@given(body=load_fields | json_values)
@example(body={"workers": 10**400 // 10**300})
@example(body={"symbol": "X" * 10_000})
def test_the_load_endpoint_refuses_or_serves_any_json_body(fuzz_client: TestClient, body: Any) -> None:
    response = fuzz_client.post(f"{API}/test/load", content=json.dumps(body))
    assert_refused_or_served(response)
    if response.status_code == 200:
        assert isinstance(body, dict)


@FUZZ
@given(body=st.binary(max_size=300))
def test_the_load_endpoint_refuses_or_serves_any_bytes(fuzz_client: TestClient, body: bytes) -> None:
    assert_refused_or_served(fuzz_client.post(f"{API}/test/load", content=body))


@FUZZ
@given(method=st.sampled_from(METHODS), path=st.sampled_from(PATHS), body=json_values)
def test_every_route_answers_any_method_with_any_body_without_a_5xx(
    fuzz_client: TestClient, method: str, path: str, body: Any
) -> None:
    assert_refused_or_served(fuzz_client.request(method, path, content=json.dumps(body)))


@FUZZ
@given(segment=odd_segments, prefix=st.sampled_from([f"{API}/", f"{API}/test/load/", "/"]))
def test_odd_paths_are_404_never_a_file_or_a_5xx(fuzz_client: TestClient, segment: str, prefix: str) -> None:
    response = fuzz_client.get(prefix + quote(segment, safe="/"))
    assert_refused_or_served(response)
    assert response.status_code in (200, 307, 404), response.text
