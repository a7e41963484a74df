"""python -m bench (make bench): per-symbol vs global advisory locks side by side on PostgreSQL, with the side
measurements and the pooler comparison; `python -m bench.profile` is the flame graph (make profile)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import psycopg

from bench.compare import run_compare
from bench.floor import FloorOptions, FloorReport, run_floor
from bench.options import CompareOptions
from bench.pgbench import pgbench_path
from bench.pooler_compare import PoolerOptions
from bench.report import CompareReport
from featurestore.errors import FeatureStoreError
from featurestore.loadtest.cli import DEFAULT_DSN, EPILOG, stderr

DESCRIPTION = """\
Drive FeatureStore.publish with N worker processes (python -m featurestore.loadtest does one run), each publishing a
new key per operation, with --lock symbol and --lock global in alternating slices (ABBA), plus an SLO run
(per-symbol, no hold), a single worker against a bare psycopg INSERT+COMMIT, the cost of our metrics, the scrape
cost at the symbol cap and store.health() latency under load, and print each target met or missed.

The global baseline and the hold are the benchmark's (bench/held_lock.py): its own insert function in the scratch
schema (bench_…) takes one shared advisory key as well as the symbol's and sleeps --hold-ms inside the lock, in the
same single round trip as production's insert; the SLO run uses production's insert unchanged.

Then the floor (bench/floor.py): pgbench running the publish's own statement next to the production publish path
and the same workers at 90 % hits, in alternating rounds, with the share production/pgbench and a hit's client CPU.

With pgbouncer installed it also runs the per-symbol workload directly and through a local PgBouncer in transaction
mode (server pool 20) side by side, then a fleet through it with more client connections than max_connections.
"""

BENCH_EPILOG = """\
JSON (--json): {"symbol": <run>, "global": <run>, "ratios": {"throughput": per-symbol/global, "p99": global/per-
symbol}, "slo": <run>, "single_worker", "instrumentation", "scrape", "health_probe", "targets", "workload", "machine",
"pooler": {"server_pool", "direct", "pgbouncer", "fleet": <run> + client_connections, server_connections_peak,
client_wait_ms_peak; "fleet_direct", "skipped"} (null with --no-pooler), "floor": {"pgbench_tps", "publish": <run>,
"reads": <run>, "share", "hit_client_cpu_ms", "hit_rate_ratio", "load_averages", …} (null with --floor-rounds 0)}.
Each <run> is the JSON of python -m featurestore.loadtest, with "lock" and "hold_ms" added in the lock runs:

