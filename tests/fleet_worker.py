"""A training-job worker for the fleet tests: a separate process that uses the feature store's public API only
(`FeatureStore.open()`, `get_or_compute`), driven by JSON lines on stdin, answering with JSON lines on stdout.

    {"op": "lookups", "hit": 0.99, "seconds": 10, "per_s": 25}  get_or_compute at that pace; with probability `hit`
                                                               a key this worker published before (a hit), else a
                                                               new key (a miss: computed and published)
    -> {"hits": h, "misses": m}                                 counted by whether compute() ran
    {"op": "hold_pool", "seconds": 60}                          lend out every connection of its pool (the one step
    -> {"held": true} ... {"released": true}                    outside the public API: a stuck worker on demand)
                                                               until {"op": "release"} arrives, or `seconds` pass
    {"op": "exit"}                                              close the store and exit 0

The environment configures it as a launcher would: FEATURESTORE_PG_DSN, FEATURESTORE_CACHE_DIR,
PROMETHEUS_MULTIPROC_DIR, and FLEET_WORKER_NAME (its symbols' prefix). Run as `python -m tests.fleet_worker`.
"""

from __future__ import annotations

import json
import os
import random
import select
import sys
import time
from contextlib import ExitStack
from typing import Any

import pyarrow as pa

from featurestore import FeatureStore


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Worker:
    def __init__(self, store: FeatureStore, name: str) -> None:
        self.store = store
        self.name = name
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.random = random.Random(name)

    def lookups(self, hit: float, seconds: float, per_s: float) -> dict[str, int]:
        counts = {"hits": 0, "misses": 0}
        start = time.monotonic()
        done = 0
        while time.monotonic() - start < seconds:
            if self.published and self.random.random() < hit:
                symbol, params = self.random.choice(self.published)
            else:
                symbol, params = f"{self.name}_S{len(self.published) % 4}", {"n": len(self.published)}
            computed = False

            def compute() -> pa.Table:
                nonlocal computed
                computed = True
                return pa.table({"value": [float(len(self.published))]})

            self.store.get_or_compute(symbol, "returns", params, compute)
            if computed:
                counts["misses"] += 1
                self.published.append((symbol, params))
            else:
                counts["hits"] += 1
            done += 1
            pause = start + done / per_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        return counts

    def hold_pool(self, seconds: float) -> None:
        primary = self.store.manifest.primary  # type: ignore[attr-defined]
        with ExitStack() as held:
            for _ in range(self.store.settings.pool_max_size):
                held.enter_context(primary.connection())
            _say({"held": True})
            # The launcher sends nothing else while this worker holds, so stdin's buffer is empty and select sees it.
            if select.select([sys.stdin], [], [], seconds)[0]:
                assert json.loads(sys.stdin.readline()) == {"op": "release"}
        _say({"released": True})


def main() -> int:
    with FeatureStore.open() as store:
        worker = Worker(store, os.environ.get("FLEET_WORKER_NAME", f"W{os.getpid()}"))
        _say({"ready": os.getpid()})
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "lookups":
                _say(worker.lookups(command["hit"], command["seconds"], command["per_s"]))
            elif command["op"] == "hold_pool":
                worker.hold_pool(command["seconds"])
            elif command["op"] == "exit":
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
