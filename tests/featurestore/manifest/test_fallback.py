"""PostgreSQL configured but unreachable: entries go to this process's DuckDB file, and are replayed into PostgreSQL
exactly once when it answers again, by the same store or by the next one that opens the cache folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from featurestore import FeatureStore
from featurestore.instruments import build as build_instruments
from featurestore.manifest.base import HEALTHY, UNHEALTHY
from featurestore.settings import FeatureStoreSettings
from tests.conftest import REPO
from tests.featurestore.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

DEADLINE_S = 30.0  # hang detection only


def closed_port_dsn() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def settings(dsn: str, cache_dir: Path, **overrides: Any) -> FeatureStoreSettings:
    values: dict[str, Any] = {
        "pg_dsn": dsn, "cache_dir": cache_dir, "pool_min_size": 1, "pool_max_size": 2, "pool_timeout_s": 2.0,
        "connect_timeout_s": 1.0, "replay_interval_s": 0.2, **overrides,
    }  # fmt: skip
    return FeatureStoreSettings(**values)


def frame(n: int) -> pa.Table:
    return pa.table({"n": [n, n + 1]})


def stored(dsn: str) -> Counter[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT symbol, feature, params_digest FROM manifest_entries").fetchall()
    return Counter((str(s), str(f), str(d)) for s, f, d in rows)


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    limit = time.monotonic() + DEADLINE_S
    while not predicate():
        assert time.monotonic() < limit, f"{what} did not happen within {DEADLINE_S:.0f} s"
        time.sleep(0.05)


def publish_in_a_process_that_exits(dsn: str, cache_dir: Path, count: int) -> list[tuple[str, str, str]]:
    script = f"""
import json, pyarrow as pa
from pathlib import Path
from featurestore import FeatureStore
from featurestore.settings import FeatureStoreSettings
s = FeatureStoreSettings(pg_dsn={dsn!r}, cache_dir=Path({str(cache_dir)!r}), connect_timeout_s=1)
with FeatureStore.open(settings=s) as store:
    keys = [store.publish("DEAD", "returns", {{"n": n}}, pa.table({{"n": [n]}})).entry.key for n in range({count})]
    assert store.backend_name == "duckdb"
print(json.dumps(keys))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    return [(str(s), str(f), str(d)) for s, f, d in json.loads(result.stdout)]


