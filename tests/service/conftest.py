"""Fixtures of the service tests: apps over the real store (DuckDB in a temp folder, or the real PostgreSQL in a fresh
schema), TestClients used as context managers so the lifespan runs, and a scriptable store for the states a real
database will not produce on demand (a hung check, an exhausted pool)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import service.load_runner
from featurestore.instruments import Instruments
from featurestore.manifest.base import HEALTHY, ComponentHealth
from featurestore.metrics import BACKEND_DUCKDB
from featurestore.settings import FeatureStoreSettings
from service.app import create_app
from service.settings import ServiceSettings
from service.state import Service

LOOPBACK = ("127.0.0.1", 50000)
API = "/api/v1/monitoring"


def service_settings(**overrides: Any) -> ServiceSettings:
    """Settings independent of the caller's SERVICE_* environment."""
    values: dict[str, Any] = {"admin_token": None, "snapshot_interval_s": 1.0}
    values.update(overrides)
    return ServiceSettings(**values)


def store_settings(cache_dir: Path, pg_dsn: str | None = None, **overrides: Any) -> FeatureStoreSettings:
    return FeatureStoreSettings(cache_dir=cache_dir, pg_dsn=pg_dsn, **overrides)


def service_of(client: TestClient) -> Service:
    """The running app's resources (the lifespan state the TestClient hands every request)."""
    service = client.app_state["service"]
    assert isinstance(service, Service)
    return service


@pytest.fixture
def duckdb_settings(tmp_path: Path) -> FeatureStoreSettings:
    return store_settings(tmp_path / "cache")


@pytest.fixture
def pg_settings(tmp_path: Path, pg_schema_dsn: str) -> FeatureStoreSettings:
    return store_settings(tmp_path / "cache", pg_schema_dsn)


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_settings(request: pytest.FixtureRequest) -> FeatureStoreSettings:
    """Each test runs once on DuckDB alone and once on the real PostgreSQL (with its DuckDB fallback)."""
    fixture = "pg_settings" if request.param == "postgresql" else "duckdb_settings"
    settings: FeatureStoreSettings = request.getfixturevalue(fixture)
    return settings


@pytest.fixture
def client(backend_settings: FeatureStoreSettings) -> Iterator[TestClient]:
    with TestClient(create_app(service_settings(), backend_settings), client=LOOPBACK) as test_client:
        yield test_client


@pytest.fixture
def duckdb_client(duckdb_settings: FeatureStoreSettings) -> Iterator[TestClient]:
    with TestClient(create_app(service_settings(), duckdb_settings), client=LOOPBACK) as test_client:
        yield test_client


class ScriptedStore:
    """A FeatureStore stand-in whose health answers are set by the test; it counts what it was asked."""

    def __init__(self, settings: FeatureStoreSettings, instruments: Instruments) -> None:
        self.settings = settings
        self.instruments = instruments
        self.backend = BACKEND_DUCKDB
        self.components: dict[str, ComponentHealth] = {
            "postgresql": ComponentHealth(HEALTHY, {"configured": False}),
            "duckdb": ComponentHealth(HEALTHY, {"role": "primary"}),
        }
        self.health_delay_s = 0.0
        self.health_calls = 0
        self.closed = False
        self.on_health: Callable[[], None] | None = None
        self.backend_error: Exception | None = None  # raised by backend_name: a bug the service did not foresee

    @property
    def backend_name(self) -> str:
        if self.backend_error is not None:
            raise self.backend_error
        return self.backend

    def health(self) -> dict[str, ComponentHealth]:
        self.health_calls += 1
        if self.on_health is not None:
            self.on_health()
        if self.health_delay_s:
            time.sleep(self.health_delay_s)
        return dict(self.components)

    def pool_stats(self) -> dict[str, int]:
        return {"total": 0, "active": 0, "waiting": 0}

    def advisory_locks_held(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def scripted_app(
    tmp_path: Path, *, pg_dsn: str | None = None, **settings: Any
) -> tuple[Starlette, Callable[[], ScriptedStore]]:
    """An app over a ScriptedStore; the second item returns the store once the lifespan has opened it."""
    opened: list[ScriptedStore] = []

    def opener(store_settings: FeatureStoreSettings, instruments: Instruments) -> Any:
        opened.append(ScriptedStore(store_settings, instruments))
        return opened[-1]

    app = create_app(
        service_settings(**settings), store_settings(tmp_path / "cache", pg_dsn), store_opener=opener, hold_store=True
    )
    return app, lambda: opened[-1]


@pytest.fixture
def instant_runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """run_load replaced by one that returns at once: for tests about access and input, not about load."""
    configs: list[Any] = []

    class Result:
        operations, errors, throughput_ops_s, duration_s = 0, 0, 0.0, 0.0

        def to_json(self) -> dict[str, Any]:
            return {"operations": 0}

    def run_load(config: Any, **_: Any) -> Result:
        configs.append(config)
        return Result()

    monkeypatch.setattr(service.load_runner, "run_load", run_load)
    return configs