"""


FLOOR_SHARE = 0.4  # a floor slice against a lock scope's --duration
QUICK_DURATION_S = 8.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=DESCRIPTION,
        epilog=BENCH_EPILOG + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--dsn", help=f"PostgreSQL DSN (default: $FEATURESTORE_PG_DSN, else {DEFAULT_DSN})")
    add("--workers", type=int, default=64, help="concurrent workers (default 64)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--processes", action="store_true", default=True, help="workers are processes, one store each (default)"
    )
    mode.add_argument("--threads", dest="processes", action="store_false", help="workers are threads sharing one store")
    add("--duration", type=float, default=20.0, metavar="S", help="seconds per lock scope (default 20)")
    add("--symbols", type=int, default=64, metavar="K", help="spread over K symbols (default 64)")
    add("--hold-ms", type=float, default=5.0, metavar="MS", help="work held inside the lock, server side (default 5)")
    add(
        "--think-ms",
        type=float,
        default=100.0,
        metavar="MS",
        help="compute time between two publishes, slept, uniform in 0.5-1.5x (default 100)",
    )
    add("--json", action="store_true", help="print one JSON object on stdout instead of the text report")
    add("--compare", action="store_true", help=argparse.SUPPRESS)  # what `make bench` passed before bench/ existed
    add("--slices", type=int, default=2, help="alternating slices per lock (default 2: ABBA)")
    add("--no-slo-run", dest="slo_run", action="store_false", help="skip the SLO run (per-symbol, no hold)")
    add(
        "--no-throughput-run",
        dest="throughput_run",
        action="store_false",
        help="skip the throughput workload (the same slices with no think time)",
    )
    add("--service-url", metavar="URL", help="also probe URL/api/v1/monitoring/health during the load")
    add("--scrape-processes", type=int, default=64, metavar="N",
        help="live processes' metrics files in the fleet scrape probe (default 64)")  # fmt: skip
    add("--ended-processes", type=int, default=1000, metavar="N",
        help="ended processes' metrics files in the churn scrape probe (default 1000)")  # fmt: skip
    add("--no-pooler", dest="pooler", action="store_false", help="skip the direct vs PgBouncer comparison")
    add("--fleet", type=_fleet, default=(40, 4), metavar="PxN",
        help="the fleet run through PgBouncer, P processes x pool N (default 40x4)")  # fmt: skip
    add("--floor-rounds", type=int, default=2, metavar="N",
        help="floor rounds of pgbench, publish and 90%% hits (default 2; 0 skips the floor)")  # fmt: skip
    add("--floor-slice", type=float, metavar="S",
        help="seconds per floor slice (default: 0.4 x --duration, at least 1: 8 s by default)")  # fmt: skip
    add("--floor-only", action="store_true", help="run the floor alone (no lock comparison)")
    add("--quick", action="store_true",
        help=f"a shorter run: --duration {QUICK_DURATION_S:g} at most, --no-pooler, one floor round")  # fmt: skip
    return parser


def _fleet(text: str) -> tuple[int, int]:
    processes, _, pool = text.lower().partition("x")
    try:
        sizes = int(processes), int(pool)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PROCESSESxPOOL such as 40x4, got {text!r}") from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected PROCESSESxPOOL, each >= 1, got {text!r}")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.pooler = min(args.duration, QUICK_DURATION_S), False
        args.floor_rounds = min(args.floor_rounds, 1)
    try:
        options = CompareOptions(
            dsn=args.dsn or os.environ.get("FEATURESTORE_PG_DSN") or DEFAULT_DSN,
            workers=args.workers,
            processes=args.processes,
            duration_s=args.duration,
            symbols=args.symbols,
            think_ms=args.think_ms,
            hold_ms=args.hold_ms,
            slices=args.slices,
            slo_run=args.slo_run,
            throughput_run=args.throughput_run,
            service_url=args.service_url,
            scrape_processes=args.scrape_processes,
            ended_processes=args.ended_processes,
            pooler=PoolerOptions(fleet_workers=args.fleet[0], fleet_pool_size=args.fleet[1]) if args.pooler else None,
        )
    except ValueError as exc:
        parser.error(str(exc))
    floor = None
    try:
        if args.floor_rounds > 0:
            floor = FloorOptions(
                dsn=options.dsn, workers=args.workers, symbols=args.symbols, rounds=args.floor_rounds,
                slice_s=args.floor_slice if args.floor_slice is not None else max(1.0, FLOOR_SHARE * args.duration),
            )  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    if args.floor_only and floor is None:
        parser.error("--floor-only needs --floor-rounds >= 1")
    if floor is not None and pgbench_path() is None:
        if args.floor_only:
            parser.error("the floor needs pgbench (apt-get install postgresql-client)")
        print("bench: pgbench is not installed: the floor is skipped", file=sys.stderr)
        floor = None
    try:
        report = None if args.floor_only else run_compare(options, progress=stderr)
        floor_report = run_floor(floor, progress=stderr) if floor is not None else None
    except (RuntimeError, OSError, psycopg.Error, FeatureStoreError) as exc:
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(_dumps(_document(report, floor_report)) if args.json else _text(report, floor_report))
    return 0


def _document(report: CompareReport | None, floor: FloorReport | None) -> dict[str, Any]:
    document = report.to_json() if report is not None else {}
    document["floor"] = floor.to_json() if floor is not None else None
    return document


def _text(report: CompareReport | None, floor: FloorReport | None) -> str:
    parts = [report.render()] if report is not None else []
    if floor is not None:
        parts.append(floor.render())
    return "\n\n".join(parts)


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False, default=str)


if __name__ == "__main__":
    sys.exit(main())
