"""`GET /` and `GET /api/v1/monitoring`: what this service is and every endpoint it serves, one line each.

The list is read from the app's own routes, so an endpoint cannot be served without being listed (a test holds every
route to a line in ENDPOINTS). A browser (Accept: text/html) gets the same as a page of links; anything else JSON.
`GET /metrics` serves the same exposition as the guide's metrics path, so a plain `curl /metrics` shows it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from featurestore.conventions import (
    API_PREFIX,
    HEALTH_PATH,
    LIVE_PATH,
    LOAD_TEST_PATH,
    METRICS_PATH,
    METRICS_ROOT_PATH,
    PERFORMANCE_PATH,
    READY_PATH,
    SLO_PATH,
)
from service.state import Service

DISTRIBUTION = "featurestore-monitoring"

# (method, path) -> one line for a newcomer. Paths are the app's route paths.
ENDPOINTS: dict[tuple[str, str], str] = {
    ("GET", "/"): "this index",
    ("GET", API_PREFIX): "this index",
    ("GET", METRICS_ROOT_PATH): f"Prometheus text format, the same as {METRICS_PATH}",
    ("GET", HEALTH_PATH): "health of PostgreSQL, the DuckDB fallback and the metrics, with details",
    ("GET", READY_PATH): "readiness probe: 200 while the store can serve, 503 with the reasons otherwise",
    ("GET", LIVE_PATH): "liveness probe: 200 while the event loop answers (touches no database)",
    ("GET", SLO_PATH): "every SLO of slos/specs over the last window: threshold, current value, compliant",
    ("GET", PERFORMANCE_PATH): "throughput, latency quantiles, lock waits, cache hits, busiest symbols",
    ("GET", METRICS_PATH): "Prometheus text format: what Prometheus scrapes",
    ("POST", LOAD_TEST_PATH): "run the load generator in this service; the empty body is the guide's "
    '{"workers": 20, "duration_seconds": 30, "symbol": "TEST_CONTENTION"}',
    ("GET", LOAD_TEST_PATH): "status and result of the last load run",
}


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def endpoints(routes: Sequence[BaseRoute]) -> list[dict[str, str]]:
    """One line per (method, path) the app serves, in route order."""
    lines = []
    for route in routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            summary = ENDPOINTS.get((method, route.path), "")
            lines.append({"method": method, "path": route.path, "summary": summary})
    return lines


def index_body(request: Request) -> dict[str, Any]:
    service = getattr(request.state, "service", None)
    backend = service.store.backend_name if isinstance(service, Service) else None
    return {
        "service": DISTRIBUTION,
        "version": version(),
        "backend": backend,
        "metrics_path": METRICS_PATH,
        "endpoints": endpoints(request.app.routes),
    }


async def index(request: Request) -> Response:
    body = index_body(request)
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse(body)
    rows = "\n".join(
        f"<li><code>{line['method']}</code> "
        + (
            f'<a href="{html.escape(line["path"])}">{html.escape(line["path"])}</a>'
            if line["method"] == "GET"
            else f"<code>{html.escape(line['path'])}</code>"
        )
        + f" &mdash; {html.escape(line['summary'])}</li>"
        for line in body["endpoints"]
    )
    page = (
        f"<!doctype html><title>{DISTRIBUTION}</title><h1>{DISTRIBUTION} {html.escape(body['version'])}</h1>"
        f"<p>backend: {html.escape(str(body['backend']))}; Prometheus scrapes "
        f'<a href="{METRICS_PATH}">{METRICS_PATH}</a></p><ul>\n{rows}\n</ul>\n'
    )
    return HTMLResponse(page)


def index_routes() -> list[Route]:
    return [
        Route("/", index, methods=["GET"]),
        Route(API_PREFIX, index, methods=["GET"]),
    ]
