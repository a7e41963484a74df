"""`make bench`: the same workload on PostgreSQL with per-symbol advisory locks and with one global key, in alternating
slices (ABBA) so that machine drift hits both, plus the side measurements the report's targets need."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import psycopg

from bench.held_lock import HeldLockStores, LockScope
from bench.options import CompareOptions
from bench.pooler_compare import run_pooler_compare
from bench.probes import (
    HealthProbe,
    bare_insert_latencies,
    churned_scrape_cost,
    fleet_scrape_cost,
    paired_inserts,
    recording_cost,
    scrape_cost,
)
from bench.report import CompareReport, SideMeasurements
from featurestore.files import FrameFiles
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.keys import FrameKey
from featurestore.loadtest.config import FEATURE, LoadConfig
from featurestore.loadtest.result import LoadResult, Percentiles, merge
from featurestore.loadtest.runner import SPARE_CONNECTIONS, check_connections, run_load
from featurestore.loadtest.schema import scratch_schema
from featurestore.loadtest.worker import StoreFactory, frame
from featurestore.metrics import BACKEND_POSTGRESQL

Progress = Callable[[str], None]
# On a shared PostgreSQL, other sessions come and go: each slice waits this long for its connections to be free.
CONNECTION_WAIT_S = 180.0
FILE_PROBE_FILES = 500  # at 10 ms clock ticks, 500 files resolve 0.02 ms of system CPU per file


def slice_order(slices: int) -> list[LockScope]:
    """ABBA…: symbol, global, global, symbol, symbol, global, … so a linear drift hits both scopes alike."""
    order: list[LockScope] = []
    for index in range(slices):
        pair = [LockScope.SYMBOL, LockScope.GLOBAL]
        order.extend(pair if index % 2 == 0 else pair[::-1])
    return order


def machine(dsn: str, probe_folder: Path) -> dict[str, str]:
    """What the numbers were measured on, and the state its file system is in (`frame_file_system_ms`)."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_setting('server_version'), current_setting('max_connections')").fetchone()
    assert row is not None
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": str(row[0]),
        "max_connections": str(row[1]),
        "psycopg": version("psycopg"),
        "pyarrow": version("pyarrow"),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average": " ".join(f"{load:.2f}" for load in os.getloadavg()),  # at the start: a quiet machine reads < 1
        "frame_file_system_ms": f"{frame_file_system_ms(probe_folder):.3f}",
    }


def frame_file_system_ms(folder: Path, files: int = FILE_PROBE_FILES) -> float:
    """System CPU per frame file written as a publish writes it (created, written, fsynced, named, folder fsynced), in
    ms: the kernel's share of a publish, which on some VMs moves with the file system's state (right after many files
    were deleted, it was several times higher: see the README's Performance section)."""
    frames = FrameFiles(folder)
    table = frame(0)
    try:
        started = os.times().system
        for index in range(files):
            frames.write(FrameKey.of("PROBE", FEATURE, {"file": index}), table)
        return (os.times().system - started) * 1000.0 / files
    finally:
        frames.close()


def run_compare(options: CompareOptions, progress: Progress | None = None) -> CompareReport:
    """Run the whole benchmark and return its report."""
    say = progress or (lambda _line: None)
    check_connections(options.dsn, options.workers + SPARE_CONNECTIONS + 2, wait_s=CONNECTION_WAIT_S, progress=say)
    cache_root = Path(tempfile.mkdtemp(prefix="featurestore-bench-"))
    try:
        info = machine(options.dsn, cache_root / "file-probe")
        side = _side_measurements(options, cache_root, say)
        runs, health_store, health_http = _latency_slices(options, cache_root, say)
        throughput = _throughput_slices(options, cache_root, say) if options.throughput_run else None
        slo = None
        if options.slo_run:
            say(f"compare: SLO run, symbol lock, no hold, {options.duration_s / 2:g} s")
            slo_config = options.load(options.dsn, duration_s=options.duration_s / 2)
            slo_stores = options.stores(LockScope.SYMBOL, hold_ms=0.0)
            slo, _ = _slice(options, slo_config, slo_stores, LockScope.SYMBOL, cache_root / "slo", say, probe=False)
        pooler = None
        if options.pooler is not None:
            pooler = run_pooler_compare(
                options.load(options.dsn),
                HeldLockStores(LockScope.SYMBOL, options.hold_ms),
                options.pooler,
                options.slices,
                cache_root,
                say,
            )
        side = replace(
            side,
            health_store_ms=Percentiles.of(health_store) if health_store else None,
            health_http_ms=Percentiles.of(health_http) if health_http else None,
        )
        return CompareReport(
            options=options,
            symbol=merge(runs[LockScope.SYMBOL]),
            global_=merge(runs[LockScope.GLOBAL]),
            slo=slo,
            side=side,
            machine=info,
            throughput_symbol=merge(throughput[LockScope.SYMBOL]) if throughput is not None else None,
            throughput_global=merge(throughput[LockScope.GLOBAL]) if throughput is not None else None,
            pooler=pooler,
        )
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)


