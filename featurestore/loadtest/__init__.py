"""The load generator: drives the real publish path of FeatureStore with N workers (threads or processes).

    config.py    LoadConfig: the workload, validated when built (the CLI and the service both build one)
    worker.py    one worker: think, publish a new key (or get_or_compute), log the outcome (threads and processes)
    messages.py  what a worker process sends its parent: Ready, Batch (typed samples), Done, Failed
    observed.py  a read mix reads what each get_or_compute did off the store's own observations
    runner.py    run_load(): barrier start, thread or process workers, live replay into Instruments, duplicates
    result.py    Samples, Percentiles, LoadResult and its JSON
    schema.py    a scratch schema per PostgreSQL run
    cli.py       python -m featurestore.loadtest --help

The benchmark (make bench: per-symbol vs global lock, the hold inside the lock, probes, report) is bench/, outside
the distribution; it runs this generator with stores of its own (run_load's `open_stores`).
`POST /api/v1/monitoring/test/load` calls `run_load` with the service's store.
"""

from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.result import LoadResult, Percentiles
from featurestore.loadtest.runner import run_load

__all__ = ["LoadConfig", "LoadResult", "Percentiles", "run_load"]
