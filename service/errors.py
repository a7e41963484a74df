"""Errors as JSON: `{"error": "<message>"}` with the right status, and never a traceback.

ApiError(status, message)      raised by endpoints for 400/401/403/409/413/422/503
HTTPException (Starlette)      404 / 405 from the router
RequestGuard (ASGI middleware) 413 for a declared Content-Length over the limit, and a catch-all 500 that logs
                               the exception (secrets redacted) instead of letting it reach the server; a client
                               that went away mid-request is one INFO line, nothing sent (nobody is listening)
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.redact import Redactor

log = logging.getLogger("service")
INTERNAL_ERROR = "internal server error; the service log has the details"


class ApiError(Exception):
    """A refusal with a status and a message for the client."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"error": message, **extra}
    if redactor is not None:
        body = redactor.scrub(body)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _redactor(request: Request) -> Redactor | None:
    redactor = getattr(getattr(request.state, "service", None), "redactor", None)
    return redactor if isinstance(redactor, Redactor) else None


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers, _redactor(request), **exc.extra)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:  # a newcomer guessing /docs or /health: say where the list is
        return error_response(404, f"{exc.detail}: GET / lists every endpoint", exc.headers, _redactor(request))
    return error_response(exc.status_code, str(exc.detail), exc.headers, _redactor(request))


class RequestGuard:
    """Outermost of our middleware: refuses oversized declared bodies and turns any exception into a JSON 500."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, redactor: Redactor) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.redactor = redactor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((value for key, value in scope.get("headers", ()) if key.lower() == b"content-length"), None)
        if declared is not None:
            text = declared.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                await error_response(400, "Content-Length is not a non-negative integer")(scope, receive, send)
                return
            # Compared as text first: int() refuses digit strings past a few thousand characters.
            if len(text) > len(str(self.max_body_bytes)) or int(text) > self.max_body_bytes:
                message = f"request body of {text[:30]} bytes is over the limit of {self.max_body_bytes} bytes"
                await error_response(413, message)(scope, receive, send)
                return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client's doing, not a server error: HttpMetrics records it as 499.
            log.info("client went away during %s %r before the request body arrived", scope.get("method"),
                     scope.get("path"))  # fmt: skip
        except Exception as exc:
            text = "".join(traceback.format_exception(exc))
            log.error("unhandled error in %s %s\n%s", scope.get("method"), scope.get("path"), self.redactor.text(text))
            if not started:
                await error_response(500, INTERNAL_ERROR)(scope, receive, send)
