"""Request metrics of the service itself: featurestore_http_requests_total and featurestore_http_request_duration_ms.

A pure ASGI middleware (not BaseHTTPMiddleware: no task per request, streaming untouched). Labels stay bounded: the
route is the matched route's path template, `unmatched` for any other path; a method outside the standard ones is
`OTHER`. The availability SLO is computed from these series, the metrics endpoint's own requests included.

A client that goes away before the response starts (it disconnected mid-body, or the server cut a request that did
not arrive in time) is recorded as 499, nginx's "client closed request": a 4xx, never a server error, so it does not
burn the availability budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from featurestore.instruments import Instruments

UNMATCHED = "unmatched"
OTHER_METHOD = "OTHER"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED_REQUEST = 499


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route the router will pick (a method mismatch counts: it answers 405)."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", UNMATCHED))
        if match is Match.PARTIAL and partial is None:
            partial = str(getattr(route, "path", UNMATCHED))
    return partial or UNMATCHED


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


class HttpMetrics:
    """Records every HTTP request's route template, method, status class and duration in the app's instruments."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = scope.get("state", {}).get("service") if scope["type"] == "http" else None
        if service is None:
            await self.app(scope, receive, send)
            return
        instruments: Instruments = service.instruments
        route = route_template(self.routes, scope)
        status: int | None = None
        client_gone = False
        start = perf_counter()

        async def watching_receive() -> Message:
            nonlocal client_gone
            message = await receive()
            if message["type"] == "http.disconnect" and status is None:
                client_gone = True
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, watching_receive, recording_send)
        finally:
            if status is None:
                status = CLIENT_CLOSED_REQUEST if client_gone else 500
            instruments.record_http(route, method_label(scope["method"]), status, (perf_counter() - start) * 1000.0)
