"""The load generator's invariants on the real store (DuckDB and PostgreSQL): counts add up, nothing is lost or
duplicated, percentiles are ordered, the JSON has its documented shape. Never timing assertions."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from featurestore import FeatureStore, metrics
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.loadtest import LoadConfig, LoadResult, Percentiles, run_load
from featurestore.loadtest.cli import main
from featurestore.loadtest.config import FEATURE
from featurestore.loadtest.observed import Observed, ObservedInstruments
from featurestore.loadtest.result import percentile
from featurestore.loadtest.runner import NotEnoughConnections

RUN_FIELDS = {
    "backend", "workers", "operations", "errors", "duplicates", "throughput_ops_s", "insert_latency_ms",
    "lock_wait_ms", "client_cpu_ms_per_op", "machine_cpu_ms_per_op", "machine_busy_fraction",
}  # fmt: skip


READ_FIELDS = {"read_fraction", "lookups", "hits", "misses", "inserts", "manifest_reads", "read_latency_ms"}


def assert_consistent(result: LoadResult) -> None:
    """What every healthy run satisfies, whatever the machine's speed."""
    assert result.operations > 0
    assert result.operations == sum(result.per_worker_operations)
    assert len(result.per_worker_operations) == result.config.workers
    assert result.errors == 0, result.samples.error_examples
    assert result.duplicates == 0
    assert result.samples.not_inserted == 0
    assert result.fallback_inserts == 0
    for percentiles in (result.insert_latency_ms, result.lock_wait_ms, result.publish_latency_ms):
        assert 0 <= percentiles.p50 <= percentiles.p95 <= percentiles.p99
    assert result.throughput_ops_s == pytest.approx(result.operations / result.duration_s)
    document = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert RUN_FIELDS <= document.keys()
    assert set(document["insert_latency_ms"]) == set(document["lock_wait_ms"]) == {"p50", "p95", "p99"}
    assert document["operations"] == result.operations
    # Lock waits are those the store observes, PostgreSQL inserts only; no observation is null, never 0.
    assert document["lock_waits"] == len(result.samples.lock_wait_ms) == result.samples.backends["postgresql"]
    if document["lock_waits"] == 0:
        assert document["lock_wait_ms"] == {"p50": None, "p95": None, "p99": None}
    if document["manifest_reads"] == 0:
        assert document["read_latency_ms"] == {"p50": None, "p95": None, "p99": None}


def manifest_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM manifest_entries WHERE feature = %s", [FEATURE]).fetchone()
    assert row is not None
    return int(row[0])


def histogram_count(registry: CollectorRegistry, name: str) -> float:
    """The `_count` of a histogram summed over all label sets."""
    total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == f"{name}_count":
                total += sample.value
    return total


def test_percentiles_interpolate_linearly_and_are_zero_without_samples() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([4.0], 50) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert Percentiles.of([5.0, 1.0, 3.0]) == Percentiles(3.0, pytest.approx(4.8), pytest.approx(4.96))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, "workers"),
        ({"duration_s": 0}, "duration_s"),
        ({"think_ms": float("nan")}, "think_ms"),
        ({"symbols": 0}, "symbols"),
        ({"symbol": "../etc"}, "symbol"),
        ({"backend": "sqlite"}, "backend"),
        ({"backend": "postgresql"}, "dsn"),
        ({"processes": True, "workers": 2}, "DuckDB file has one writer process"),
    ],
    ids=lambda value: str(value),
)
def test_a_bad_config_is_refused_naming_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadConfig(**changes)


def test_thread_workers_on_duckdb_count_every_publish_once(tmp_path: Path) -> None:
    config = LoadConfig(backend="duckdb", cache_dir=tmp_path, workers=3, duration_s=0.5, symbols=2)
    result = run_load(config)
    assert_consistent(result)
    assert result.backend == "duckdb"
    with FeatureStore.open(None, tmp_path) as store:
        rows = sum(1 for entry in store.entries() if entry.feature == FEATURE)
    assert rows == result.operations + config.workers  # one unmeasured warm-up publish per worker


@pytest.mark.postgres
def test_process_workers_on_postgresql_lose_and_duplicate_nothing(pg_schema_dsn: str, instruments: Any) -> None:
    config = LoadConfig(backend="postgresql", dsn=pg_schema_dsn, workers=4, processes=True, duration_s=1.0, symbols=3)
    result = run_load(config, instruments=instruments)
    assert_consistent(result)
    assert result.backend == "postgresql"
    assert manifest_rows(pg_schema_dsn) == result.operations + config.workers
    # The parent replayed the workers' observations into its own instruments, as the service's Prometheus sees them.
    assert histogram_count(instruments.registry, metrics.MANIFEST_INSERT_LATENCY.name) == result.operations
    assert histogram_count(instruments.registry, metrics.ADVISORY_LOCK_WAIT.name) == result.operations


