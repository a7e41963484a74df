"""python -m featurestore.loadtest: drive the real publish path (or a read mix of lookups); --compare per-symbol vs
global locks (make bench)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from featurestore.errors import FeatureStoreError
from featurestore.loadtest.compare import run_compare
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.options import CompareOptions
from featurestore.loadtest.pooler_compare import PoolerOptions
from featurestore.loadtest.probes import scratch_schema
from featurestore.loadtest.report import CompareReport
from featurestore.loadtest.result import LoadResult
from featurestore.loadtest.runner import run_load
from featurestore.manifest.base import LockScope
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

On PostgreSQL the run works in a scratch schema (loadtest_<pid>_…, or bench_… for --compare) that it drops afterwards,
and writes Parquet files to a temporary folder unless --cache-dir is given.

--compare (make bench) runs the same workload with --lock symbol and --lock global in alternating slices (ABBA), plus
an SLO run (per-symbol, no hold), a single worker against a bare psycopg INSERT+COMMIT, the cost of our metrics, the
scrape cost at the symbol cap and store.health() latency under load, and prints each issue-7 target met or missed.
With pgbouncer installed it also runs the per-symbol workload directly and through a local PgBouncer in transaction
mode (server pool 20) side by side, then a fleet through it with more client connections than max_connections.
"""

