"""One load worker: think, then publish a new key through the real store, or (read mix) look a key up with
get_or_compute, a hit on a key it published before or a miss on a new one; log what happened (threads and processes).

A lookup does not hand back what it measured, so the worker reads the store's own observations (observed.py).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from queue import Full
from time import perf_counter
from typing import Any, Protocol

import pyarrow as pa
from pydantic import SecretStr

from featurestore.errors import error_kind
from featurestore.instruments import Instruments
from featurestore.loadtest.config import FEATURE, LoadConfig
from featurestore.loadtest.messages import Batch, ErrorSample, InsertSample, LookupSample
from featurestore.loadtest.observed import Observed, ObservedInstruments
from featurestore.loadtest.result import Samples
from featurestore.manifest.base import InsertOutcome
from featurestore.metrics import BACKEND_POSTGRESQL
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore

FRAME_ROWS = 64  # small, so Parquet encoding stays a minor part of an operation
ERROR_PAUSE_S = 0.01  # after a failed publish, so a dead backend does not turn the run into a busy loop
BATCH_INTERVAL_S = 0.5  # how often a worker process sends its observations to the parent


class Waitable(Protocol):
    """threading.Event and multiprocessing.Event: the run's stop signal, also used to sleep interruptibly."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class SampleQueue(Protocol):
    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None: ...


def frame(worker: int, rows: int = FRAME_ROWS) -> pa.Table:
    """The feature frame every operation of `worker` publishes (content is irrelevant, size is what matters)."""
    rng = random.Random(worker)
    return pa.table(
        {
            "ts": pa.array(range(rows), type=pa.int64()),
            "value": pa.array([rng.random() for _ in range(rows)], type=pa.float64()),
        }
    )


class StoreFactory(Protocol):
    """Opens a worker's store; picklable, so that a worker process can call it (open_store, or a benchmark's)."""

    def __call__(
        self, config: LoadConfig, cache_dir: Path, *, pool_size: int, instruments: Instruments | None = None
    ) -> FeatureStore: ...


def open_store(
    config: LoadConfig, cache_dir: Path, *, pool_size: int, instruments: Instruments | None = None
) -> FeatureStore:
    """A store of the configured backend with a fixed-size pool (no connection is opened inside a measured op)."""
    dsn = config.dsn if config.backend == BACKEND_POSTGRESQL else None
    settings = FeatureStoreSettings(
        pg_dsn=SecretStr(dsn) if dsn else None, cache_dir=cache_dir, pool_min_size=pool_size, pool_max_size=pool_size
    )
    return FeatureStore.open(dsn, cache_dir, settings=settings, instruments=instruments)


@dataclass
class WorkerLog:
    """A worker's observations; with a queue it also sends them to the parent in batches (process mode)."""

    worker: int
    queue: SampleQueue | None = None
    samples: Samples = field(default_factory=Samples)
    pending: Batch = field(init=False)
    last_flush: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.pending = Batch(self.worker)

    def ok(self, symbol: str, outcome: InsertOutcome, publish_ms: float) -> None:
        self._insert(InsertSample.of(symbol, outcome, publish_ms))

    def _insert(self, sample: InsertSample) -> None:
        self.samples.add_insert(sample)
        if self.queue is not None:
            self.pending.inserts.append(sample)

    def lookup(self, symbol: str, *, hit: bool, observed: Observed, publish_ms: float) -> None:
        """A completed get_or_compute; a miss also logs its insert unless the store failed to publish it."""
        sample = LookupSample(symbol, hit, tuple(observed.reads))
        self.samples.add_lookup(sample)
        if self.queue is not None:
            self.pending.lookups.append(sample)
        if observed.insert_errors:
            # get_or_compute returns the computed frame when its publish fails; the store logged why.
            kind = observed.insert_errors[-1]
            self.error(symbol, kind, f"get_or_compute computed the frame but could not publish it ({kind})")
        elif not hit and observed.inserts:
            backend, insert_ms = observed.inserts[-1]
            # The store observes a lock wait on PostgreSQL only; elsewhere the insert waited for none.
            lock_wait_ms = observed.lock_waits[-1] if observed.lock_waits else 0.0
            self._insert(InsertSample(symbol, backend, insert_ms, lock_wait_ms, publish_ms))

    def error(self, symbol: str, kind: str, message: str) -> None:
        self.samples.add_error(kind, message)
        if self.queue is not None:
            self.pending.errors.append(ErrorSample(symbol, kind, message[:300]))

    def maybe_flush(self) -> None:
        if self.queue is not None and time.monotonic() - self.last_flush >= BATCH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.queue is None:
            return
        batch = self.pending
        if batch.inserts or batch.errors or batch.lookups:
            try:
                self.queue.put(batch, timeout=30)
            except Full:
                return  # the parent stopped listening; keep the batch for the next try
            self.pending = Batch(self.worker)
        self.last_flush = time.monotonic()


