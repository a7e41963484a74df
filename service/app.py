"""The monitoring service: `create_app(settings)` returns the Starlette app; resources live in its lifespan.

lifespan: registry + Instruments (featurestore.metrics.build) → FeatureStore.open(instruments=…) → SampleRing,
          HealthChecker, LoadRunner; a background task snapshots the registry every `snapshot_interval_s`
routes:   /api/v1/monitoring/{health, health/ready, health/live, slo, performance, metrics, test/load}
middleware (outermost first): HttpMetrics (request counter + duration), RequestGuard (413, JSON 500)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from featurestore import metrics
from featurestore.manifest.base import UNHEALTHY
from featurestore.metrics import Instruments
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore
from service import performance, slo
from service.errors import ApiError, RequestGuard, api_error, error_response, http_error
from service.health import HealthChecker
from service.http_metrics import HttpMetrics
from service.loadtest import LoadRunner, load_status, start_load
from service.redact import redactor_for
from service.settings import ServiceSettings
from service.state import Service, service_of
from service.window import SampleRing
from slos.loader import load_specs

API = "/api/v1/monitoring"
log = logging.getLogger("service")

StoreOpener = Callable[[FeatureStoreSettings, Instruments], FeatureStore]


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
    """Prometheus exposition of the app's registry: prometheus_client's ASGI app, taken from the lifespan state."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = scope.get("state", {}).get("service")
        if not isinstance(service, Service):
            await error_response(503, "the service is starting or stopping")(scope, receive, send)
            return
        # The pool gauges are refreshed when read, not on every insert: one get_stats() under the pool's own lock.
        service.store.pool_stats()
        await service.metrics_app(scope, receive, send)


def routes() -> list[BaseRoute]:
    return [
        Route(f"{API}/health", health, methods=["GET"]),
        Route(f"{API}/health/ready", ready, methods=["GET"]),
        Route(f"{API}/health/live", live, methods=["GET"]),
        Route(f"{API}/slo", slo_status, methods=["GET"]),
        Route(f"{API}/performance", performance_summary, methods=["GET"]),
        Route(f"{API}/metrics", MetricsEndpoint(), methods=["GET"], name="metrics"),
        Route(f"{API}/test/load", start_load, methods=["POST"]),
        Route(f"{API}/test/load", load_status, methods=["GET"], name="load_status"),
    ]


async def _snapshots(ring: SampleRing, interval_s: float, store: FeatureStore) -> None:
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
) -> Starlette:
    """The app. Settings default to the SERVICE_* and FEATURESTORE_* environment, read now (not at import)."""
    settings = settings if settings is not None else ServiceSettings()
    store_settings = store_settings if store_settings is not None else FeatureStoreSettings()
    slos = load_specs().slos
    redactor = redactor_for(settings, store_settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        registry = CollectorRegistry()
        instruments = metrics.build(registry, store_settings.symbol_label_cap)
        store = await anyio.to_thread.run_sync(store_opener, store_settings, instruments)
        try:
            ring = SampleRing(registry, settings.slo_window_s)
            ring.record()
            checker = HealthChecker(
                store,
                instruments,
                pg_configured=store_settings.dsn() is not None,
                pool_capacity=store_settings.pool_max_size,
                ring=ring,
                snapshot_interval_s=settings.snapshot_interval_s,
                timeout_s=settings.health_check_timeout_s,
                max_threads=settings.health_check_threads,
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
                metrics_app=make_asgi_app(registry),
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
