"""The monitoring service: `create_app(settings)` returns the Starlette app; resources live in its lifespan.

lifespan: registry + Instruments (featurestore.instruments.build: the metrics folder of PROMETHEUS_MULTIPROC_DIR,
          the cache folder's .metrics on the embedded default, else this process's memory) → Exporter (the
          registry, or the folder's aggregate) → ServiceStore (held on PostgreSQL, opened per load run on DuckDB)
          → SampleRing, HealthChecker, LoadRunner; a background task snapshots the exporter every
          `snapshot_interval_s`
routes:   / and /api/v1/monitoring (index), /metrics (the exposition, as under the prefix),
          /api/v1/monitoring/{health, health/ready, health/live, slo, performance, metrics, test/load}
middleware (outermost first): HttpMetrics (request counter + duration), RequestGuard (413, JSON 500)
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from featurestore import instruments as instruments_module
from featurestore.conventions import (
    HEALTH_PATH,
    LIVE_PATH,
    LOAD_TEST_PATH,
    METRICS_PATH,
    METRICS_ROOT_PATH,
    PERFORMANCE_PATH,
    READY_PATH,
    SLO_PATH,
)
from featurestore.exposition import CONTENT_TYPE as EXPOSITION_CONTENT_TYPE
from featurestore.instruments import Instruments
from featurestore.layout import METRICS_FOLDER
from featurestore.manifest.base import UNHEALTHY
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore
from service import performance, slo
from service.errors import ApiError, RequestGuard, api_error, error_response, http_error
from service.exporter import Exporter, exporter_for
from service.health import HealthChecker
from service.http_metrics import HttpMetrics
from service.index import index_routes
from service.load_runner import LoadRunner
from service.loadtest import load_status, start_load
from service.redact import redactor_for
from service.settings import ServiceSettings
from service.state import Service, service_of
from service.store_handle import ServiceStore, StoreOpener
from service.window import SampleRing
from slos.loader import load_specs

log = logging.getLogger("service")


def open_store(store_settings: FeatureStoreSettings, instruments: Instruments) -> FeatureStore:
    """The real store: PostgreSQL with the DuckDB fallback when FEATURESTORE_PG_DSN is set, else DuckDB."""
    return FeatureStore.open(settings=store_settings, instruments=instruments)


async def health(request: Request) -> Response:
    service = service_of(request)
    report = await service.health.check()
    return service.json(report.to_json())


async def ready(request: Request) -> Response:
    service = service_of(request)
    report = await service.health.check()
    if report.overall_status == UNHEALTHY:
        reasons = report.reasons()
        body = {"status": "not_ready", "error": "not ready: " + "; ".join(reasons), "reasons": reasons}
        return service.json(body, status=503)
    return service.json(
        {"status": "ready", "overall_status": report.overall_status, "backend": service.store.backend_name}
    )


async def live(request: Request) -> Response:
    """Alive as long as the event loop answers: touches no database."""
    service = getattr(request.state, "service", None)
    uptime = time.monotonic() - service.started_at if isinstance(service, Service) else 0.0
    return JSONResponse({"status": "alive", "uptime_seconds": round(uptime, 3)})


async def slo_status(request: Request) -> Response:
    service = service_of(request)

    def evaluate() -> dict[str, Any]:
        return slo.report(service.slos, service.ring.window(), service.settings.slo_window_s)

    return service.json(await anyio.to_thread.run_sync(evaluate))


async def performance_summary(request: Request) -> Response:
    service = service_of(request)

    def summarize() -> dict[str, Any]:
        return performance.summary(
            service.ring.window(),
            backend_in_use=service.store.backend_name,
            window_s=service.settings.slo_window_s,
            top=service.settings.top_symbols,
        )

    return service.json(await anyio.to_thread.run_sync(summarize))


class MetricsEndpoint:
    """Prometheus text format 0.0.4 of what the service exports, rendered in a worker thread, never on the event loop.

    The body comes from the service's Exporter (built in the lifespan): this process's registry written by
    featurestore.exposition.TextExposition (what prometheus_client would write minus the `_created` series, in about
    a tenth of the time at the symbol cap), or the aggregate of the metrics folder, plus the windowed hit ratio.
    Text 0.0.4 is served whatever the Accept header asks (Prometheus accepts it); `name[]` keeps only those families.
    gzip at level 1: level 9 (the client's default) cost 27 ms for 30 KB less.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = scope.get("state", {}).get("service")
        if not isinstance(service, Service):
            await error_response(503, "the service is starting or stopping")(scope, receive, send)
            return
        names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name[]")
        gzipped = _accepts_gzip(Headers(scope=scope).get("accept-encoding", ""))

        def body() -> bytes:
            # The pool gauges are refreshed when read, not on every insert: one get_stats() under the pool's lock.
            service.store.pool_stats()
            text = service.exporter.read().render(set(names) if names else None)
            return gzip.compress(text, compresslevel=1) if gzipped else text

        headers = {"Content-Type": EXPOSITION_CONTENT_TYPE}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        await Response(await anyio.to_thread.run_sync(body), headers=headers)(scope, receive, send)


def _accepts_gzip(accept_encoding: str) -> bool:
    return any(token.split(";")[0].strip().lower() == "gzip" for token in accept_encoding.split(","))


def routes() -> list[BaseRoute]:
    return [
        *index_routes(),
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route(READY_PATH, ready, methods=["GET"]),
        Route(LIVE_PATH, live, methods=["GET"]),
        Route(SLO_PATH, slo_status, methods=["GET"]),
        Route(PERFORMANCE_PATH, performance_summary, methods=["GET"]),
        Route(METRICS_PATH, MetricsEndpoint(), methods=["GET"], name="metrics"),
        Route(METRICS_ROOT_PATH, MetricsEndpoint(), methods=["GET"]),
        Route(LOAD_TEST_PATH, start_load, methods=["POST"]),
        Route(LOAD_TEST_PATH, load_status, methods=["GET"], name="load_status"),
    ]


async def _snapshots(ring: SampleRing, interval_s: float, store: ServiceStore) -> None:
    def record() -> None:
        store.pool_stats()  # /performance reads the pool gauges from these snapshots
        ring.record()

    while True:
        await asyncio.sleep(interval_s)
        try:
            await anyio.to_thread.run_sync(record)
        except Exception:
            log.exception("registry snapshot failed")


def create_app(
    settings: ServiceSettings | None = None,
    store_settings: FeatureStoreSettings | None = None,
    *,
    store_opener: StoreOpener = open_store,
    hold_store: bool | None = None,
) -> Starlette:
    """The app. Settings default to the SERVICE_* and FEATURESTORE_* environment, read now (not at import).

    `hold_store`: keep the store open from start to stop; by default only with PostgreSQL (ServiceStore says why).
    Long on purpose: the lifespan opens the instruments, the store, the sample ring and the snapshot task in order and
    closes them in reverse through nested `finally`s; in one place, each open reads beside its close."""
    settings = settings if settings is not None else ServiceSettings()
    store_settings = store_settings if store_settings is not None else FeatureStoreSettings()
    slos = load_specs().slos
    redactor = redactor_for(settings, store_settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        registry = CollectorRegistry()
        # On the embedded default, a store in another process on the same cache folder writes to this folder.
        default_folder = None if store_settings.dsn() else store_settings.resolved_cache_dir() / METRICS_FOLDER
        instruments = instruments_module.build(registry, store_settings.symbol_label_cap, default_folder=default_folder)
        instruments.initialize_series()
        try:
            exporter: Exporter = exporter_for(instruments, settings.slo_window_s)
        except BaseException:
            instruments.close()
            raise
        hold = hold_store if hold_store is not None else store_settings.dsn() is not None
        store = ServiceStore(store_opener, store_settings, instruments, hold=hold)
        try:
            await anyio.to_thread.run_sync(store.start)
            ring = SampleRing(registry, settings.slo_window_s, source=lambda: exporter.read().samples())
            await anyio.to_thread.run_sync(ring.record)
            checker = HealthChecker(
                store,
                instruments,
                pg_configured=store_settings.dsn() is not None,
                ring=ring,
                snapshot_interval_s=settings.snapshot_interval_s,
                timeout_s=settings.health_check_timeout_s,
                max_threads=settings.health_check_threads,
                skipped_files=exporter.skipped_files,
            )
            service = Service(
                settings=settings,
                store_settings=store_settings,
                slos=slos,
                redactor=redactor,
                instruments=instruments,
                store=store,
                ring=ring,
                health=checker,
                loads=LoadRunner(store, store_settings),
                exporter=exporter,
                started_at=time.monotonic(),
            )
            snapshots = asyncio.get_running_loop().create_task(_snapshots(ring, settings.snapshot_interval_s, store))
            try:
                yield {"service": service}
            finally:
                snapshots.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await snapshots
                await service.loads.close()
        finally:
            await anyio.to_thread.run_sync(store.close)
            exporter.close()
            instruments.close()

    app_routes = routes()
    return Starlette(
        routes=app_routes,
        lifespan=lifespan,
        middleware=[
            Middleware(HttpMetrics, routes=app_routes),
            Middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, redactor=redactor),
        ],
        exception_handlers={HTTPException: http_error, ApiError: api_error},
    )