def warm_up(store: FeatureStore, config: LoadConfig, run_id: str, worker: int) -> None:
    """One unmeasured publish, so connections and first-use costs fall before the start barrier."""
    params = {"run": run_id, "worker": worker, "warmup": True}
    try:
        store.publish(config.symbol_names()[worker % len(config.symbol_names())], FEATURE, params, frame(worker))
    except Exception:  # a failing backend shows up in the measured operations, counted by kind
        pass


def think(rng: random.Random, config: LoadConfig, end: float, stop: Waitable) -> bool:
    """Sleep one think time (uniform 0.5-1.5x `think_ms`); False when the run ends before the next operation."""
    if config.think_ms > 0:
        # Think time is slept, not spun: it stands for compute done elsewhere (a GPU, another core).
        pause = rng.uniform(0.5, 1.5) * config.think_ms / 1000.0
        if time.monotonic() + pause >= end or stop.wait(pause):
            return False
    return time.monotonic() < end


def publish_loop(
    store: FeatureStore, config: LoadConfig, run_id: str, worker: int, end: float, stop: Waitable, log: WorkerLog
) -> None:
    """Publish new keys until `end` (time.monotonic) or `stop`; an operation started before `end` completes."""
    rng = random.Random(f"{run_id}/{worker}")
    table = frame(worker)
    symbols = config.symbol_names()
    sequence = 0
    while not stop.is_set():
        if not think(rng, config, end, stop):
            break
        symbol = rng.choice(symbols)
        params = {"run": run_id, "worker": worker, "seq": sequence}
        sequence += 1
        started = perf_counter()
        try:
            outcome = store.publish(symbol, FEATURE, params, table)
        except Exception as exc:  # every failure is counted by kind, with one example message
            log.error(symbol, error_kind(exc), f"{type(exc).__name__}: {exc}")
            stop.wait(ERROR_PAUSE_S)
        else:
            log.ok(symbol, outcome, (perf_counter() - started) * 1000.0)
        log.maybe_flush()


def lookup_loop(
    store: FeatureStore, config: LoadConfig, run_id: str, worker: int, end: float, stop: Waitable, log: WorkerLog
) -> None:
    """The read mix: get_or_compute until `end` or `stop`, with probability `config.read_fraction` on a key this worker
    published before (a hit), else on a new key (a miss; always the first)."""
    rng = random.Random(f"{run_id}/{worker}")
    table = frame(worker)
    symbols = config.symbol_names()
    published: list[tuple[str, dict[str, Any]]] = []
    sequence = 0
    instruments = store.instruments
    if not isinstance(instruments, ObservedInstruments):
        raise RuntimeError("a read-mix run reads the store's observations: run it inside observed.observing(store)")
    while not stop.is_set():
        if not think(rng, config, end, stop):
            break
        new = not published or rng.random() >= config.read_fraction
        if new:
            symbol, params = rng.choice(symbols), {"run": run_id, "worker": worker, "seq": sequence}
            sequence += 1
        else:
            symbol, params = rng.choice(published)
        computed: list[float] = []
        try:
            with instruments.observe() as observed:
                store.get_or_compute(symbol, FEATURE, params, partial(_compute, table, computed))
        except Exception as exc:  # every failure is counted by kind, with one example message
            log.error(symbol, error_kind(exc), f"{type(exc).__name__}: {exc}")
            stop.wait(ERROR_PAUSE_S)
        else:
            # A miss's publish time runs from the end of compute() to the return of get_or_compute.
            publish_ms = (perf_counter() - computed[0]) * 1000.0 if computed else 0.0
            log.lookup(symbol, hit=not computed, observed=observed, publish_ms=publish_ms)
            if new and computed and not observed.insert_errors:
                published.append((symbol, params))
        log.maybe_flush()


def _compute(table: pa.Table, computed: list[float]) -> pa.Table:
    """The miss's compute(): the worker's small frame, noting when it was handed over."""
    computed.append(perf_counter())
    return table


def run_loop(
    store: FeatureStore, config: LoadConfig, run_id: str, worker: int, end: float, stop: Waitable, log: WorkerLog
) -> None:
    """The publish loop, or the read mix when `config.read_fraction` > 0."""
    loop = lookup_loop if config.read_fraction > 0 else publish_loop
    loop(store, config, run_id, worker, end, stop, log)
