"""Worker processes of the compute-once race. Started through a forkserver that preloads this module, so each worker
starts in milliseconds and no process forks a parent that has threads."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from multiprocessing.context import ForkServerContext
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pyarrow as pa

from featurestore import FeatureStore
from featurestore.settings import FeatureStoreSettings

SYMBOL = "RACE"
FEATURE = "returns"
SHARED_PARAMS: dict[str, Any] = {"window": 20}
COMPUTE_S = 0.5  # long enough that every worker asks while the first one computes


def context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    ctx.set_forkserver_preload([__name__])
    return ctx


def frame() -> pa.Table:
    return pa.table({"ts": pa.array(range(100), type=pa.int64()), "value": [float(i) for i in range(100)]})


def race(dsn: str, cache_dir: Path, worker: int, start: Barrier, computes: Path, result: Path) -> None:
    """Open a store, wait for every worker, then ask for the shared key and publish one key of its own."""
    settings = FeatureStoreSettings(
        pg_dsn=dsn, cache_dir=cache_dir, pool_min_size=1, pool_max_size=1, pool_timeout_s=60.0, lease_ttl_s=30.0
    )
    with FeatureStore.open(settings=settings) as store:
        start.wait(120)

        def compute() -> pa.Table:
            fd = os.open(computes, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{os.getpid()}\n".encode())
            finally:
                os.close(fd)
            time.sleep(COMPUTE_S)
            return frame()

        table = store.get_or_compute(SYMBOL, FEATURE, SHARED_PARAMS, compute)
        own = store.publish(SYMBOL, FEATURE, {"worker": worker}, frame())
        outcome = {"equal": table.equals(frame()), "inserted": own.inserted, "backend": own.backend}
    temp = result.with_suffix(".tmp")
    temp.write_text(json.dumps(outcome))
    temp.replace(result)
