"""python -m featurestore.loadtest: drive the real publish path (or a read mix of lookups) and report what it
measured; `make bench` (python -m bench) builds its comparison on the same generator and the same JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg

from featurestore.errors import FeatureStoreError
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.result import LoadResult
from featurestore.loadtest.runner import Progress, run_load
from featurestore.loadtest.schema import scratch_schema
from featurestore.metrics import BACKEND_DUCKDB, BACKEND_POSTGRESQL, BACKENDS

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PROGRESS_AFTER_S = 2.0

DESCRIPTION = """\
Drive FeatureStore.publish (the real path: Parquet file written atomically outside the lock, then lock + manifest
insert in one statement) with N workers, each publishing a new key per operation, and report latencies.

--read-fraction F (0 <= F < 1) makes every operation a FeatureStore.get_or_compute instead: with probability F on a
key the worker published before (a hit: manifest read, Parquet load, sha256 check), else on a new key (a miss:
lookup, compute a small frame, publish it). A worker's first lookup is a miss. The store records hits, misses and
manifest read latencies as in production, so a run feeds the hit-ratio panels and SLOs.

On PostgreSQL the run works in a scratch schema (loadtest_<pid>_…) that it drops afterwards, and writes Parquet files
to a temporary folder unless --cache-dir is given.

