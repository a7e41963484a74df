"""`make bench`'s floor: how close the production publish path comes to PostgreSQL's own speed, and what a hit costs.

In one scratch schema (`floor_<pid>_…`, dropped afterwards with every row both sides inserted), each round runs
pgbench with the publish's own statement (bench/pgbench.py) on as many clients as there are workers, then the
production publish path (`run_load`: worker processes publishing new keys with no think time), then the same workers
at 90 % hits (`get_or_compute` on keys they published before); rounds alternate so that drift of a shared machine
hits all three. The share is production publishes/s over pgbench transactions/s.

A hit's client CPU is measured apart, in this process (`time.process_time`): a store publishes `HIT_KEYS` frames,
then looks them up round robin; every lookup is a hit on a frame this process verified (featurestore/verified.py).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from bench.pgbench import FEATURE, PgbenchRun, run_pgbench
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.result import LoadResult, merge
from featurestore.loadtest.runner import SPARE_CONNECTIONS, check_connections, run_load
from featurestore.loadtest.schema import scratch_schema
from featurestore.loadtest.worker import frame, open_store
from featurestore.manifest import pg_schema
from featurestore.metrics import BACKEND_POSTGRESQL

Progress = Callable[[str], None]
CONNECTION_WAIT_S = 180.0
HIT_KEYS = 200
HIT_LOOKUPS = 3000
# The goals this section reports against (the performance page explains them).
SHARE_GOAL = 0.5
HIT_CPU_GOAL_MS = 0.3
HIT_RATE_GOAL = 3.0


@dataclass(frozen=True)
class FloorOptions:
    """The floor's workload: the benchmark's workers and symbols, `rounds` rounds of `slice_s` seconds per side."""

    dsn: str
    workers: int = 64
    symbols: int = 64
    slice_s: float = 8.0
    rounds: int = 2
    read_fraction: float = 0.9

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.slice_s <= 0:
            raise ValueError(f"floor rounds must be >= 1 and slices > 0 s, got {self.rounds} x {self.slice_s}")

    def load(self, dsn: str, **changes: Any) -> LoadConfig:
        config = LoadConfig(
            backend=BACKEND_POSTGRESQL, dsn=dsn, workers=self.workers, processes=True, duration_s=self.slice_s,
            symbols=self.symbols,
        )  # fmt: skip
        return replace(config, **changes)


@dataclass(frozen=True)
class FloorReport:
    """pgbench's rounds, production's publish and read-mix slices merged, a hit's client CPU, the load averages."""

    options: FloorOptions
    pgbench: tuple[PgbenchRun, ...]
    publish: LoadResult
    reads: LoadResult
    hit_cpu_ms: float
    load_averages: tuple[str, ...]  # /proc/loadavg before each round and at the end

    @property
    def pgbench_tps(self) -> float:
        return sum(run.transactions for run in self.pgbench) / (self.options.slice_s * len(self.pgbench))

    @property
    def share(self) -> float:
        return self.publish.throughput_ops_s / self.pgbench_tps if self.pgbench_tps else 0.0

    @property
    def hit_rate_ratio(self) -> float:
        publish = self.publish.throughput_ops_s
        return self.reads.throughput_ops_s / publish if publish else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.options.workers,
            "rounds": self.options.rounds,
            "slice_s": self.options.slice_s,
            "pgbench_tps": round(self.pgbench_tps, 1),
            "pgbench_failed": sum(run.failed for run in self.pgbench),
            "pgbench_latency_avg_ms": [run.latency_avg_ms for run in self.pgbench],
            "publish": self.publish.to_json(),
            "reads": self.reads.to_json(),
            "share": round(self.share, 4),
            "hit_client_cpu_ms": round(self.hit_cpu_ms, 4),
            "hit_rate_ratio": round(self.hit_rate_ratio, 2),
            "load_averages": list(self.load_averages),
        }

    def render(self) -> str:
        publish, reads = self.publish, self.reads
        latencies = "/".join(f"{run.latency_avg_ms:.1f}" for run in self.pgbench)
        return "\n".join(
            [
                f"floor: {self.options.rounds} rounds x {self.options.slice_s:g} s, {self.options.workers} clients, "
                f"{self.options.symbols} symbols; load average {' -> '.join(self.load_averages)}",
                f"  pgbench (the publish's statement, prepared): {self.pgbench_tps:,.0f} tps, latency avg "
                f"{latencies} ms, failed {sum(run.failed for run in self.pgbench)}",
                f"  production publish path: {publish.throughput_ops_s:,.0f} publishes/s, errors {publish.errors}, "
                f"duplicates {publish.duplicates}, fallbacks {publish.fallback_inserts}, client CPU "
                f"{publish.client_cpu_ms_per_op:.3f} ms per publish",
                f"  share {100 * self.share:.1f} % (goal >= {100 * SHARE_GOAL:.0f} %: "
                f"{_verdict(self.share >= SHARE_GOAL)})",
                f"  hit: client CPU {self.hit_cpu_ms:.3f} ms per hit (goal <= {HIT_CPU_GOAL_MS} ms: "
                f"{_verdict(self.hit_cpu_ms <= HIT_CPU_GOAL_MS)})",
                f"  {100 * self.options.read_fraction:.0f} % hits: {reads.throughput_ops_s:,.0f} lookups/s "
                f"({reads.samples.hits} hits, {reads.samples.misses} misses, errors {reads.errors}), "
                f"{self.hit_rate_ratio:.1f}x the publish rate (goal >= {HIT_RATE_GOAL:g}x: "
                f"{_verdict(self.hit_rate_ratio >= HIT_RATE_GOAL)})",
            ]
        )


