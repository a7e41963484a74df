"""The compute-once race: `run` starts its worker processes and collects what each saw. Started through a forkserver
that preloads this module, so each worker starts in milliseconds and no process forks a parent that has threads."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RaceRun:
    """What the workers of one race reported: each one's outcome, and the pids that ran `compute`."""

    exitcodes: list[int | None]
    outcomes: list[dict[str, Any]]
    computed_by: list[str]


def run(dsn: str, folder: Path, processes: int, deadline_s: float) -> RaceRun:
    """Race `processes` workers on one key with a store on `dsn` (cache, results and compute log in `folder`); a
    worker still running after `deadline_s` is killed (hang detection only) and shows as a non-zero exit code."""
    computes = folder / "computes.log"
    ctx = context()
    start = ctx.Barrier(processes + 1)
    results = [folder / f"result-{worker:02d}.json" for worker in range(processes)]
    workers = [
        ctx.Process(target=race, args=(dsn, folder / "cache", worker, start, computes, results[worker]))
        for worker in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        start.wait(deadline_s)
        deadline = time.monotonic() + deadline_s
        for worker in workers:
            worker.join(max(0.1, deadline - time.monotonic()))
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join(5)
    exitcodes = [worker.exitcode for worker in workers]
    outcomes = [json.loads(result.read_text()) for result in results if result.exists()]
    computed_by = computes.read_text().split() if computes.exists() else []
    return RaceRun(exitcodes, outcomes, computed_by)