@pytest.mark.postgres
def test_a_given_store_records_the_run_in_its_instruments_in_both_modes(
    pg_schema_dsn: str, tmp_path: Path, instruments: Any
) -> None:
    name = metrics.MANIFEST_INSERT_LATENCY.name
    with FeatureStore.open(pg_schema_dsn, tmp_path / "service", instruments=instruments) as store:
        threads = run_load(LoadConfig(backend="postgresql", dsn=pg_schema_dsn, workers=2, duration_s=0.5), store=store)
        assert_consistent(threads)
        recorded = histogram_count(instruments.registry, name)
        assert recorded == threads.operations + 2  # the store itself observed the warm-ups too
        # Process mode beside a live store: the parent has threads, so the workers come from a clean forkserver.
        processes = run_load(
            LoadConfig(backend="postgresql", dsn=pg_schema_dsn, workers=2, processes=True, duration_s=0.5), store=store
        )
        assert_consistent(processes)
        assert histogram_count(instruments.registry, name) == recorded + processes.operations


def counter_total(registry: CollectorRegistry, name: str) -> float:
    """A counter's `…_total` samples summed over all label sets."""
    return sum(sample.value for family in registry.collect() for sample in family.samples if sample.name == name)


def assert_read_mix(result: LoadResult, registry: CollectorRegistry, rows: int) -> None:
    """A read-mix run: every operation a lookup, every miss one insert and one row, the registry agreeing."""
    assert_consistent(result)
    samples = result.samples
    assert samples.hits + samples.misses == samples.lookups == result.operations
    assert samples.misses == samples.inserts == rows - result.config.workers  # one warm-up publish per worker
    assert samples.hits > 0
    assert samples.misses >= result.config.workers  # a worker's first lookup is a miss
    assert counter_total(registry, metrics.HITS.name) == samples.hits
    assert counter_total(registry, metrics.MISSES.name) == samples.misses
    # The store times each manifest read; the result pools exactly those observations. A hit on a key the worker
    # published asks the manifest nothing (featurestore/verified.py): one read per miss.
    assert histogram_count(registry, metrics.MANIFEST_READ_LATENCY.name) == len(samples.read_ms) == samples.misses
    assert 0 <= result.read_latency_ms.p50 <= result.read_latency_ms.p95 <= result.read_latency_ms.p99
    assert result.read_latency_ms.p99 > 0
    document = result.to_json()
    assert (document["lookups"], document["hits"], document["misses"]) == (
        samples.lookups,
        samples.hits,
        samples.misses,
    )
    assert document["inserts"] == samples.misses
    assert set(document["read_latency_ms"]) == {"p50", "p95", "p99"}


def test_a_read_mix_on_duckdb_threads_hits_earlier_keys_and_inserts_only_its_misses(
    tmp_path: Path, instruments: Any
) -> None:
    config = LoadConfig(cache_dir=tmp_path, workers=3, duration_s=1.0, symbols=2, read_fraction=0.8)
    result = run_load(config, instruments=instruments)
    with FeatureStore.open(None, tmp_path) as store:
        rows = sum(1 for entry in store.entries() if entry.feature == FEATURE)
    assert_read_mix(result, instruments.registry, rows)
    assert histogram_count(instruments.registry, metrics.MANIFEST_INSERT_LATENCY.name) == rows  # warm-ups included


@pytest.mark.postgres
def test_a_read_mix_in_postgresql_processes_streams_hits_misses_and_reads_to_the_parent(
    pg_schema_dsn: str, instruments: Any
) -> None:
    config = LoadConfig(
        backend="postgresql", dsn=pg_schema_dsn, workers=3, processes=True, duration_s=1.0, symbols=2, read_fraction=0.8
    )
    result = run_load(config, instruments=instruments)
    assert result.backend == "postgresql"
    assert_read_mix(result, instruments.registry, manifest_rows(pg_schema_dsn))
    # Warm-ups are the workers' own; the parent replays the measured inserts, each with its lock wait.
    assert histogram_count(instruments.registry, metrics.MANIFEST_INSERT_LATENCY.name) == result.samples.misses
    assert histogram_count(instruments.registry, metrics.ADVISORY_LOCK_WAIT.name) == result.samples.misses


@pytest.mark.postgres
def test_a_read_mix_through_a_given_store_is_recorded_by_it_and_leaves_its_instruments_as_they_were(
    pg_schema_dsn: str, tmp_path: Path, instruments: Any
) -> None:
    with FeatureStore.open(pg_schema_dsn, tmp_path, instruments=instruments) as store:
        config = LoadConfig(backend="postgresql", dsn=pg_schema_dsn, workers=2, duration_s=1.0, read_fraction=0.8)
        result = run_load(config, store=store)
        assert store.instruments is instruments
    assert_read_mix(result, instruments.registry, manifest_rows(pg_schema_dsn))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"read_fraction": 1.0}, "read_fraction must be < 1"),
        ({"read_fraction": -0.1}, "read_fraction must be >= 0"),
        ({"read_fraction": True}, "read_fraction must be a finite number"),
    ],
    ids=lambda value: str(value),
)
def test_a_read_fraction_out_of_range_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadConfig(**changes)