def test_an_unreachable_postgresql_sends_writes_to_this_processs_duckdb_file(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    cache = tmp_path / "cache"
    with FeatureStore.open(
        settings=settings(closed_port_dsn(), cache), instruments=build_instruments(registry)
    ) as store:
        assert store.backend_name == "duckdb"
        outcome = store.publish("AAPL", "returns", {"n": 1}, frame(1))
        calls: list[int] = []
        table = store.get_or_compute("MSFT", "returns", {"n": 2}, lambda: calls.append(1) or frame(2))
        again = store.get_or_compute("MSFT", "returns", {"n": 2}, lambda: calls.append(1) or frame(3))
        health = store.health()
        assert store.pool_stats() == {"total": 0, "active": 0, "waiting": 0}
        assert store.advisory_locks_held() == 0
    assert outcome.backend == "duckdb" and outcome.inserted
    assert calls == [1] and table.equals(frame(2)) and again.equals(frame(2))
    assert health["postgresql"].status == UNHEALTHY and health["postgresql"].details["connection"] is False
    assert health["duckdb"].status == HEALTHY and health["duckdb"].details["active"] is True
    assert health["duckdb"].details["pending"] == 2
    [left] = (cache / "fallback").glob("*.duckdb")
    assert left.name.startswith(f"{socket.gethostname()}-{os.getpid()}-"), "named after host and process"
    assert str(left) == health["duckdb"].details["path"], "pending entries stay on disk for the next store"
    assert registry.get_sample_value("manifest_insert_latency_ms_count", {"backend": "duckdb", "symbol": "AAPL"}) == 1
    assert registry.get_sample_value("featurestore_health_check_status", {"component": "postgresql"}) == 0
    assert registry.get_sample_value("featurestore_fallback_pending_entries") == 2


def test_the_next_store_with_a_reachable_postgresql_replays_every_pending_entry_exactly_once(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    cache = tmp_path / "cache"
    dead_keys = publish_in_a_process_that_exits(closed_port_dsn(), cache, 5)
    with FeatureStore.open(settings=settings(closed_port_dsn(), cache)) as store:
        own_keys = [store.publish("OWN", "returns", {"n": n}, frame(n)).entry.key for n in range(3)]
    assert len(list((cache / "fallback").glob("*.duckdb"))) == 2

    registry = CollectorRegistry()
    with FeatureStore.open(settings=settings(pg_schema_dsn, cache), instruments=build_instruments(registry)) as store:
        assert store.backend_name == "postgresql"
        rows = stored(pg_schema_dsn)
        versions = [e.version for e in store.entries("DEAD")]
        assert store.count_duplicates() == 0
    assert rows == Counter({key: 1 for key in [*dead_keys, *own_keys]})
    assert versions == [1, 2, 3, 4, 5], "PostgreSQL assigns the versions on replay"
    assert registry.get_sample_value("featurestore_fallback_replayed_total") == 8
    assert list((cache / "fallback").glob("*.duckdb*")) == []

    registry = CollectorRegistry()
    with FeatureStore.open(settings=settings(pg_schema_dsn, cache), instruments=build_instruments(registry)):
        pass
    assert stored(pg_schema_dsn) == rows
    assert registry.get_sample_value("featurestore_fallback_replayed_total") == 0


def test_a_fallback_file_held_by_a_live_process_is_left_to_that_process(tmp_path: Path, pg_schema_dsn: str) -> None:
    cache = tmp_path / "cache"
    down = closed_port_dsn()
    script = f"""
import sys, pyarrow as pa
from pathlib import Path
from featurestore import FeatureStore
from featurestore.settings import FeatureStoreSettings
s = FeatureStoreSettings(pg_dsn={down!r}, cache_dir=Path({str(cache)!r}), connect_timeout_s=1)
store = FeatureStore.open(settings=s)
store.publish("LIVE", "returns", {{"n": 1}}, pa.table({{"n": [1]}}))
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as live:
        assert live.stdout is not None and live.stdout.readline().strip() == "ready"
        with FeatureStore.open(settings=settings(pg_schema_dsn, cache)) as store:
            assert store.replay_fallback() == 0
            assert stored(pg_schema_dsn) == Counter()
            assert live.stdin is not None
            live.stdin.close()
            assert live.wait(DEADLINE_S) == 0
            assert store.replay_fallback() == 1
        assert sum(stored(pg_schema_dsn).values()) == 1


def test_a_store_falls_back_when_postgresql_goes_away_and_replays_when_it_returns(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    target = urlsplit(pg_schema_dsn)
    registry = CollectorRegistry()
    with TcpProxy((target.hostname or "127.0.0.1", target.port or 5432)) as proxy:
        dsn = pg_schema_dsn.replace(f":{target.port}/", f":{proxy.port}/")
        store = FeatureStore.open(settings=settings(dsn, tmp_path / "cache"), instruments=build_instruments(registry))
        try:
            before = store.publish("AAPL", "returns", {"n": 0}, frame(0))
            proxy.down()
            during = [store.publish("AAPL", "returns", {"n": n}, frame(n)) for n in (1, 2)]
            health_during = store.health()
            proxy.up()
            wait_until(lambda: store.backend_name == "postgresql", "the store noticing PostgreSQL is back")
            wait_until(lambda: sum(stored(pg_schema_dsn).values()) == 3, "the replay")
            after = store.publish("AAPL", "returns", {"n": 3}, frame(3))
            wait_until(lambda: store.health()["postgresql"].status == HEALTHY, "health back to healthy")
            pending = store.health()["duckdb"].details["pending"]
        finally:
            store.close()
    assert before.backend == "postgresql" and after.backend == "postgresql"
    assert [o.backend for o in during] == ["duckdb", "duckdb"]
    assert health_during["postgresql"].status == UNHEALTHY
    assert pending == 0
    assert stored(pg_schema_dsn) == Counter({o.entry.key: 1 for o in (before, *during, after)})
    assert registry.get_sample_value("featurestore_fallback_replayed_total") == 2
    assert registry.get_sample_value("featurestore_health_check_status", {"component": "postgresql"}) == 1
    assert os.path.exists(tmp_path / "cache" / after.entry.path)
