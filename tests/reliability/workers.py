"""Worker processes of the fault tests. Each one opens its own FeatureStore, as a training worker would, and leaves
a record on disk (one JSON line per acknowledged key, or one result file), so a SIGKILL or a hang loses nothing the
parent needs. Started through a forkserver that preloads this module: no fork of a parent that has threads."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import Counter
from multiprocessing.context import ForkServerContext
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import SecretStr

from featurestore import FeatureStore, FeatureStoreError
from featurestore.settings import FeatureStoreSettings

FEATURE = "reliability"
ACK_PAUSE_S = 0.02  # between two publishes of one worker: 32 workers stay below what 2 cores can absorb
ERROR_PAUSE_S = 0.05


def context() -> ForkServerContext:
    """A forkserver context whose server has already imported the store, so each worker starts in milliseconds."""
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    ctx.set_forkserver_preload([__name__])
    return ctx


def settings(dsn: str, cache_dir: Path, **overrides: Any) -> FeatureStoreSettings:
    """Settings of a worker's store: one pooled connection and short timeouts, so a dead server is noticed quickly."""
    values: dict[str, Any] = {
        "pg_dsn": SecretStr(dsn),
        "cache_dir": cache_dir,
        "pool_min_size": 1,
        "pool_max_size": 1,
        "pool_timeout_s": 2.0,
        "connect_timeout_s": 1.0,
        "replay_interval_s": 0.5,
    }
    values.update(overrides)
    return FeatureStoreSettings(**values)


def frame(seed: int, rows: int = 16) -> pa.Table:
    return pa.table({"ts": pa.array(range(rows), type=pa.int64()), "value": pa.array([float(seed)] * rows)})


def publish_until_stopped(dsn: str, cache_dir: Path, worker: int, ack_file: Path, go: Event, stop: Event) -> None:
    """Publish distinct keys until `stop`; append every key the store acknowledged to `ack_file` before the next."""
    store = FeatureStore.open(dsn, cache_dir, settings=settings(dsn, cache_dir))
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    error_times: list[float] = []  # time.monotonic(): one clock for every process of the machine
    table = frame(worker)
    go.wait(60)
    with ack_file.open("a", encoding="utf-8") as acks:
        sequence = 0
        while not stop.is_set():
            symbol = f"OUT{worker % 8}"
            params = {"worker": worker, "seq": sequence}
            sequence += 1
            try:
                outcome = store.publish(symbol, FEATURE, params, table)
            except FeatureStoreError as exc:
                errors[type(exc).__name__] += 1
                error_times.append(time.monotonic())
                examples.setdefault(type(exc).__name__, str(exc)[:300])
                stop.wait(ERROR_PAUSE_S)
                continue
            entry = outcome.entry
            record = {"key": [entry.symbol, entry.feature, entry.params_digest], "backend": outcome.backend}
            acks.write(json.dumps(record) + "\n")
            acks.flush()
            stop.wait(ACK_PAUSE_S)
        started = time.monotonic()
        store.close()
        summary = {
            "summary": True,
            "errors": dict(errors),
            "examples": examples,
            "error_times": error_times,
            "close_s": time.monotonic() - started,
        }
        acks.write(json.dumps(summary) + "\n")


def hold_compute(
    dsn: str, cache_dir: Path, symbol: str, params: dict[str, Any], started: Path, **overrides: Any
) -> None:
    """Enter get_or_compute with a compute that signals `started` and then never returns (until SIGKILLed)."""
    store = FeatureStore.open(dsn, cache_dir, settings=settings(dsn, cache_dir, **overrides))

    def compute() -> pa.Table:
        started.write_text(str(os.getpid()))
        while True:
            time.sleep(3600)

    store.get_or_compute(symbol, FEATURE, params, compute)


def wait_for_frame(
    dsn: str, cache_dir: Path, symbol: str, params: dict[str, Any], result: Path, **overrides: Any
) -> None:
    """Ask for the frame the killed holder was computing; record when it came and whether this worker computed it."""
    store = FeatureStore.open(dsn, cache_dir, settings=settings(dsn, cache_dir, **overrides))
    computed = []

    def compute() -> pa.Table:
        computed.append(time.monotonic())
        return frame(7)

    began = time.monotonic()
    try:
        table = store.get_or_compute(symbol, FEATURE, params, compute)
    except FeatureStoreError as exc:
        outcome: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}", "at": time.monotonic()}
    else:
        outcome = {"rows": table.num_rows, "equal": table.equals(frame(7)), "at": time.monotonic()}
    outcome.update(began=began, computed=bool(computed))
    store.close()
    temp = result.with_suffix(".tmp")
    temp.write_text(json.dumps(outcome))
    temp.replace(result)