def test_without_a_read_fraction_a_run_publishes_only_and_reports_no_lookups(tmp_path: Path, instruments: Any) -> None:
    result = run_load(LoadConfig(cache_dir=tmp_path, workers=2, duration_s=0.3), instruments=instruments)
    assert_consistent(result)
    document = result.to_json()
    assert (document["read_fraction"], document["lookups"], document["hits"], document["misses"]) == (0.0, 0, 0, 0)
    assert document["inserts"] == document["operations"]
    assert histogram_count(instruments.registry, metrics.MANIFEST_READ_LATENCY.name) == 0


def test_setting_stop_ends_a_run_before_its_duration(tmp_path: Path) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    try:
        result = run_load(LoadConfig(cache_dir=tmp_path, workers=2, duration_s=60.0), stop=stop)
    finally:
        timer.cancel()
    assert result.duration_s < 60.0
    assert result.operations == sum(result.per_worker_operations)


def test_the_cli_runs_a_read_mix_and_reports_its_lookups(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["--json", "--duration", "0.5", "--workers", "2", "--read-fraction", "0.5", "--cache-dir", str(tmp_path)]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert RUN_FIELDS | READ_FIELDS <= document.keys()
    assert document["read_fraction"] == 0.5
    assert document["hits"] + document["misses"] == document["lookups"] == document["operations"] > 0
    assert document["inserts"] == document["misses"]


def test_the_cli_prints_one_json_object_on_stdout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["--json", "--duration", "0.3", "--workers", "2", "--symbol", "TEST_CONTENTION"]
    argv += ["--cache-dir", str(tmp_path)]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0
    document = json.loads(captured.out)
    assert RUN_FIELDS <= document.keys()
    assert document["symbols"] == 1
    assert document["operations"] == sum(document["per_worker_operations"])
    assert captured.err == ""  # progress is only printed on runs over 2 s


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "workers must be an integer from 1 to 1024, got 0"),
        (["--duration", "-1"], "duration_s must be > 0"),
        (["--think-ms", "x"], "invalid float value"),
        (["--backend", "sqlite"], "invalid choice"),
        (["--symbols", "2", "--symbol", "A"], "not allowed with"),
        (["--symbol", "../x"], "symbol"),
        (["--processes", "--workers", "2"], "needs PostgreSQL|one writer process"),
        (["--read-fraction", "1"], "read_fraction must be < 1"),
        (["--read-fraction", "-0.5"], "read_fraction must be >= 0"),
        # The benchmark's knobs are make bench's (python -m bench), not the load generator's.
        (["--compare"], "unrecognized arguments: --compare"),
        (["--hold-ms", "2"], "unrecognized arguments: --hold-ms"),
        (["--lock", "global"], "unrecognized arguments: --lock"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_the_cli_refuses_bad_arguments_with_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_the_help_explains_every_flag_and_the_json_fields(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--backend", "--dsn", "--workers", "--processes", "--duration", "--symbols", "--symbol", "--think-ms",
                 "--read-fraction", "--pool-size", "--cache-dir", "--json"):  # fmt: skip
        assert flag in text
    for field in RUN_FIELDS | READ_FIELDS:
        assert field in text


@pytest.mark.postgres
def test_a_run_postgresql_cannot_take_is_refused_before_any_worker_starts(
    pg_schema_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = LoadConfig(backend="postgresql", dsn=pg_schema_dsn, workers=1000, processes=True, duration_s=60.0)
    with pytest.raises(NotEnoughConnections, match="max_connections"):
        run_load(config)
    code = main(["--backend", "postgresql", "--dsn", pg_schema_dsn, "--processes", "--workers", "1000"])
    assert code == 1
    assert "NotEnoughConnections" in capsys.readouterr().err


def test_observed_instruments_copy_only_the_observing_threads_calls_and_record_them_as_usual() -> None:
    registry = CollectorRegistry()
    for inner in (build_instruments(registry), Instruments.disabled()):
        instruments = ObservedInstruments(inner)
        other = threading.Thread(target=instruments.observe_read, args=("duckdb", "OTHER", 9.0))
        with instruments.observe() as observed:
            instruments.observe_read("postgresql", "AAPL", 1.5)
            instruments.observe_insert("postgresql", "AAPL", 2.5)
            instruments.observe_lock_wait("AAPL", 0.5)
            instruments.count_insert_error("postgresql", "lock_timeout")
            other.start()
            other.join()
        instruments.observe_read("postgresql", "AAPL", 7.0)  # after the block: not copied
        assert observed == Observed(
            reads=[("postgresql", 1.5)], inserts=[("postgresql", 2.5)], lock_waits=[0.5], insert_errors=["lock_timeout"]
        )
    # The live ones recorded every call, the other thread's and the later one included, on the same series.
    labels = {"backend": "postgresql", "symbol": "AAPL"}
    assert registry.get_sample_value("manifest_read_latency_ms_count", labels) == 2.0
    assert registry.get_sample_value("manifest_read_latency_ms_count", {"backend": "duckdb", "symbol": "OTHER"}) == 1.0
