"""POST/GET /api/v1/monitoring/test/load: run the load generator against the app's own store, one run at a time.

Body (every field optional): {"workers": 20, "duration_seconds": 30, "symbol": "TEST_CONTENTION", "think_ms": 0,
"read_fraction": 0.0, "wait": true}. With read_fraction 0 (the guide's body) every operation publishes a
new key; with 0 < read_fraction <= 0.99 every operation is a get_or_compute lookup, a hit on a key the worker published
before with that probability, else a miss that publishes a new one, so the run also drives the hit, miss, hit-ratio and
manifest-read-latency metrics. `hold_ms` (work held inside the lock) is the benchmark's (make bench), not a field
here: a body with it is a 422 naming it, like any unknown field. An empty body is the guide's {"workers": 20,
"duration_seconds": 30, "symbol": "TEST_CONTENTION"} (docs/service.md says so beside the guide's curl); with
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
from typing import Any

from pydantic import SecretStr, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from service.errors import ApiError
from service.load_runner import FAILED, LoadRequest
from service.state import service_of


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
    scheme, _, credential = header.partition(" ")
    given, expected = credential.strip().encode(), token.get_secret_value().strip().encode()
    # An empty credential never authenticates, even against a blank token that slipped past the settings.
    if scheme.lower() != "bearer" or not given or not expected or not hmac.compare_digest(given, expected):
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
