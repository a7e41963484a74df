"""The benchmark's lock adapter against the real server: the global scope takes the shared key as well as the
symbol's, in the same one-statement insert, and the store built on it publishes like production's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from bench.held_lock import FUNCTION, GLOBAL_LOCK_SYMBOL, HeldLockManifest, HeldLockStores, LockScope
from featurestore.keys import advisory_key
from featurestore.loadtest import LoadConfig
from featurestore.manifest import pg_schema
from featurestore.settings import FeatureStoreSettings
from tests.featurestore.manifest.test_postgres import Connection, entry, lock_holders

pytestmark = pytest.mark.postgres


@pytest.fixture
def other(pg_schema_dsn: str) -> Iterator[Connection]:
    with psycopg.connect(pg_schema_dsn, autocommit=True) as conn:
        yield conn


def test_the_global_key_symbol_is_pinned() -> None:
    assert advisory_key(GLOBAL_LOCK_SYMBOL) == -7503968148320253620


def test_the_global_scope_takes_the_shared_key_as_well_as_the_symbols(pg_schema_dsn: str, other: Connection) -> None:
    settings = FeatureStoreSettings(pool_min_size=1, pool_max_size=1)
    manifest = HeldLockManifest(pg_schema_dsn, settings, scope=LockScope.GLOBAL, hold_ms=600)
    manifest.connect()
    writer = threading.Thread(target=lambda: manifest.insert(entry("AAPL", 0)))
    writer.start()
    try:
        limit = time.monotonic() + 30
        while not lock_holders(other, advisory_key("AAPL")):
            assert time.monotonic() < limit
            time.sleep(0.01)
        assert [granted for _, granted in lock_holders(other, advisory_key(GLOBAL_LOCK_SYMBOL))] == [True]
    finally:
        writer.join(30)
        manifest.close()
    assert lock_holders(other, advisory_key(GLOBAL_LOCK_SYMBOL)) == []


def test_a_store_on_the_adapter_publishes_through_the_benchmarks_function_not_production_s(
    pg_schema_dsn: str, tmp_path: Path, other: Connection
) -> None:
    config = LoadConfig(backend="postgresql", dsn=pg_schema_dsn)
    with HeldLockStores(LockScope.GLOBAL, hold_ms=1.0)(config, tmp_path, pool_size=1) as store:
        outcome = store.publish("AAPL", "returns", {"n": 1}, pa.table({"x": [1]}))
    assert outcome.inserted and outcome.entry.version == 1
    functions = other.execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace ORDER BY proname"
    ).fetchall()
    assert [name for (name,) in functions] == sorted([FUNCTION, pg_schema.INSERT_FUNCTION])
