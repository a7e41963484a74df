from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from starlette.testclient import TestClient

import service.loadtest
from featurestore.metrics import HITS, MANIFEST_INSERT_LATENCY, MANIFEST_READ_LATENCY, MISSES
from featurestore.settings import FeatureStoreSettings
from service.app import create_app
from tests.service.conftest import API, service_of, service_settings

LOAD = f"{API}/test/load"
SHORT = {"workers": 2, "duration_seconds": 1, "think_ms": 20}


def recorded(client: TestClient, sample_name: str) -> float:
    """The app's registry: one sample name summed over all label sets."""
    registry = service_of(client).instruments.registry
    return sum(sample.value for family in registry.collect() for sample in family.samples if sample.name == sample_name)


def inserts_recorded(client: TestClient) -> float:
    return recorded(client, f"{MANIFEST_INSERT_LATENCY.name}_count")


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what} after {timeout_s:g} s"
        time.sleep(0.05)


def test_a_load_run_returns_the_generators_result_and_is_recorded_live(client: TestClient) -> None:
    response = client.post(LOAD, json={**SHORT, "symbol": "BRK.B"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    result = body["result"]
    backend = "postgresql" if service_of(client).store_settings.pg_dsn is not None else "duckdb"
    assert result["backend"] == backend
    assert result["workers"] == 2
    assert result["operations"] > 0
    assert result["errors"] == 0
    assert result["duplicates"] == 0
    assert inserts_recorded(client) >= result["operations"]
    assert client.get(LOAD).json()["id"] == body["id"]


def test_a_run_with_a_read_fraction_looks_keys_up_and_feeds_the_hit_and_read_metrics(client: TestClient) -> None:
    response = client.post(LOAD, json={**SHORT, "think_ms": 5, "read_fraction": 0.8})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request"]["read_fraction"] == 0.8
    result = body["result"]
    assert result["read_fraction"] == 0.8
    assert result["errors"] == 0
    assert result["duplicates"] == 0
    assert result["hits"] + result["misses"] == result["lookups"] == result["operations"] > 0
    assert result["hits"] > 0
    assert result["inserts"] == result["misses"] >= result["workers"]  # a worker's first lookup is a miss
    # The app's store recorded every lookup and manifest read of the run live, nothing else looked anything up; a hit
    # on a key the store published asks the manifest nothing (featurestore/verified.py): one read per miss.
    assert recorded(client, HITS.name) == result["hits"]
    assert recorded(client, MISSES.name) == result["misses"]
    assert recorded(client, f"{MANIFEST_READ_LATENCY.name}_count") == result["manifest_reads"] == result["misses"]


def test_the_read_fraction_reaches_the_load_generator(duckdb_client: TestClient, instant_runs: list[Any]) -> None:
    assert duckdb_client.post(LOAD, json={**SHORT, "read_fraction": 0.25}).status_code == 200
    assert duckdb_client.post(LOAD, json={**SHORT, "read_fraction": 0}).status_code == 200
    assert [config.read_fraction for config in instant_runs] == [0.25, 0.0]


def test_every_file_a_run_writes_stays_inside_the_cache_folder(duckdb_client: TestClient, tmp_path: Path) -> None:
    assert duckdb_client.post(LOAD, json={**SHORT, "symbol": "A.B-C_1"}).status_code == 200
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written
    cache = service_of(duckdb_client).store_settings.resolved_cache_dir()
    assert all(path.resolve().is_relative_to(cache) for path in written)


def test_one_run_at_a_time_a_second_one_gets_409_and_the_first_can_be_polled(duckdb_client: TestClient) -> None:
    # A run far longer than the test, stopped by the test: it is running when the second POST comes, however slow
    # the machine, and the test waits on conditions (an insert recorded, the run finished), not on the clock.
    started = duckdb_client.post(LOAD, json={**SHORT, "duration_seconds": 300, "wait": False})
    assert started.status_code == 202
    run_id = started.json()["id"]
    assert started.json()["status_url"].endswith(LOAD)
    conflict = duckdb_client.post(LOAD, json=SHORT)
    assert conflict.status_code == 409
    assert run_id in conflict.json()["error"]
    assert duckdb_client.get(LOAD).json()["status"] == "running"
    wait_for(lambda: inserts_recorded(duckdb_client) > 0, "the run's first insert")
    duckdb_client.portal.call(service_of(duckdb_client).loads.close)  # what the lifespan does on shutdown
    status = duckdb_client.get(LOAD).json()
    assert status["id"] == run_id
    assert status["status"] == "succeeded"
    assert status["result"]["operations"] > 0
    assert status["result"]["duration_s"] < 300


def test_without_a_token_only_loopback_clients_may_start_a_run(
    duckdb_settings: FeatureStoreSettings, instant_runs: list[Any]
) -> None:
    app = create_app(service_settings(), duckdb_settings)
    with TestClient(app, client=("203.0.113.7", 40000)) as remote:
        for method in (remote.post, remote.get):
            response = method(LOAD)
            assert response.status_code == 403
            assert "loopback" in response.json()["error"]
    for host in ("127.0.0.1", "::1"):
        with TestClient(app, client=(host, 40000)) as local:
            assert local.post(LOAD, json=SHORT).status_code == 200
    assert len(instant_runs) == 2


@pytest.fixture
def token_client(duckdb_settings: FeatureStoreSettings) -> Iterator[TestClient]:
    app = create_app(service_settings(admin_token="tok-3141"), duckdb_settings)
    with TestClient(app, client=("203.0.113.7", 40000)) as client:
        yield client


def test_with_a_token_a_missing_one_is_401_a_wrong_one_403_and_the_right_one_passes(
    token_client: TestClient, instant_runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(service.loadtest.hmac, "compare_digest", compare_digest)
    missing = token_client.post(LOAD, json=SHORT)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    for header in ("Bearer tok-3142", "Basic tok-3141", "Bearer", "tok-3141"):
        wrong = token_client.post(LOAD, json=SHORT, headers={"Authorization": header})
        assert wrong.status_code == 403, header
        assert wrong.json()["error"] == "the bearer token is not valid"
    right = token_client.post(LOAD, json=SHORT, headers={"Authorization": "Bearer tok-3141"})
    assert right.status_code == 200
    assert len(instant_runs) == 1
    assert (b"tok-3141", b"tok-3141") in compared


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_a_set_but_blank_admin_token_is_a_settings_error(blank: str) -> None:
    with pytest.raises(ValidationError, match="admin_token") as caught:
        service_settings(admin_token=blank)
    assert "set but empty or blank" in str(caught.value)


@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_bearer_credential_never_authenticates_even_against_a_blank_token(
    duckdb_settings: FeatureStoreSettings, instant_runs: list[Any], token: str
) -> None:
    # Built past validation, as a caller constructing the settings by hand could.
    settings = service_settings().model_copy(update={"admin_token": SecretStr(token)})
    with TestClient(create_app(settings, duckdb_settings), client=("203.0.113.7", 40000)) as remote:
        for header in ("Bearer ", "Bearer", "Bearer    ", f"Bearer {token}"):
            response = remote.post(LOAD, json=SHORT, headers={"Authorization": header})
            assert response.status_code == 403, header
    assert instant_runs == []


BAD_FIELDS = [
    ({"workers": 0}, "workers"),
    ({"workers": 129}, "workers"),
    ({"workers": 10**30}, "workers"),
    ({"workers": "20"}, "workers"),
    ({"workers": 20.5}, "workers"),
    ({"workers": True}, "workers"),
    ({"workers": None}, "workers"),
    ({"duration_seconds": 0.5}, "duration_seconds"),
    ({"duration_seconds": 301}, "duration_seconds"),
    ({"duration_seconds": "30"}, "duration_seconds"),
    ({"duration_seconds": 1e308 * 10}, "duration_seconds"),
    ({"symbol": "../../etc/passwd"}, "symbol"),
    ({"symbol": "a/b"}, "symbol"),
    ({"symbol": ".."}, "symbol"),
    ({"symbol": "nul\x00byte"}, "symbol"),
    ({"symbol": ""}, "symbol"),
    ({"symbol": "X" * 10_000}, "symbol"),
    ({"symbol": 42}, "symbol"),
    ({"hold_ms": 5}, "hold_ms"),  # the benchmark's knob (make bench), not the service's: an unknown field
    ({"think_ms": -1}, "think_ms"),
    ({"think_ms": 10_001}, "think_ms"),
    ({"read_fraction": -0.1}, "read_fraction"),
    ({"read_fraction": 0.995}, "read_fraction"),
    ({"read_fraction": 1}, "read_fraction"),
    ({"read_fraction": "0.5"}, "read_fraction"),
    ({"read_fraction": True}, "read_fraction"),
    ({"read_fraction": None}, "read_fraction"),
    ({"wait": "no"}, "wait"),
    ({"worker": 20}, "worker"),
]


@pytest.mark.parametrize(
    ("fields", "field"),
    BAD_FIELDS,
    ids=[", ".join(f"{key}={str(value)[:20]!r}" for key, value in d.items()) for d, _ in BAD_FIELDS],
)
def test_a_field_out_of_range_or_of_the_wrong_type_is_422_naming_the_field(
    duckdb_client: TestClient, instant_runs: list[Any], fields: dict[str, Any], field: str
) -> None:
    body = json.dumps({**SHORT, **fields}).replace("Infinity", "1e400")
    response = duckdb_client.post(LOAD, content=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith(f"invalid load request: {field}:")
    assert instant_runs == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"workers": NaN}', 400, "NaN is not valid JSON"),
        (b"\xff\xfe{}", 400, "not UTF-8"),
        (b"[" * 50_000 + b"]" * 50_000, 413, "over the limit"),
        (b"[" * 20_000 + b"]" * 20_000, 400, "malformed JSON"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b'"text"', 422, "must be a JSON object"),
        (b'{"workers": ' + b"9" * 5000 + b"}", 400, "malformed JSON"),
    ],
    ids=["truncated", "nan", "not-utf8", "oversized", "deeply-nested", "array", "string", "5000-digit-number"],
)
def test_a_malformed_body_is_refused_with_a_message(
    duckdb_client: TestClient, instant_runs: list[Any], body: bytes, status: int, message: str
) -> None:
    response = duckdb_client.post(LOAD, content=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert instant_runs == []


def test_an_oversized_body_without_a_declared_length_is_refused_while_streaming(
    duckdb_client: TestClient, instant_runs: list[Any]
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 4096

    response = duckdb_client.post(LOAD, content=chunks())
    assert response.status_code == 413
    assert "over the limit" in response.json()["error"]


def test_an_empty_body_runs_the_guides_defaults(duckdb_client: TestClient, instant_runs: list[Any]) -> None:
    assert duckdb_client.post(LOAD).status_code == 200
    (config,) = instant_runs
    assert (config.workers, config.duration_s, config.symbol, config.processes) == (20, 30.0, "TEST_CONTENTION", False)
    assert config.read_fraction == 0.0  # the guide's body publishes only


def test_a_running_load_logs_its_progress_about_once_a_second(
    duckdb_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="service"):
        response = duckdb_client.post(LOAD, json={"workers": 1, "duration_seconds": 3, "think_ms": 20})
    assert response.status_code == 200, response.text
    run = response.json()["id"]
    lines = [record.getMessage() for record in caplog.records if record.name == "service"]
    assert f"load run {run} started: 1 workers for 3 s on duckdb, symbol TEST_CONTENTION" in lines[0]
    ticks = [line for line in lines if line.startswith(f"load run {run}: ") and "ops/s" in line]
    assert 2 <= len(ticks) <= 4, lines  # a 3 s run ticks at 1 s and 2 s (and maybe at 3 s)
    assert all(" ops, " in line and " errors, " in line for line in ticks)
    assert lines[-1].startswith(f"load run {run} succeeded: ")


def test_the_load_result_and_performance_agree_on_what_the_run_observed(client: TestClient) -> None:
    result = client.post(LOAD, json=SHORT).json()["result"]
    performance = client.get(f"{API}/performance").json()
    backend = result["backend"]
    # Every worker makes one unmeasured warm-up publish before the start barrier; the store records it like any other.
    warm_ups = result["workers"]
    assert performance["backends"][backend]["inserts"] == result["inserts"] + warm_ups
    lock_waits = performance["lock_wait_ms"]
    if backend == "duckdb":  # no advisory lock: no wait observed on either side, and null, not 0
        assert result["lock_waits"] == lock_waits["observations"] == 0
        assert result["lock_wait_ms"] == {"p50": None, "p95": None, "p99": None}
        assert (lock_waits["p50"], lock_waits["p95"], lock_waits["p99"]) == (None, None, None)
    else:
        assert result["lock_waits"] == result["inserts"]
        assert lock_waits["observations"] == result["lock_waits"] + warm_ups
    # A publish-only run reads nothing: null read latencies on both sides.
    assert result["manifest_reads"] == performance["backends"][backend]["reads"] == 0
    assert result["read_latency_ms"] == {"p50": None, "p95": None, "p99": None}
    assert set(performance["backends"][backend]["read_latency_ms"].values()) == {None}