def _latency_slices(
    options: CompareOptions, cache_root: Path, say: Progress
) -> tuple[dict[LockScope, list[LoadResult]], list[float], list[float]]:
    """The latency workload's slices in ABBA order: the runs per lock, and the health probes' times under load."""
    runs: dict[LockScope, list[LoadResult]] = {LockScope.SYMBOL: [], LockScope.GLOBAL: []}
    health_store: list[float] = []
    health_http: list[float] = []
    order = slice_order(options.slices)
    for index, lock in enumerate(order, start=1):
        say(f"compare: slice {index}/{len(order)}, {lock} lock, {options.duration_s / options.slices:g} s")
        folder = cache_root / f"slice-{index}"
        result, probed = _slice(options, options.load(options.dsn), options.stores(lock), lock, folder, say)
        runs[lock].append(result)
        health_store.extend(probed[0])
        health_http.extend(probed[1])
    return runs, health_store, health_http


def _throughput_slices(options: CompareOptions, cache_root: Path, say: Progress) -> dict[LockScope, list[LoadResult]]:
    """The same slices with no think time: every worker publishes back to back."""
    throughput: dict[LockScope, list[LoadResult]] = {LockScope.SYMBOL: [], LockScope.GLOBAL: []}
    order = slice_order(options.slices)
    for index, lock in enumerate(order, start=1):
        say(
            f"compare: throughput slice {index}/{len(order)}, {lock} lock, no think time, "
            f"{options.duration_s / options.slices:g} s"
        )
        config = options.load(options.dsn, think_ms=0.0)
        folder = cache_root / f"throughput-{index}"
        result, _ = _slice(options, config, options.stores(lock), lock, folder, say, probe=False)
        throughput[lock].append(result)
    return throughput


def _slice(
    options: CompareOptions,
    config: LoadConfig,
    stores: StoreFactory,
    lock: LockScope,
    cache_dir: Path,
    say: Progress,
    *,
    probe: bool = True,
) -> tuple[LoadResult, tuple[list[float], list[float]]]:
    """One run in a fresh schema (so each run starts from an empty manifest), with a health probe beside it."""
    assert config.dsn is not None
    with scratch_schema(config.dsn, prefix="bench") as dsn:
        config = replace(config, dsn=dsn, cache_dir=cache_dir)
        prober = HealthProbe(config, cache_dir / "probe", options.service_url) if probe else None
        try:
            result = run_load(
                config, progress=say, connection_wait_s=CONNECTION_WAIT_S, open_stores=stores, label=f"{lock} lock, "
            )
        finally:
            probed = prober.finish() if prober is not None else ([], [])
    return result, probed


def _side_measurements(options: CompareOptions, cache_root: Path, say: Progress) -> SideMeasurements:
    """One worker: our insert vs a bare INSERT+COMMIT (paired, and the tight-loop floor); the metrics' cost per
    publish (their calls replayed live vs disabled, and end to end: instrumented vs disabled runs, A B B A)."""
    say("compare: single worker vs bare INSERT+COMMIT, cost of the metrics")
    live: list[LoadResult] = []
    dark: list[LoadResult] = []
    with scratch_schema(options.dsn, prefix="bench") as dsn:
        single = LoadConfig(
            backend=BACKEND_POSTGRESQL, dsn=dsn, workers=1, duration_s=options.side_s, symbols=1, cache_dir=cache_root
        )
        ours, bare_paired = paired_inserts(single, cache_root / "paired", 2 * options.side_s)
        bare_tight = bare_insert_latencies(dsn, options.side_s)
        for instrumented in (True, False, False, True):
            if instrumented:
                live.append(run_load(single, instruments=build_instruments()))
            else:
                dark.append(run_load(single, instruments=Instruments.disabled()))
        cost = recording_cost(single, cache_root / "spy")
    scrapes = (
        scrape_cost((BACKEND_POSTGRESQL,)),
        scrape_cost(),
        fleet_scrape_cost(options.scrape_processes),
        churned_scrape_cost(options.ended_processes),
    )
    return SideMeasurements(
        single_insert_ms=Percentiles.of(ours),
        bare_paired_ms=Percentiles.of(bare_paired),
        bare_tight_ms=Percentiles.of(bare_tight),
        single_live=merge(live),
        single_dark=merge(dark),
        recording=cost,
        scrapes=scrapes,
    )
