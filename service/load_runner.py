"""The load runs of one app: `LoadRunner` starts the load generator on the app's store in a worker thread, one run
at a time, and keeps the last `LoadRun`; `LoadRequest` is the body it takes. The HTTP side is service/loadtest.py."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from featurestore.keys import validate_name
from featurestore.loadtest import LoadConfig, run_load
from featurestore.loadtest.config import require_fraction, require_number
from featurestore.metrics import BACKEND_POSTGRESQL
from featurestore.settings import FeatureStoreSettings
from service.errors import ApiError
from service.health import iso_utc
from service.store_handle import ServiceStore

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
log = logging.getLogger("service")


class LoadRequest(BaseModel):
    """The body of POST /test/load. Bounds of workers and duration come from the settings (validation context); the
    workload's own rules (a number >= 0, a fraction < 1, a symbol name) are the load generator's (LoadConfig's), and
    the caps here (think_ms, read_fraction) are the service's. The hold inside the lock is a benchmark knob (make
    bench): `hold_ms` is an unknown field here (422)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    workers: int = 20
    duration_seconds: float = 30.0
    symbol: str = "TEST_CONTENTION"
    think_ms: float = Field(default=0.0, le=10000)
    read_fraction: float = Field(default=0.0, le=0.99)
    wait: bool = True

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int, info: ValidationInfo) -> int:
        limit = int((info.context or {}).get("max_workers", 128))
        if not 1 <= value <= limit:
            raise ValueError(f"must be from 1 to {limit}")
        return value

    @field_validator("duration_seconds")
    @classmethod
    def _duration(cls, value: float, info: ValidationInfo) -> float:
        limit = float((info.context or {}).get("max_duration_s", 300.0))
        if not 1 <= value <= limit:
            raise ValueError(f"must be from 1 to {limit:g} seconds")
        return value

    @field_validator("think_ms")
    @classmethod
    def _think(cls, value: float) -> float:
        require_number(value, "think_ms", positive=False)
        return value

    @field_validator("read_fraction")
    @classmethod
    def _read_fraction(cls, value: float) -> float:
        require_fraction(value)
        return value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return validate_name(value, "symbol")


@dataclass
class LoadRun:
    """One run: what was asked, where it stands, and the load generator's result or error."""

    request: LoadRequest
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = RUNNING
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at) if self.finished_at else None,
            "request": self.request.model_dump(),
            "result": self.result,
            "error": self.error,
        }


class LoadRunner:
    """Starts runs in a worker thread, refuses a second one while one runs, stops the current one on shutdown."""

    def __init__(self, store: ServiceStore, store_settings: FeatureStoreSettings) -> None:
        self.store = store
        self.store_settings = store_settings
        self.last: LoadRun | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def config(self, request: LoadRequest) -> LoadConfig:
        backend = self.store.backend_name
        return LoadConfig(
            backend=backend,
            dsn=self.store_settings.dsn() if backend == BACKEND_POSTGRESQL else None,
            workers=request.workers,
            processes=False,
            duration_s=request.duration_seconds,
            symbol=request.symbol,
            think_ms=request.think_ms,
            read_fraction=request.read_fraction,
        )

    def start(self, request: LoadRequest) -> tuple[LoadRun, asyncio.Task[None]]:
        if self.running:
            assert self.last is not None
            raise ApiError(409, f"load run {self.last.id} is still running; one run at a time", run=self.last.id)
        try:
            config = self.config(request)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        run = self.last = LoadRun(request)
        self._stop.clear()
        self._task = task = asyncio.get_running_loop().create_task(self._execute(run, config))
        return run, task

    async def _execute(self, run: LoadRun, config: LoadConfig) -> None:
        request = run.request
        log.info(
            "load run %s started: %d workers for %g s on %s, symbol %s (think %g ms, read fraction %g)",
            run.id, request.workers, request.duration_seconds, config.backend, request.symbol, request.think_ms,
            request.read_fraction,
        )  # fmt: skip

        def progress(line: str) -> None:  # about once a second, from the run's thread
            log.info("load run %s: %s", run.id, line)

        try:
            result = await anyio.to_thread.run_sync(self._run, config, progress)
        except Exception as exc:
            run.status, run.error = FAILED, f"{type(exc).__name__}: {exc}"
            log.warning("load run %s failed: %s", run.id, run.error)
        else:
            run.status, run.result = SUCCEEDED, result.to_json()
            log.info(
                "load run %s succeeded: %d operations, %d errors, %.1f ops/s in %.1f s",
                run.id, result.operations, result.errors, result.throughput_ops_s, result.duration_s,
            )  # fmt: skip
        finally:
            run.finished_at = datetime.now(UTC)

    def _run(self, config: LoadConfig, progress: Callable[[str], None]) -> Any:
        with self.store.borrowed() as store:  # on the embedded default, the run holds the DuckDB file, then frees it
            return run_load(config, store=store, stop=self._stop, progress=progress)

    async def close(self) -> None:
        """Ask the current run to stop and wait for it."""
        self._stop.set()
        if self._task is not None:
            await asyncio.wait([self._task])
