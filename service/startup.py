"""What can stop `python -m service` from starting, each turned into one line that names the problem and the fix.

    settings (SERVICE_*, FEATURESTORE_*, flags) ──▶ PostgreSQL, when required ──▶ bind the port ──▶ lifespan
    (StartupError for each; the lifespan's own failures, such as the DuckDB manifest held by another process,
     are caught by LifespanGuard and described by `describe`)

`python -m service` prints the line and exits with status 2, without a traceback (`--log-level debug` logs it).
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable

import psycopg
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from featurestore.errors import BackendUnavailable, ManifestLocked
from featurestore.settings import FeatureStoreSettings
from slos.errors import SpecError

log = logging.getLogger("service")
EXIT_STARTUP = 2


class StartupError(Exception):
    """A problem that stops the service from starting; its message is one line with the fix."""


def env_name(prefix: str) -> Callable[[str], str]:
    """`port` -> `SERVICE_PORT` for prefix `SERVICE_`."""
    return lambda field: prefix + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def settings_problem(exc: ValidationError, name_of: Callable[[str], str]) -> str:
    """A pydantic-settings error as `SERVICE_PORT='abc': reason` (or `--port`), every field on one line."""
    problems = []
    for detail in exc.errors(include_url=False):
        name = name_of("_".join(str(part) for part in detail["loc"]))
        value = detail.get("input")
        shown = f"={value!r}" if isinstance(value, str | int | float) and not name.endswith(("DSN", "TOKEN")) else ""
        problems.append(f"{name}{shown}: {detail['msg']}")
    return "invalid settings: " + "; ".join(problems) + " (python -m service --help lists them)"


def check_postgresql(store_settings: FeatureStoreSettings) -> None:
    """With SERVICE_REQUIRE_POSTGRESQL: PostgreSQL is configured and answers, or StartupError."""
    dsn = store_settings.dsn()
    if not dsn:
        raise StartupError(
            "SERVICE_REQUIRE_POSTGRESQL is set but FEATURESTORE_PG_DSN is not: set the DSN, "
            "or unset SERVICE_REQUIRE_POSTGRESQL to run on the embedded DuckDB manifest"
        )
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(store_settings.connect_timeout_s))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StartupError(
            f"PostgreSQL at {store_settings.redacted_dsn()} does not answer ({reason}): start it or fix "
            "FEATURESTORE_PG_DSN, or unset SERVICE_REQUIRE_POSTGRESQL to start on the DuckDB fallback"
        ) from None


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port stops the start before the store is opened."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use (another `make serve` or `python -m service`?): "
                f"stop that process, or pick another port with --port N or SERVICE_PORT=N"
            ) from None
        if exc.errno == errno.EACCES:
            raise StartupError(f"no permission to listen on {host}:{port}: use a port above 1023 (--port)") from None
        raise StartupError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): check --host / SERVICE_HOST"
        ) from None
    sock.set_inheritable(True)
    return sock


def describe(exc: BaseException) -> str:
    """One line for an exception that stopped the lifespan's startup."""
    text = " ".join(str(exc).split())
    if isinstance(exc, ManifestLocked):
        pid = f"process {exc.pid}" if exc.pid is not None else "the other process"
        return f"{text}. Stop {pid}, or point this service at another folder with FEATURESTORE_CACHE_DIR"
    if isinstance(exc, BackendUnavailable):
        return f"the manifest cannot be opened: {text}"
    if isinstance(exc, SpecError):
        return f"the SLO specs are invalid ({text}): run `python -m generators --check` for every problem"
    if isinstance(exc, PermissionError):
        return f"{text}: set FEATURESTORE_CACHE_DIR to a folder this user can write"
    return f"{type(exc).__name__}: {text}"


class LifespanGuard:
    """Wraps the app: a lifespan startup that raises is reported to the server without its traceback, and kept.

    `failure` holds the exception; the server stops ("Application startup failed") and `python -m service` prints
    `describe(failure)` and exits with status 2. `on_started` runs once the lifespan has started.
    """

    def __init__(self, app: ASGIApp, on_started: Callable[[], None] | None = None) -> None:
        self.app = app
        self.failure: BaseException | None = None
        self.on_started = on_started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "lifespan.startup.failed":
                message = {"type": "lifespan.startup.failed", "message": ""}
            elif message["type"] == "lifespan.startup.complete":
                started = True
                if self.on_started is not None:
                    self.on_started()
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except Exception as exc:
            if started:
                raise
            self.failure = exc
            log.debug("startup failed", exc_info=exc)


class QuietStartupFailure(logging.Filter):
    """Drops uvicorn's "Application startup failed" line: the guard's one line says more."""

    def __init__(self, guard: LifespanGuard) -> None:
        super().__init__()
        self.guard = guard

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.guard.failure is not None and record.getMessage().startswith("Application startup failed"))