def _verdict(met: bool) -> str:
    return "met" if met else "missed"


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def run_floor(options: FloorOptions, progress: Progress | None = None) -> FloorReport:
    """Run the floor's rounds in a scratch schema and measure a hit's client CPU; everything inserted is dropped."""
    say = progress or (lambda _line: None)
    check_connections(options.dsn, options.workers + SPARE_CONNECTIONS, wait_s=CONNECTION_WAIT_S, progress=say)
    pgbench: list[PgbenchRun] = []
    publishes: list[LoadResult] = []
    reads: list[LoadResult] = []
    loads: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="featurestore-floor-") as cache,
        scratch_schema(options.dsn, prefix="floor") as dsn,
    ):
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            pg_schema.ensure_schema(conn)
        for round_ in range(1, options.rounds + 1):
            loads.append(load_average())
            say(f"floor: round {round_}/{options.rounds}: pgbench, publish, {options.read_fraction:.0%} hits")
            pgbench.append(
                run_pgbench(dsn, clients=options.workers, duration_s=options.slice_s, symbols=options.symbols)
            )
            publishes.append(_run(options.load(dsn), Path(cache) / f"publish-{round_}"))
            reads.append(_run(options.load(dsn, read_fraction=options.read_fraction), Path(cache) / f"read-{round_}"))
        hit_cpu_ms = hit_client_cpu_ms(options.load(dsn, workers=1), Path(cache) / "hits")
        loads.append(load_average())
    return FloorReport(options, tuple(pgbench), merge(publishes), merge(reads), hit_cpu_ms, tuple(loads))


def _run(config: LoadConfig, cache_dir: Path) -> LoadResult:
    return run_load(replace(config, cache_dir=cache_dir), connection_wait_s=CONNECTION_WAIT_S)


def hit_client_cpu_ms(config: LoadConfig, cache_dir: Path) -> float:
    """Client CPU (time.process_time) per get_or_compute that hits a frame this process published."""
    table = frame(0)
    keys = [{"floor_hit": index} for index in range(HIT_KEYS)]
    symbols = config.symbol_names()
    with open_store(config, cache_dir, pool_size=1) as store:
        for index, params in enumerate(keys):
            store.publish(symbols[index % len(symbols)], FEATURE, params, table)
        started = time.process_time()
        for lookup in range(HIT_LOOKUPS):
            index = lookup % HIT_KEYS
            store.get_or_compute(symbols[index % len(symbols)], FEATURE, keys[index], _no_compute)
        return (time.process_time() - started) * 1000.0 / HIT_LOOKUPS


def _no_compute() -> object:
    raise AssertionError("a floor hit computed: the frame was published just before")
