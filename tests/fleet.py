"""The test side of a training job: a launcher that owns the metrics folder and starts `tests.fleet_worker` processes
with it, as a job spec would (PROMETHEUS_MULTIPROC_DIR set before each process starts)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from featurestore.multiprocess import ENV
from tests.conftest import REPO

REPLY_TIMEOUT_S = 120.0


class WorkerProcess:
    """One `python -m tests.fleet_worker`, spoken to over its stdin and stdout."""

    def __init__(self, name: str, env: Mapping[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fleet_worker"],
            cwd=REPO,
            env={**env, "FLEET_WORKER_NAME": name},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._exit_asked = False
        threading.Thread(target=self._read, name=f"{name}-replies", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._replies.put(json.loads(line))
        self._replies.put(None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def reply(self, timeout_s: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
        try:
            message = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"worker {self.name} did not answer within {timeout_s:g} s") from None
        if message is None:
            raise AssertionError(f"worker {self.name} exited with {self.process.wait()}")
        return message

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def ask_to_exit(self) -> None:
        """Tell the worker to exit, without waiting for it (`stop` waits): a fleet's workers then wind down at once."""
        if self.process.poll() is None and not self._exit_asked:
            self._exit_asked = True
            with contextlib.suppress(OSError):  # it is gone already: stop() reaps it
                self.send({"op": "exit"})

    def stop(self) -> None:
        self.ask_to_exit()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class Fleet:
    """`count` workers sharing `folder` (which must exist, empty: the launcher owns it) and the store's settings."""

    def __init__(self, count: int, folder: Path, store_env: Mapping[str, str]) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("FEATURESTORE_")}
        self.env = {**env, **store_env, ENV: str(folder)}
        self.folder = folder
        self.count = count
        self.workers: list[WorkerProcess] = []

    def __enter__(self) -> Fleet:
        try:
            self.workers = [WorkerProcess(f"W{index}", self.env) for index in range(self.count)]
            for worker in self.workers:
                assert "ready" in worker.reply(), worker.name
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for worker in self.workers:
            worker.ask_to_exit()
        for worker in self.workers:
            worker.stop()

    def run(self, command: dict[str, Any], workers: list[WorkerProcess] | None = None) -> list[dict[str, Any]]:
        """Send `command` to every worker (or those given) at once, then collect each one's reply."""
        chosen = workers if workers is not None else self.workers
        for worker in chosen:
            worker.send(command)
        return [worker.reply() for worker in chosen]

    def lookups(self, hit: float, seconds: float, per_s: float) -> dict[str, int]:
        """Every worker looks up at that hit rate; the summed hits and misses they counted."""
        replies = self.run({"op": "lookups", "hit": hit, "seconds": seconds, "per_s": per_s})
        return {key: sum(reply[key] for reply in replies) for key in ("hits", "misses")}

    def lookups_until(
        self, hit: float, per_s: float, done: Callable[[], bool], timeout_s: float, step_s: float = 1.0
    ) -> dict[str, int]:
        """`lookups` in steps of `step_s` until `done()` says so after a step, or `timeout_s` has passed."""
        deadline = time.monotonic() + timeout_s
        totals = {"hits": 0, "misses": 0}
        while True:
            counted = self.lookups(hit, seconds=step_s, per_s=per_s)
            totals = {key: totals[key] + counted[key] for key in totals}
            if done() or time.monotonic() >= deadline:
                return totals
