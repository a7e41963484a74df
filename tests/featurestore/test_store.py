"""FeatureStore over the in-memory manifest: hits, misses, recomputes of missing or corrupt files, one compute per
key across threads, and a publish path that never leaves a second file for one key."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from featurestore import FeatureStore, InvalidName, InvalidParams, LockTimeout
from featurestore.files import FrameFiles
from featurestore.instruments import build as build_instruments
from featurestore.manifest.base import InsertOutcome, ManifestEntry
from featurestore.manifest.memory import MemoryManifest
from featurestore.settings import FeatureStoreSettings

PARAMS = {"window": 20}


def frame(value: float = 1.0, rows: int = 4) -> pa.Table:
    return pa.table({"ts": pa.array(range(rows), type=pa.int64()), "value": [value] * rows})


class Counting:
    """A compute function that counts its calls."""

    def __init__(self, table: pa.Table, delay_s: float = 0.0) -> None:
        self.table = table
        self.delay_s = delay_s
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> pa.Table:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)
        return self.table


def make_store(tmp_path: Path, registry: CollectorRegistry, manifest: MemoryManifest | None = None) -> FeatureStore:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)
    return FeatureStore(
        manifest or MemoryManifest(), FrameFiles(tmp_path), settings=settings, instruments=build_instruments(registry)
    )


def test_a_miss_computes_and_publishes_then_the_next_call_is_a_hit(tmp_path: Path, registry: CollectorRegistry) -> None:
    store = make_store(tmp_path, registry)
    compute = Counting(frame())
    first = store.get_or_compute("AAPL", "returns", PARAMS, compute)
    second = store.get_or_compute("AAPL", "returns", PARAMS, compute)
    assert compute.calls == 1
    assert first.equals(frame()) and second.equals(frame())
    assert registry.get_sample_value("featurestore_misses_total", {"symbol": "AAPL"}) == 1
    assert registry.get_sample_value("featurestore_hits_total", {"symbol": "AAPL"}) == 1
    assert registry.get_sample_value("featurestore_hit_ratio") is None  # the exporter derives it over its window
    # A miss reads once (under the in-process key lock only what this process remembers); the hit of a frame this
    # process published asks the manifest nothing (featurestore/verified.py).
    assert registry.get_sample_value("manifest_read_latency_ms_count", {"backend": "memory", "symbol": "AAPL"}) == 1
    assert registry.get_sample_value("manifest_insert_latency_ms_count", {"backend": "memory", "symbol": "AAPL"}) == 1
    [entry] = store.entries()
    assert (entry.symbol, entry.feature, entry.version, entry.rows) == ("AAPL", "returns", 1, 4)


def test_different_params_are_different_frames(tmp_path: Path, registry: CollectorRegistry) -> None:
    store = make_store(tmp_path, registry)
    store.get_or_compute("AAPL", "returns", {"window": 20}, Counting(frame(1.0)))
    table = store.get_or_compute("AAPL", "returns", {"window": 60}, Counting(frame(2.0)))
    assert table.equals(frame(2.0))
    assert [e.version for e in store.entries("AAPL")] == [1, 2]


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_file_is_recomputed_counted_and_its_row_replaced(
    tmp_path: Path, registry: CollectorRegistry, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(tmp_path, registry)
    store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(1.0)))
    [old] = store.entries()
    path = tmp_path / old.path
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:-7] + b"garbage")
    compute = Counting(frame(5.0))
    with caplog.at_level("WARNING", logger="featurestore"):
        table = store.get_or_compute("AAPL", "returns", PARAMS, compute)
    assert compute.calls == 1 and table.equals(frame(5.0))
    assert registry.get_sample_value("featurestore_recomputed_total", {"reason": damage}) == 1
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 1, warnings  # one recompute, one warning
    assert warnings[0].startswith(f"cached frame unusable ({damage}), recomputing: {old.path}")
    [new] = store.entries()
    assert new.path != old.path and new.version == 2
    assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0))).equals(frame(5.0))


def test_threads_asking_for_the_same_key_share_one_compute(tmp_path: Path, registry: CollectorRegistry) -> None:
    store = make_store(tmp_path, registry)
    compute = Counting(frame(), delay_s=0.2)
    results: list[pa.Table] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.get_or_compute("AAPL", "returns", PARAMS, compute)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert compute.calls == 1
    assert len(results) == 8 and all(table.equals(frame()) for table in results)
    assert registry.get_sample_value("featurestore_misses_total", {"symbol": "AAPL"}) == 1
    assert registry.get_sample_value("featurestore_hits_total", {"symbol": "AAPL"}) == 7


def test_a_compute_that_returns_something_else_than_a_table_is_an_error(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    store = make_store(tmp_path, registry)
    with pytest.raises(TypeError, match=r"pyarrow\.Table"):
        store.get_or_compute("AAPL", "returns", PARAMS, lambda: [1, 2, 3])  # type: ignore[arg-type,return-value]
    assert list(store.entries()) == []


class TimingOut(MemoryManifest):
    def insert(self, entry: ManifestEntry, *, replace: bool = False) -> InsertOutcome:
        raise LockTimeout("advisory lock not granted within lock_timeout")


def test_a_computed_frame_is_returned_even_when_its_publish_fails_and_the_error_is_counted(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    store = make_store(tmp_path, registry, TimingOut())
    table = store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame()))
    assert table.equals(frame())
    assert (
        registry.get_sample_value("manifest_insert_errors_total", {"backend": "memory", "error": "lock_timeout"}) == 1
    )
    assert list(tmp_path.rglob("*.parquet")) == [], "the file of a row that was never inserted stays behind"
    with pytest.raises(LockTimeout):
        store.publish("AAPL", "returns", PARAMS, frame())


def test_publishing_a_key_twice_keeps_the_first_row_and_removes_the_second_file(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    store = make_store(tmp_path, registry)
    first = store.publish("AAPL", "returns", PARAMS, frame(1.0))
    second = store.publish("AAPL", "returns", PARAMS, frame(2.0))
    assert first.inserted and not second.inserted
    assert second.entry == first.entry
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")] == [first.entry.path]
    assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(3.0))).equals(frame(1.0))


def test_publishing_the_same_bytes_twice_keeps_the_one_file(tmp_path: Path, registry: CollectorRegistry) -> None:
    store = make_store(tmp_path, registry)
    first = store.publish("AAPL", "returns", PARAMS, frame(1.0))
    second = store.publish("AAPL", "returns", PARAMS, frame(1.0))
    assert not second.inserted and second.entry.path == first.entry.path
    assert (tmp_path / first.entry.path).exists()


@pytest.mark.parametrize("symbol", ["../../etc", "a/b", "x\0y", "x" * 10_000, ".."])
def test_symbols_that_could_escape_the_cache_folder_are_rejected_before_anything_is_written(
    tmp_path: Path, registry: CollectorRegistry, symbol: str
) -> None:
    cache = tmp_path / "cache"
    store = make_store(cache, registry)
    compute = Counting(frame())
    with pytest.raises(InvalidName):
        store.get_or_compute(symbol, "returns", PARAMS, compute)
    with pytest.raises(InvalidName):
        store.publish(symbol, "returns", PARAMS, frame())
    with pytest.raises(InvalidName):
        store.publish("AAPL", symbol, PARAMS, frame())
    assert compute.calls == 0
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_the_embedded_default_is_duckdb_in_the_cache_folder(tmp_path: Path, registry: CollectorRegistry) -> None:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path / "unused")
    with FeatureStore.open(cache_dir=tmp_path, settings=settings, instruments=build_instruments(registry)) as store:
        assert store.backend_name == "duckdb"
        assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame())).equals(frame())
        health = store.health()
        assert store.pool_stats() == {"total": 0, "active": 0, "waiting": 0}
        assert store.advisory_locks_held() == 0
    assert (tmp_path / "manifest.duckdb").exists()
    assert health["duckdb"].healthy and health["duckdb"].details["entries"] == 1
    assert (health["postgresql"].status, health["postgresql"].details) == ("not_configured", {"configured": False})
    assert registry.get_sample_value("featurestore_health_check_status", {"component": "duckdb"}) == 1
    assert registry.get_sample_value("featurestore_health_check_status", {"component": "postgresql"}) is None
    assert registry.get_sample_value("manifest_insert_latency_ms_count", {"backend": "duckdb", "symbol": "AAPL"}) == 1


def test_params_that_are_not_json_are_refused_as_invalid_params_before_any_compute(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    store = make_store(tmp_path / "cache", registry)
    compute = Counting(frame())
    with pytest.raises(InvalidParams, match="params must be plain JSON"):
        store.get_or_compute("AAPL", "returns", {"window": float("nan")}, compute)
    assert compute.calls == 0