The per-symbol vs global lock comparison, with work held inside the lock, is the benchmark's: make bench (python -m
bench --help); --compare, --lock and --hold-ms moved there.
"""

EPILOG = """\
JSON (--json) of a load run, one object on stdout:
  backend, workers, processes, symbols, think_ms, read_fraction
                      the workload (backend: where most inserts went)
  duration_s          start barrier to the last worker's end (operations in flight at the deadline complete)
  operations          completed publishes (warm-up publishes excluded), or with --read-fraction completed lookups;
                      per_worker_operations sums to it
  errors              failed publishes; errors_by_kind (lock_timeout, pool_timeout, unavailable, other) and
                      error_examples (one message per kind)
  duplicates          manifest rows sharing a key or a (symbol, version), counted after the run; must be 0
  not_inserted        publishes whose key already existed (each operation uses new params, so 0)
  inserts             completed inserts: the operations, or with --read-fraction the misses (warm-ups excluded)
  lookups, hits, misses   get_or_compute calls that returned (hits + misses), and how; 0 without --read-fraction
  manifest_reads      manifest lookups the store timed (manifest_read_latency_ms observations; a miss reads twice,
                      before and after taking the key's in-process lock)
  inserts_by_backend  where the inserts went; fallback_inserts counts those that fell back to DuckDB on a
                      PostgreSQL run (PostgreSQL down or out of connections): such a run did not measure PostgreSQL
  throughput_ops_s    operations / duration_s
  insert_latency_ms   {p50, p95, p99} of the manifest insert, lock wait included (InsertOutcome.latency_ms; with
                      --read-fraction the store's manifest_insert_latency_ms observation of each miss)
  lock_waits          advisory-lock waits observed: one per PostgreSQL insert (DuckDB takes no advisory lock), the
                      advisory_lock_wait_time_ms observations of the run
  lock_wait_ms        {p50, p95, p99} of those waits (InsertOutcome.lock_wait_ms; read mix: the store's observation)
  publish_latency_ms  {p50, p95, p99} of the whole publish (Parquet write + insert), measured by the worker (read
                      mix: from the end of compute() to the return of get_or_compute, misses only)
  read_latency_ms     {p50, p95, p99} of the manifest reads the store observed (manifest_read_latency_ms), hits'
                      and misses' alike
  client_cpu_ms_per_op  CPU of the worker processes per operation (threads: of this whole process)
  machine_cpu_ms_per_op, machine_busy_fraction
                      busy CPU of the whole machine per operation (workers, PostgreSQL, the kernel) and the share of
                      its CPUs busy while the workers ran, from /proc/stat; null where there is none (not Linux)
Every {p50, p95, p99} is null when it has no observation (read_latency_ms without --read-fraction, lock_wait_ms on
DuckDB), never 0.
Exit status: 0 after a run (targets missed included), 2 on bad arguments, 1 when the run could not be made.
"""


def build_parser() -> argparse.ArgumentParser:
    """The flags; their values are checked once, by LoadConfig (the service's load runs go through it too)."""
    parser = argparse.ArgumentParser(
        prog="python -m featurestore.loadtest",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--backend", choices=BACKENDS, default=BACKEND_DUCKDB, help="manifest backend (default: duckdb)")
    add("--dsn", help=f"PostgreSQL DSN (default: $FEATURESTORE_PG_DSN, else {DEFAULT_DSN})")
    add("--workers", type=int, default=4, help="concurrent workers (default 4)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--processes",
        action="store_true",
        help="workers are processes, each with its own store and one connection (PostgreSQL only when more than one)",
    )
    mode.add_argument("--threads", dest="processes", action="store_false", help="workers are threads sharing one store")
    add("--duration", type=float, default=5.0, metavar="S", help="seconds to run (default 5)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--symbols", type=int, default=8, metavar="K", help="spread over K symbols (default 8)")
    which.add_argument("--symbol", metavar="NAME", help="every operation on this one symbol (maximum contention)")
    add(
        "--think-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="compute time between two publishes, slept, uniform in 0.5-1.5x (default 0)",
    )
    add(
        "--read-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="0 <= F < 1: every operation is a get_or_compute, a hit on an earlier key with probability F, else a "
        "miss that publishes a new key (default 0: publish only)",
    )
    add(
        "--pool-size",
        type=int,
        default=1,
        metavar="N",
        help="with --processes: connections in each worker's pool (a fleet's processes x N; default 1)",
    )
    add("--cache-dir", type=Path, help="folder for the Parquet files (default: a temporary folder, removed afterwards)")
    add("--json", action="store_true", help="print one JSON object on stdout instead of the text report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    dsn = args.dsn or os.environ.get("FEATURESTORE_PG_DSN") or DEFAULT_DSN
    try:
        config = LoadConfig(
            backend=args.backend,
            dsn=dsn if args.backend == BACKEND_POSTGRESQL else None,
            cache_dir=args.cache_dir,
            workers=args.workers,
            processes=args.processes,
            duration_s=args.duration,
            symbols=args.symbols,
            symbol=args.symbol,
            think_ms=args.think_ms,
            read_fraction=args.read_fraction,
            pool_size=args.pool_size,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        result = _load(config, stderr if config.duration_s > PROGRESS_AFTER_S else None)
    except (RuntimeError, OSError, psycopg.Error, FeatureStoreError) as exc:
        print(f"loadtest: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(_dumps(result.to_json()) if args.json else _summary(result))
    return 0


def _load(config: LoadConfig, progress: Progress | None) -> LoadResult:
    if config.backend != BACKEND_POSTGRESQL:
        return run_load(config, progress=progress)
    assert config.dsn is not None
    with scratch_schema(config.dsn, prefix="loadtest") as dsn:
        return run_load(replace(config, dsn=dsn), progress=progress)


def stderr(line: str) -> None:
    """Progress lines, flushed at once (stdout carries the report or the JSON)."""
    print(line, file=sys.stderr, flush=True)


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False, default=str)


def _summary(result: LoadResult) -> str:
    data = result.to_json()
    insert, wait, read = (_ms(data[name]) for name in ("insert_latency_ms", "lock_wait_ms", "read_latency_ms"))
    kind = "processes" if data["processes"] else "threads"
    lookups = [
        f"lookups {data['lookups']}  hits {data['hits']}  misses {data['misses']}  inserts {data['inserts']}  "
        f"(read fraction {data['read_fraction']:g})",
        f"manifest read ms    {read}  ({data['manifest_reads']} reads)",
    ]
    return "\n".join(
        [
            f"{data['backend']}, {data['workers']} worker {kind}, {data['symbols']} symbols, "
            f"think {data['think_ms']:g} ms, {data['duration_s']:.1f} s",
            f"operations {data['operations']}  errors {data['errors']} {data['errors_by_kind'] or ''}  "
            f"duplicates {data['duplicates']}  fallback inserts {data['fallback_inserts']}  "
            f"throughput {data['throughput_ops_s']:.1f} ops/s",
            f"insert latency ms   {insert}",
            f"lock wait ms        {wait}  ({data['lock_waits']} advisory-lock waits)",
            *(lookups if data["read_fraction"] > 0 else []),
            f"CPU ms per op       {_cpu(data)}",
        ]
    )


def _cpu(data: dict[str, Any]) -> str:
    """The workers' CPU per operation, and the whole machine's (PostgreSQL and the kernel included) where known."""
    client = f"client {data['client_cpu_ms_per_op']:.3f}"
    if data["machine_cpu_ms_per_op"] is None:
        return client
    busy = data["machine_busy_fraction"]
    return f"{client}  machine {data['machine_cpu_ms_per_op']:.3f} ({busy:.0%} of the CPUs busy)"


def _ms(percentiles: dict[str, float | None]) -> str:
    if percentiles["p50"] is None:
        return "p50 -  p95 -  p99 -"
    return "  ".join(f"{name} {percentiles[name]:.3f}" for name in ("p50", "p95", "p99"))
