"""make bench (python -m bench): the ABBA slice order, the global-lock baseline built on the benchmark's own insert
function, and the comparison's JSON. Never timing assertions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from bench.__main__ import main
from bench.compare import frame_file_system_ms, slice_order
from bench.held_lock import HeldLockStores, LockScope
from featurestore.loadtest import LoadConfig, run_load
from tests.featurestore.test_loadtest import RUN_FIELDS, assert_consistent, manifest_rows


def test_slices_alternate_abba_so_drift_hits_both_locks() -> None:
    s, g = LockScope.SYMBOL, LockScope.GLOBAL
    assert slice_order(1) == [s, g]
    assert slice_order(2) == [s, g, g, s]
    assert slice_order(3) == [s, g, g, s, s, g]


def test_the_file_system_probe_writes_its_frames_as_a_publish_does(tmp_path: Path) -> None:
    cost = frame_file_system_ms(tmp_path, files=20)
    assert cost >= 0.0
    written = sorted(tmp_path.rglob("*.parquet"))
    assert len(written) == 20 and all(path.stat().st_size > 0 for path in written)
    assert not [path for path in tmp_path.rglob("*") if path.is_file() and path.suffix != ".parquet"]


@pytest.mark.postgres
def test_the_global_lock_serializes_every_insert_and_still_loses_nothing(pg_schema_dsn: str) -> None:
    config = LoadConfig(backend="postgresql", dsn=pg_schema_dsn, workers=4, duration_s=1.0, symbols=4)
    result = run_load(config, open_stores=HeldLockStores(LockScope.GLOBAL, hold_ms=2.0))
    assert_consistent(result)
    assert manifest_rows(pg_schema_dsn) == result.operations + config.workers
    # Each insert held the one global key for 2 ms, so the inserts could not overlap.
    assert result.operations * 2.0 <= result.duration_s * 1000.0


@pytest.mark.postgres
def test_compare_json_has_both_locks_their_ratios_and_every_target(
    pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A small run of the whole benchmark, its pooler part included (a 2x2 fleet: make bench runs 40x4), one slice per
    # lock (the ABBA order is the unit test's above), its scrape probes on a few processes' files (make bench: 64 live,
    # 1,000 ended) and one floor round.
    argv = ["--json", "--workers", "4", "--duration", "1", "--symbols", "8", "--fleet", "2x2", "--dsn", pg_dsn]
    argv += ["--slices", "1", "--scrape-processes", "4", "--ended-processes", "20", "--floor-rounds", "1"]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    runs = [document[scope] for scope in ("symbol", "global", "slo")]
    runs += [document["throughput_workload"][scope] for scope in ("symbol", "global")]
    for run in runs:
        assert RUN_FIELDS <= run.keys()
        assert run["errors"] == 0 and run["duplicates"] == 0 and run["fallback_inserts"] == 0
        assert run["operations"] == sum(run["per_worker_operations"])
        assert run["workers"] == 4 and run["processes"] is True
    assert document["symbol"]["lock"] == "symbol" and document["global"]["lock"] == "global"
    assert document["symbol"]["hold_ms"] == document["global"]["hold_ms"] == 5.0 and document["slo"]["hold_ms"] == 0
    assert document["symbol"]["think_ms"] == 100 and document["throughput_workload"]["symbol"]["think_ms"] == 0
    assert set(document["ratios"]) >= {"throughput", "p99", "throughput_no_think"}
    assert float(document["machine"]["frame_file_system_ms"]) >= 0.0
    # On Linux the throughput workload says how close it came to the machine's CPU, and what 8x would need.
    ceiling = document["ratios"]["throughput_no_think_cpu_ceiling"]
    assert 0 < ceiling["busy_fraction"] <= 1 and ceiling["needed_machine_cpu_ms_per_op"] > 0
    assert ceiling["machine_cpu_ms_per_op"] == document["throughput_workload"]["symbol"]["machine_cpu_ms_per_op"]
    assert {target["name"] for target in document["targets"]} >= {
        "p99 ratio global/per-symbol",
        "throughput ratio per-symbol/global",
        "errors + duplicates + fallbacks (lock runs)",
        "single worker p95 / bare INSERT p95",
        "single worker client CPU per publish",
        "metrics cost / uncontended insert",
        "scrape at the symbol cap, postgresql p95",
        "scrape at the symbol cap, postgresql+duckdb p95",
        "store.health() p99 under load",
    }
    assert "compare: slice 2/2" in captured.err and "compare: throughput slice 2/2" in captured.err
    floor = document["floor"]
    assert floor["pgbench_tps"] > 0 and floor["publish"]["operations"] > 0 and floor["reads"]["operations"] > 0
    assert floor["share"] > 0 and floor["hit_client_cpu_ms"] > 0 and floor["hit_rate_ratio"] > 0
    with psycopg.connect(pg_dsn) as conn:
        pattern = f"bench\\_{os.getpid()}\\_%"
        left = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", [pattern]).fetchone()
    assert left == (0,)  # every scratch schema was dropped
