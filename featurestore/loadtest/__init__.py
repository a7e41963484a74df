"""The load generator: drives the real publish path of FeatureStore with N workers (threads or processes).

    config.py    LoadConfig: the workload, validated when built
    worker.py    one worker: think, publish a new key, log the outcome (shared by threads and processes)
    runner.py    run_load(): barrier start, thread or process workers, live replay into Instruments, duplicates
    result.py    Samples, Percentiles, LoadResult and its JSON
    compare.py   --compare: per-symbol vs global lock side by side, the bare INSERT baseline, instrumentation cost
    pooler_compare.py  --compare: the same workload directly and through PgBouncer, and a fleet through it
    pgbouncer.py a throwaway local PgBouncer (transaction mode) for the benchmark and the tests
    __main__.py  the CLI: python -m featurestore.loadtest --help

`POST /api/v1/monitoring/test/load` calls `run_load` with the service's store.
"""

from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.result import LoadResult, Percentiles
from featurestore.loadtest.runner import run_load

__all__ = ["LoadConfig", "LoadResult", "Percentiles", "run_load"]
