"""The benchmark's side measurements: a bare psycopg INSERT+COMMIT baseline, what our metrics cost per operation,
what a scrape costs with the symbol cap reached, and health-check latency while the load runs."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import psycopg
from prometheus_client import values

from featurestore import compaction, metrics, multiprocess
from featurestore.conventions import HEALTH_PATH
from featurestore.exposition import TextExposition
from featurestore.files import FrameFiles, StoredFrame
from featurestore.fleet import FleetReader
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.keys import FrameKey, params_digest
from featurestore.loadtest.config import FEATURE, LoadConfig
from featurestore.loadtest.result import Percentiles
from featurestore.loadtest.runner import process_context
from featurestore.loadtest.worker import frame, open_store
from featurestore.metrics import BACKENDS

HEALTH_PROBE_INTERVAL_S = 0.1


_BARE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bare_insert (id bigserial PRIMARY KEY, symbol text NOT NULL, feature text NOT NULL,"
    " params_digest text NOT NULL, version bigint NOT NULL, path text NOT NULL, rows bigint NOT NULL,"
    " bytes bigint NOT NULL, sha256 text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
    " UNIQUE (symbol, feature, params_digest))"
)
_BARE_INSERT = (
    "INSERT INTO bare_insert (symbol, feature, params_digest, version, path, rows, bytes, sha256)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def _bare_insert(conn: psycopg.Connection[Any], digest: str, sequence: int, stored: StoredFrame | None) -> float:
    """One bare `INSERT …` then `COMMIT` of a manifest-shaped row, no lock; its latency in ms."""
    path, rows, size, sha256 = (
        (stored.path, stored.rows, stored.bytes, stored.sha256) if stored else (f"{digest}.parquet", 64, 2048, digest)
    )
    started = perf_counter()
    conn.execute(_BARE_INSERT, ("BARE", "loadtest", digest, sequence, path, rows, size, sha256))
    conn.commit()
    return (perf_counter() - started) * 1000.0


def bare_insert_latencies(dsn: str, seconds: float) -> list[float]:
    """Bare single-connection INSERT+COMMIT in a tight loop for `seconds`: the floor of a manifest insert."""
    latencies: list[float] = []
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        conn.execute(_BARE_TABLE)
        conn.commit()
        run, sequence, end = uuid.uuid4().hex, 0, time.monotonic() + seconds
        while time.monotonic() < end:
            sequence += 1
            latencies.append(_bare_insert(conn, f"{run}{sequence:016d}", sequence, None))
    return latencies


def paired_inserts(config: LoadConfig, cache_dir: Path, seconds: float) -> tuple[list[float], list[float]]:
    """One worker alternating our publish and a bare publish (same Parquet write, then INSERT+COMMIT); the insert
    latencies (ms) of each. Work between two inserts slows the next one (here a tight-loop INSERT p50 of 0.2 ms
    becomes 0.5 ms after a Parquet write), so only a baseline with the same loop shape is a like-for-like floor."""
    assert config.dsn is not None
    ours: list[float] = []
    bare: list[float] = []
    files = FrameFiles(cache_dir / "bare")
    table = frame(0)
    run = uuid.uuid4().hex
    with (
        open_store(config, cache_dir / "store", pool_size=1, instruments=build_instruments()) as store,
        psycopg.connect(config.dsn, connect_timeout=5) as conn,
    ):
        conn.execute(_BARE_TABLE)
        conn.commit()
        sequence, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            sequence += 1
            outcome = store.publish("PAIRED", "loadtest", {"paired": run, "seq": sequence}, table)
            ours.append(outcome.latency_ms)
            digest = params_digest({"bare": run, "seq": sequence})
            stored = files.write(FrameKey("BARE", "loadtest", digest), table)
            bare.append(_bare_insert(conn, digest, sequence, stored))
    return ours[1:], bare[1:]  # the first of each pays for connection set-up


RECORDING_METHODS = (
    "observe_insert",
    "observe_lock_wait",
    "observe_read",
    "record_lookup",
    "count_insert_error",
    "count_recompute",
    "set_pool",
    "set_health",
    "set_fallback_pending",
    "count_replayed",
)


@dataclass(frozen=True)
class RecordingCost:
    """What the metrics cost per publish: the instrument calls it makes (replayed live vs disabled), plus the pool
    statistics read that only exists to feed the pool gauges (store.pool_stats() after each PostgreSQL insert)."""

    calls_per_op: dict[str, float]
    record_us_per_op: float
    pool_read_us_per_op: float
    # The same calls with every value written to a metrics folder (prometheus_client's multiprocess mode); the pool
    # gauges are sampled by a thread there, not per publish.
    multiprocess_record_us_per_op: float = 0.0

    @property
    def us_per_op(self) -> float:
        return self.record_us_per_op + self.pool_read_us_per_op


def recording_cost(config: LoadConfig, cache_dir: Path, operations: int = 20, repeats: int = 200) -> RecordingCost:
    """Capture the instrument calls of `operations` real publishes with a spy, then time them on live instruments
    against `Instruments.disabled()` (best of 5, CPU time), and time the pool statistics read; per publish, in µs."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    spy = build_instruments()
    for name in RECORDING_METHODS:
        original = getattr(spy, name)

        def record(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append((_name, args))
            return _original(*args, **kwargs)

        setattr(spy, name, record)
    with open_store(config, cache_dir, pool_size=1, instruments=spy) as store:
        table = frame(0)
        symbols = config.symbol_names()
        run = uuid.uuid4().hex
        for index in range(operations):
            store.publish(symbols[index % len(symbols)], FEATURE, {"spy": run, "seq": index}, table)
        captured = list(calls)
        store.instruments = Instruments.disabled()
        pool_read_s = min(_timed(store.pool_stats, repeats * 10) for _ in range(5))

    def replay(instruments: Instruments) -> float:
        bound = [(getattr(instruments, name), args) for name, args in captured]
        started = time.process_time()
        for _ in range(repeats):
            for method, args in bound:
                method(*args)
        return time.process_time() - started

    live, disabled = build_instruments(), Instruments.disabled()
    replay(live)  # first use creates the label children
    best_live = min(replay(live) for _ in range(5))
    best_disabled = min(replay(disabled) for _ in range(5))
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as folder, writing_to(Path(folder), os.getpid()):
        fleet = build_instruments()
        replay(fleet)
        best_fleet = min(replay(fleet) for _ in range(5))
    counts: dict[str, float] = {}
    for name, _ in captured:
        counts[name] = counts.get(name, 0.0) + 1.0 / operations
    return RecordingCost(
        calls_per_op=counts,
        record_us_per_op=max(best_live - best_disabled, 0.0) / (repeats * operations) * 1e6,
        pool_read_us_per_op=pool_read_s / (repeats * 10) * 1e6 * counts.get("set_pool", 0.0),
        multiprocess_record_us_per_op=max(best_fleet - best_disabled, 0.0) / (repeats * operations) * 1e6,
    )


@contextmanager
def writing_to(folder: Path, identity: int | str) -> Iterator[None]:
    """prometheus_client writing every value created inside to `folder` as process `identity` would: what
    PROMETHEUS_MULTIPROC_DIR set at the start of a worker does, here for one measurement."""
    saved_env, saved_class = os.environ.get(multiprocess.ENV), values.ValueClass
    os.environ[multiprocess.ENV] = str(folder)
    values.ValueClass = multiprocess.value_class(lambda: identity)
    try:
        yield
    finally:
        values.ValueClass.close_all_files()
        values.ValueClass = saved_class
        if saved_env is None:
            os.environ.pop(multiprocess.ENV, None)
        else:
            os.environ[multiprocess.ENV] = saved_env


def _timed(call: Any, times: int) -> float:
    """CPU seconds of `times` calls: CPU time, unlike wall time, is not inflated by other processes on the machine."""
    started = time.process_time()
    for _ in range(times):
        call()
    return time.process_time() - started


@dataclass(frozen=True)
class ScrapeCost:
    """Exposition of a registry at the symbol cap: wall and CPU time per scrape (ms), and the body size."""

    backends: tuple[str, ...]
    wall_ms: Percentiles
    cpu_ms: Percentiles
    bytes: int
    # The first scrape of a fresh reader (a service that just started), when the percentiles leave it out.
    first_wall_ms: float | None = None
    first_cpu_ms: float | None = None


@contextmanager
def past_the_cap() -> Iterator[None]:
    """The scrape probes fill every histogram past the symbol cap on purpose: the cap's warning, once per simulated
    process (64 or 1,000 of them), is muted while they do."""
    logger = logging.getLogger(Instruments.__module__)  # the logger the cap warns on
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def scrape_cost(
    backends: tuple[str, ...] = BACKENDS, symbols: int = metrics.DEFAULT_SYMBOL_CAP, scrapes: int = 30
) -> ScrapeCost:
    """What the body of /metrics costs (the service's `TextExposition`, kept across scrapes as the endpoint keeps it;
    the first scrape, which fills its label cache, is counted too) once every histogram has `symbols` symbol values
    for each of `backends` (both: PostgreSQL, plus DuckDB after a fallback episode)."""
    instruments = build_instruments(symbol_cap=symbols)
    with past_the_cap():
        for index in range(symbols + 5):  # past the cap: the extra symbols fold into __other__
            symbol = f"SYM{index:03d}"
            for backend in backends:
                instruments.observe_insert(backend, symbol, 1.5)
                instruments.observe_read(backend, symbol, 0.4)
            instruments.observe_lock_wait(symbol, 0.2)
            instruments.record_lookup(symbol, hit=index % 10 != 0)
    writer = TextExposition(instruments)
    wall, cpu, size = [], [], 0
    for _ in range(scrapes):
        started, started_cpu = perf_counter(), time.process_time()
        size = len(writer.render())
        wall.append((perf_counter() - started) * 1000.0)
        cpu.append((time.process_time() - started_cpu) * 1000.0)
    return ScrapeCost(backends, Percentiles.of(wall), Percentiles.of(cpu), size)


def fleet_scrape_cost(processes: int = 64, symbols: int = metrics.DEFAULT_SYMBOL_CAP, scrapes: int = 20) -> ScrapeCost:
    """What the service's /metrics costs in the multiprocess mode while its workers live: `processes` workers' files,
    each process at the symbol cap on every histogram (the union of their symbols is the cap) and holding its
    liveness lock as a registered worker does, read and aggregated by featurestore.fleet after the compaction check,
    as the service does at each scrape. The percentiles are the steady state: the service's first scrape, which
    parses every key of every file once, is timed apart (`first_wall_ms`, `first_cpu_ms`)."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as name,
        live_workers(Path(name), processes) as workers,
        past_the_cap(),
    ):
        folder = Path(name)
        for number, identity in enumerate(workers):
            with writing_to(folder, identity):
                instruments = build_instruments(symbol_cap=symbols)
                for index in range(symbols + 5):
                    symbol = f"SYM{index:03d}"
                    instruments.observe_insert(BACKENDS[0], symbol, 1.5)
                    instruments.observe_read(BACKENDS[0], symbol, 0.4)
                    instruments.observe_lock_wait(symbol, 0.2)
                    instruments.record_lookup(symbol, hit=index % 10 != 0)
                instruments.set_pool(2, number % 3, 0)
        return _folder_scrapes(folder, f"{processes} processes", scrapes, first_apart=True)


@contextmanager
def live_workers(folder: Path, processes: int) -> Iterator[list[str]]:
    """`processes` worker identities alive in `folder` until the block ends: each holds its liveness lock there as
    featurestore.multiprocess.register_process holds a worker's, so a compaction leaves their files alone (a folder
    of files without a held lock would be a folder of ended processes, folded away at the first scrape)."""
    identities = [f"{number + 1}-{secrets.token_hex(6)}" for number in range(processes)]
    held: list[int] = []
    try:
        for identity in identities:
            held.append(multiprocess.hold_liveness(folder, identity))
        yield identities
    finally:
        for fd in held:
            os.close(fd)


def churned_scrape_cost(ended: int = 1000, symbols: int = metrics.DEFAULT_SYMBOL_CAP, scrapes: int = 20) -> ScrapeCost:
    """The service's scrape (compaction, then the read) with the history of `ended` processes that ended in the
    folder: each wrote a few symbols (their union is the cap) and left its files and a released liveness lock, as a
    worker that exits or is killed does. The first scrape, which folds them all into the compacted files, counts."""
    with tempfile.TemporaryDirectory(prefix="bench-churn-") as name, past_the_cap():
        folder = Path(name)
        for number in range(ended):
            identity = f"{number + 1}-ended{number:04d}"
            with writing_to(folder, identity):
                instruments = build_instruments(symbol_cap=symbols)
                for index in range(number, number + 5):
                    symbol = f"SYM{index % symbols:03d}"
                    instruments.observe_insert(BACKENDS[0], symbol, 1.5)
                    instruments.observe_read(BACKENDS[0], symbol, 0.4)
                    instruments.record_lookup(symbol, hit=index % 10 != 0)
                instruments.set_pool(2, number % 3, 0)
            multiprocess.alive_file(folder, identity).touch()  # registered, and its lock released: it ended
        return _folder_scrapes(folder, f"{ended} ended processes", scrapes)


def _folder_scrapes(folder: Path, name: str, scrapes: int, *, first_apart: bool = False) -> ScrapeCost:
    """`scrapes` scrapes of a metrics folder as the service makes them (compaction, then the read), timed; with
    `first_apart`, one more scrape before them, the first of a fresh reader, is timed on its own."""
    reader = FleetReader(folder)
    wall, cpu, size = [], [], 0
    for _ in range(scrapes + first_apart):
        started, started_cpu = perf_counter(), time.process_time()
        compaction.compact(folder)
        size = len(reader.read().text().encode())
        wall.append((perf_counter() - started) * 1000.0)
        cpu.append((time.process_time() - started_cpu) * 1000.0)
    if not first_apart:
        return ScrapeCost((name,), Percentiles.of(wall), Percentiles.of(cpu), size)
    return ScrapeCost(
        (name,), Percentiles.of(wall[1:]), Percentiles.of(cpu[1:]), size, first_wall_ms=wall[0], first_cpu_ms=cpu[0]
    )


def _probe_main(config: LoadConfig, cache_dir: Path, service_url: str | None, conn: Any, halt: Any) -> None:
    store_ms: list[float] = []
    http_ms: list[float] = []
    with open_store(config, cache_dir, pool_size=1, instruments=Instruments.disabled()) as store:
        while not halt.wait(HEALTH_PROBE_INTERVAL_S):
            started = perf_counter()
            store.health()
            store_ms.append((perf_counter() - started) * 1000.0)
            if service_url:
                started = perf_counter()
                try:
                    with urllib.request.urlopen(service_url.rstrip("/") + HEALTH_PATH, timeout=5) as response:
                        response.read()
                except OSError:
                    http_ms.append(5000.0)
                else:
                    http_ms.append((perf_counter() - started) * 1000.0)
    conn.send((store_ms, http_ms))
    conn.close()


class HealthProbe:
    """A process (the load generator's process context) that times store.health() (and the service's health
    endpoint) every 100 ms until stopped."""

    def __init__(self, config: LoadConfig, cache_dir: Path, service_url: str | None) -> None:
        context = process_context()
        self._receiver, sender = context.Pipe(duplex=False)
        self._halt = context.Event()
        self._process = context.Process(
            target=_probe_main, args=(config, cache_dir, service_url, sender, self._halt), daemon=True
        )
        self._process.start()
        sender.close()

    def finish(self) -> tuple[list[float], list[float]]:
        self._halt.set()
        result: tuple[list[float], list[float]] = ([], [])
        if self._receiver.poll(30):
            result = self._receiver.recv()
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        return result
