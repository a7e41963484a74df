"""Processes for tests/reliability/test_metrics_folder.py, run as `python -m tests.reliability.metrics_writers <role>`
with PROMETHEUS_MULTIPROC_DIR set in their environment (as a launcher sets it).

    grow <progress file> <stop file> forks one child after another until <stop file> exists; each increments a
                                     prometheus_client counter with a new label value 600 times, so its file grows
                                     through 64 KiB, and ends. After each increment the count done so far is written
                                     to <progress file> (8 bytes), so a reader knows a floor and a ceiling.
    lookups <n> [symbol]             featurestore's instruments: n hits (of AAPL), prints its pid, then waits for
                                     stdin to close
    churn <processes> <hits>         a parent that forks <processes> short-lived children in batches of 10: each
                                     records <hits> hits and says so; a quarter of them are SIGKILLed, the rest exit.
                                     It prints "ready" and waits for a line on stdin, and after each batch prints
                                     the total so far and waits for a line again.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import sys
import time
from pathlib import Path

from prometheus_client import Counter

GROW_KEYS_PER_FILE = 600  # about 78 KiB of entries: each file crosses 64 KiB while the service reads it


def grow(progress_path: str, stop_path: str) -> None:
    from featurestore import multiprocess

    multiprocess.register_process(multiprocess.metrics_folder() or Path())  # each forked child registers its own
    with open(progress_path, "r+b") as progress_file:
        progress = mmap.mmap(progress_file.fileno(), 8)
        stop = Path(stop_path)
        while not stop.exists():
            child = os.fork()
            if child == 0:  # one short-lived writer per file: it ends, and the service compacts its file
                done = struct.unpack("q", progress[0:8])[0]
                counter = Counter("featurestore_misses", "Cache misses (frame computed)", ["symbol"], registry=None)
                for index in range(GROW_KEYS_PER_FILE):
                    counter.labels(f"S{index:05d}").inc()
                    done += 1
                    progress[0:8] = struct.pack("q", done)
                    if index % 100 == 0:
                        time.sleep(0.002)
                os._exit(0)
            os.waitpid(child, 0)
        progress.close()


def lookups(count: int, symbol: str) -> None:
    from featurestore.instruments import build

    instruments = build()
    for _ in range(count):
        instruments.record_lookup(symbol, hit=True)
    print(os.getpid(), flush=True)
    sys.stdin.read()


def churn(processes: int, hits: int) -> None:
    from featurestore.instruments import build

    instruments = build()  # registers this parent; each forked child registers an identity of its own
    instruments.set_pool(1, 0, 0)
    print("ready", flush=True)
    sys.stdin.readline()
    total = 0
    for batch_start in range(0, processes, 10):
        children = []
        for number in range(batch_start, min(batch_start + 10, processes)):
            ready_read, ready_write = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(ready_read)
                instruments.set_pool(2, 1, 0)
                for _ in range(hits):
                    instruments.record_lookup(f"C{number % 7}", hit=True)
                os.write(ready_write, b"done")
                if number % 4 == 0:
                    time.sleep(60)  # SIGKILLed by the parent
                os._exit(0)
            os.close(ready_write)
            children.append((number, child, ready_read))
        for number, child, ready_read in children:
            assert os.read(ready_read, 4) == b"done"
            os.close(ready_read)
            total += hits
            if number % 4 == 0:
                os.kill(child, signal.SIGKILL)
        for _, child, _ in children:
            os.waitpid(child, 0)
        print(total, flush=True)  # every child's hits are in its files, and every child has ended
        if not sys.stdin.readline():
            return
    sys.stdin.read()


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    if role == "grow":
        grow(arguments[0], arguments[1])
    elif role == "lookups":
        lookups(int(arguments[0]), arguments[1] if len(arguments) > 1 else "AAPL")
    elif role == "churn":
        churn(int(arguments[0]), int(arguments[1]))
    else:
        raise SystemExit(f"unknown role {role}")
