"""One load worker: think, publish a new key through the real store, log what happened (threads and processes)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full
from time import perf_counter
from typing import Any, Protocol

import pyarrow as pa
from pydantic import SecretStr

from featurestore.errors import BackendUnavailable, LockTimeout, PoolTimeout
from featurestore.loadtest.config import FEATURE, LoadConfig
from featurestore.loadtest.result import Samples
from featurestore.manifest.base import InsertOutcome
from featurestore.metrics import BACKEND_POSTGRESQL, Instruments
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


def error_kind(exc: BaseException) -> str:
    """The `error` label value of manifest_insert_errors_total for an exception."""
    if isinstance(exc, LockTimeout):
        return "lock_timeout"
    if isinstance(exc, PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, BackendUnavailable):
        return "unavailable"
    return "other"


def frame(worker: int, rows: int = FRAME_ROWS) -> pa.Table:
    """The feature frame every operation of `worker` publishes (content is irrelevant, size is what matters)."""
    rng = random.Random(worker)
    return pa.table(
        {
            "ts": pa.array(range(rows), type=pa.int64()),
            "value": pa.array([rng.random() for _ in range(rows)], type=pa.float64()),
        }
    )


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
    pending_ok: list[tuple[str, str, float, float, float]] = field(default_factory=list)
    pending_errors: list[tuple[str, str, str]] = field(default_factory=list)
    pending_not_inserted: int = 0
    last_flush: float = field(default_factory=time.monotonic)

    def ok(self, symbol: str, outcome: InsertOutcome, publish_ms: float) -> None:
        self.samples.insert_ms.append(outcome.latency_ms)
        self.samples.lock_wait_ms.append(outcome.lock_wait_ms)
        self.samples.publish_ms.append(publish_ms)
        self.samples.backends[outcome.backend] += 1
        if not outcome.inserted:
            self.samples.not_inserted += 1
        if self.queue is not None:
            self.pending_ok.append((symbol, outcome.backend, outcome.latency_ms, outcome.lock_wait_ms, publish_ms))
            self.pending_not_inserted += 0 if outcome.inserted else 1

    def error(self, symbol: str, kind: str, message: str) -> None:
        self.samples.add_error(kind, message)
        if self.queue is not None:
            self.pending_errors.append((symbol, kind, message[:300]))

    def maybe_flush(self) -> None:
        if self.queue is not None and time.monotonic() - self.last_flush >= BATCH_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.queue is None:
            return
        if self.pending_ok or self.pending_errors or self.pending_not_inserted:
            batch = ("batch", self.worker, self.pending_ok, self.pending_errors, self.pending_not_inserted)
            try:
                self.queue.put(batch, timeout=30)
            except Full:
                return  # the parent stopped listening; keep the batch for the next try
            self.pending_ok, self.pending_errors, self.pending_not_inserted = [], [], 0
        self.last_flush = time.monotonic()


def warm_up(store: FeatureStore, config: LoadConfig, run_id: str, worker: int) -> None:
    """One unmeasured publish, so connections and first-use costs fall before the start barrier."""
    params = {"run": run_id, "worker": worker, "warmup": True}
    try:
        store.publish(config.symbol_names()[worker % len(config.symbol_names())], FEATURE, params, frame(worker))
    except Exception:  # a failing backend shows up in the measured operations, counted by kind
        pass


def publish_loop(
    store: FeatureStore, config: LoadConfig, run_id: str, worker: int, end: float, stop: Waitable, log: WorkerLog
) -> None:
    """Publish new keys until `end` (time.monotonic) or `stop`; an operation started before `end` completes."""
    rng = random.Random(f"{run_id}/{worker}")
    table = frame(worker)
    symbols = config.symbol_names()
    sequence = 0
    while not stop.is_set():
        if config.think_ms > 0:
            # Think time is slept, not spun: it stands for compute done elsewhere (a GPU, another core).
            pause = rng.uniform(0.5, 1.5) * config.think_ms / 1000.0
            if time.monotonic() + pause >= end:
                break
            if stop.wait(pause):
                break
        if time.monotonic() >= end:
            break
        symbol = rng.choice(symbols)
        params = {"run": run_id, "worker": worker, "seq": sequence}
        sequence += 1
        started = perf_counter()
        try:
            outcome = store.publish(symbol, FEATURE, params, table, lock=config.lock, hold_ms=config.hold_ms)
        except Exception as exc:  # every failure is counted by kind, with one example message
            log.error(symbol, error_kind(exc), f"{type(exc).__name__}: {exc}")
            stop.wait(ERROR_PAUSE_S)
        else:
            log.ok(symbol, outcome, (perf_counter() - started) * 1000.0)
        log.maybe_flush()