EPILOG = """\
JSON (--json) of a load run, one object on stdout:
  backend, lock, workers, processes, symbols, hold_ms, think_ms, read_fraction
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
Every {p50, p95, p99} is null when it has no observation (read_latency_ms without --read-fraction, lock_wait_ms on
DuckDB), never 0.
With --compare: {"symbol": <run>, "global": <run>, "ratios": {"throughput": per-symbol/global, "p99": global/per-
symbol}, "slo": <run>, "single_worker", "instrumentation", "scrape", "health_probe", "targets", "workload", "machine",
"pooler": {"server_pool", "direct", "pgbouncer", "fleet": <run> + client_connections, server_connections_peak,
client_wait_ms_peak; "fleet_direct", "skipped"} (null with --no-pooler)}.
Exit status: 0 after a run (targets missed included), 2 on bad arguments, 1 when the run could not be made.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _number(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"must be {'> 0' if positive else '>= 0'}, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text, positive=False)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be < 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, positive=True)


def _non_negative_float(text: str) -> float:
    return _number(text, positive=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m featurestore.loadtest",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--backend", choices=BACKENDS, help="manifest backend (default: duckdb; postgresql with --compare)")
    add("--dsn", help=f"PostgreSQL DSN (default: $FEATURESTORE_PG_DSN, else {DEFAULT_DSN})")
    add("--workers", type=_positive_int, help="concurrent workers (default 4; --compare 64)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--processes",
        action="store_true",
        default=None,
        help="workers are processes, each with its own store and "
        "one connection (PostgreSQL only when more than one; default with --compare)",
    )
    mode.add_argument("--threads", dest="processes", action="store_false", help="workers are threads sharing one store")
    add("--duration", type=_positive_float, metavar="S", help="seconds to run (default 5; --compare 20 per lock)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--symbols", type=_positive_int, metavar="K", help="spread over K symbols (default 8; --compare 64)"
    )
    which.add_argument("--symbol", metavar="NAME", help="every operation on this one symbol (maximum contention)")
    add(
        "--hold-ms",
        type=_non_negative_float,
        metavar="MS",
        help="extra work held inside the lock, server side (default 0; --compare 5)",
    )
    add(
        "--think-ms",
        type=_non_negative_float,
        metavar="MS",
        help="compute time between two publishes, slept, uniform in 0.5-1.5x (default 0; --compare 100)",
    )
    add(
        "--lock",
        choices=[scope.value for scope in LockScope],
        default=LockScope.SYMBOL.value,
        help="advisory key: per symbol, or one shared key (the baseline) (default symbol)",
    )
    add(
        "--read-fraction",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="0 <= F < 1: every operation is a get_or_compute, a hit on an earlier key with probability F, else a "
        "miss that publishes a new key (default 0: publish only; needs --lock symbol and no --hold-ms)",
    )
    add(
        "--pool-size",
        type=_positive_int,
        default=1,
        metavar="N",
        help="with --processes: connections in each worker's pool (a fleet's processes x N; default 1)",
    )
    add("--cache-dir", type=Path, help="folder for the Parquet files (default: a temporary folder, removed afterwards)")
    add("--json", action="store_true", help="print one JSON object on stdout instead of the text report")
    add("--compare", action="store_true", help="per-symbol vs global side by side on PostgreSQL (what make bench runs)")
    add("--slices", type=_positive_int, default=2, help="--compare: alternating slices per lock (default 2: ABBA)")
    add("--no-slo-run", dest="slo_run", action="store_false", help="--compare: skip the SLO run (per-symbol, no hold)")
    add(
        "--no-throughput-run",
        dest="throughput_run",
        action="store_false",
        help="--compare: skip the throughput workload (the same slices with no think time)",
    )
    add("--service-url", metavar="URL", help="--compare: also probe URL/api/v1/monitoring/health during the load")
    add("--no-pooler", dest="pooler", action="store_false", help="--compare: skip the direct vs PgBouncer comparison")
    add("--fleet", type=_fleet, default=(40, 4), metavar="PxN",
        help="--compare: the fleet run through PgBouncer, P processes x pool N (default 40x4)")  # fmt: skip
    return parser


def _fleet(text: str) -> tuple[int, int]:
    processes, _, pool = text.lower().partition("x")
    try:
        return _positive_int(processes), _positive_int(pool)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"expected PROCESSESxPOOL such as 40x4, got {text!r} ({exc})") from None


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    dsn = args.dsn or os.environ.get("FEATURESTORE_PG_DSN") or DEFAULT_DSN
    run: Callable[[], LoadResult | CompareReport]
    try:
        if args.compare:
            if args.backend == BACKEND_DUCKDB:
                parser.error("--compare needs --backend postgresql: advisory locks are PostgreSQL's")
            if args.symbol is not None or args.lock != LockScope.SYMBOL.value:
                parser.error("--compare runs both locks over --symbols; drop --symbol and --lock")
            if args.read_fraction > 0:
                parser.error("--compare measures the publish path; drop --read-fraction")
            options = CompareOptions(
                dsn=dsn,
                workers=_pick(args.workers, 64),
                processes=_pick(args.processes, True),
                duration_s=_pick(args.duration, 20.0),
                symbols=_pick(args.symbols, 64),
                think_ms=_pick(args.think_ms, 100.0),
                hold_ms=_pick(args.hold_ms, 5.0),
                slices=args.slices,
                slo_run=args.slo_run,
                throughput_run=args.throughput_run,
                service_url=args.service_url,
                pooler=PoolerOptions(fleet_workers=args.fleet[0], fleet_pool_size=args.fleet[1])
                if args.pooler
                else None,
            )
            run = partial(run_compare, options, progress=_stderr)
        else:
            backend = _pick(args.backend, BACKEND_DUCKDB)
            config = LoadConfig(
                backend=backend,
                dsn=dsn if backend == BACKEND_POSTGRESQL else None,
                cache_dir=args.cache_dir,
                workers=_pick(args.workers, 4),
                processes=_pick(args.processes, False),
                duration_s=_pick(args.duration, 5.0),
                symbols=_pick(args.symbols, 8),
                symbol=args.symbol,
                hold_ms=_pick(args.hold_ms, 0.0),
                think_ms=_pick(args.think_ms, 0.0),
                lock=LockScope(args.lock),
                read_fraction=args.read_fraction,
                pool_size=args.pool_size,
            )
            run = partial(_load, config, _stderr if config.duration_s > PROGRESS_AFTER_S else None)
    except ValueError as exc:
        parser.error(str(exc))
    return _finish(run, args.json)


def _finish(run: Callable[[], LoadResult | CompareReport], as_json: bool) -> int:
    """Run, then print the JSON object or the text report on stdout; progress and failures go to stderr."""
    try:
        outcome = run()
    except (RuntimeError, OSError, psycopg.Error, FeatureStoreError) as exc:
        print(f"loadtest: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if isinstance(outcome, LoadResult):
        print(_dumps(outcome.to_json()) if as_json else _summary(outcome))
    else:
        print(_dumps(outcome.to_json()) if as_json else outcome.render())
    return 0


def _load(config: LoadConfig, progress: Callable[[str], None] | None) -> LoadResult:
    if config.backend != BACKEND_POSTGRESQL:
        return run_load(config, progress=progress)
    assert config.dsn is not None
    with scratch_schema(config.dsn, prefix="loadtest") as dsn:
        return run_load(replace(config, dsn=dsn), progress=progress)


def _stderr(line: str) -> None:
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
            f"{data['backend']}, {data['lock']} lock, {data['workers']} worker {kind}, {data['symbols']} symbols, "
            f"think {data['think_ms']:g} ms, hold {data['hold_ms']:g} ms, {data['duration_s']:.1f} s",
            f"operations {data['operations']}  errors {data['errors']} {data['errors_by_kind'] or ''}  "
            f"duplicates {data['duplicates']}  fallback inserts {data['fallback_inserts']}  "
            f"throughput {data['throughput_ops_s']:.1f} ops/s",
            f"insert latency ms   {insert}",
            f"lock wait ms        {wait}  ({data['lock_waits']} advisory-lock waits)",
            *(lookups if data["read_fraction"] > 0 else []),
        ]
    )


def _ms(percentiles: dict[str, float | None]) -> str:
    if percentiles["p50"] is None:
        return "p50 -  p95 -  p99 -"
    return "  ".join(f"{name} {percentiles[name]:.3f}" for name in ("p50", "p95", "p99"))


if __name__ == "__main__":
    sys.exit(main())
