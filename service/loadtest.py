"""POST/GET /api/v1/monitoring/test/load: run the load generator against the app's own store, one run at a time.

Body (every field optional): {"workers": 20, "duration_seconds": 30, "symbol": "TEST_CONTENTION", "hold_ms": 0,
"think_ms": 0, "read_fraction": 0.0, "wait": true}. With read_fraction 0 (the guide's body) every operation publishes a
new key; with 0 < read_fraction <= 0.99 every operation is a get_or_compute lookup, a hit on a key the worker published
before with that probability, else a miss that publishes a new one, so the run also drives the hit, miss, hit-ratio and
manifest-read-latency metrics (a read mix takes no hold_ms). An empty body is the guide's {"workers": 20,
"duration_seconds": 30, "symbol": "TEST_CONTENTION"} (README "The service" says so beside the guide's curl); with
"wait": true the call returns when the run ends. A run logs one line when it starts, one about every second while it
goes (operations, errors, ops/s) and one when it ends.

The run uses thread mode with the app's store, so the app's registry records it live and Prometheus sees it. Access:
with SERVICE_ADMIN_TOKEN set, `Authorization: Bearer <token>` (missing 401, wrong 403, compared in constant time);
without it, loopback clients only (403). Input is strict (no coercion, unknown fields refused) and bounded (422).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from starlette.requests import Request
from starlette.responses import Response

from featurestore.keys import validate_name
from featurestore.loadtest import LoadConfig, run_load
from featurestore.metrics import BACKEND_POSTGRESQL
from featurestore.settings import FeatureStoreSettings
from service.errors import ApiError
from service.health import iso_utc
from service.state import service_of
from service.store_handle import ServiceStore

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
log = logging.getLogger("service")


class LoadRequest(BaseModel):
    """The body of POST /test/load. Bounds of workers and duration come from the settings (validation context)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    workers: int = 20
    duration_seconds: float = 30.0
    symbol: str = "TEST_CONTENTION"
    hold_ms: float = Field(default=0.0, ge=0, le=1000)
    think_ms: float = Field(default=0.0, ge=0, le=10000)
    read_fraction: float = Field(default=0.0, ge=0, le=0.99)
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

    @field_validator("read_fraction")
    @classmethod
    def _read_fraction(cls, value: float, info: ValidationInfo) -> float:
        if value > 0 and info.data.get("hold_ms", 0.0) > 0:
            raise ValueError("a read mix publishes through get_or_compute, which holds nothing: set hold_ms to 0")
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
            hold_ms=request.hold_ms,
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
            "load run %s started: %d workers for %g s on %s, symbol %s (hold %g ms, think %g ms, read fraction %g)",
            run.id, request.workers, request.duration_seconds, config.backend, request.symbol, request.hold_ms,
            request.think_ms, request.read_fraction,
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


def is_loopback(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def authorize(request: Request, token: SecretStr | None) -> None:
    if token is None:
        host = request.client.host if request.client else None
        if not is_loopback(host):
            raise ApiError(403, "the load endpoint serves loopback clients only while SERVICE_ADMIN_TOKEN is unset")
        return
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(401, "this endpoint needs Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    scheme, _, given = header.partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(403, "the bearer token is not valid")


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON (empty = {}), refusing bodies over `limit` bytes (413) and malformed JSON (400)."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, f"request body is over the limit of {limit} bytes")
    if not body.strip():
        return {}
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON: {str(exc)[:200]}") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_request(document: Any, *, max_workers: int, max_duration_s: float) -> LoadRequest:
    if not isinstance(document, dict):
        raise ApiError(422, f"the body must be a JSON object, got {type(document).__name__}")
    try:
        return LoadRequest.model_validate(
            document, context={"max_workers": max_workers, "max_duration_s": max_duration_s}
        )
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]) or "<body>", "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        message = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
        raise ApiError(422, f"invalid load request: {message}", problems=problems) from None


async def start_load(request: Request) -> Response:
    service = service_of(request)
    settings = service.settings
    authorize(request, settings.admin_token)
    document = await read_json(request, settings.max_body_bytes)
    load = parse_request(document, max_workers=settings.load_max_workers, max_duration_s=settings.load_max_duration_s)
    run, task = service.loads.start(load)
    if not load.wait:
        body = {**run.to_json(), "status_url": str(request.url_for("load_status"))}
        return service.json(body, status=202)
    await asyncio.shield(task)
    if run.status == FAILED:
        return service.json({"error": f"load run failed: {run.error}", **run.to_json()}, status=503)
    return service.json(run.to_json())


async def load_status(request: Request) -> Response:
    service = service_of(request)
    authorize(request, service.settings.admin_token)
    run = service.loads.last
    if run is None:
        return service.json({"status": "idle", "id": None, "result": None, "error": None})
    return service.json(run.to_json())
