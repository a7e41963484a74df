"""`python -m service`: run the monitoring service with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from featurestore.conventions import API_PREFIX
from featurestore.settings import FeatureStoreSettings
from service.app import create_app, routes
from service.index import endpoints
from service.redact import Redactor, redactor_for
from service.server import server_config
from service.settings import ServiceSettings
from service.startup import (
    EXIT_STARTUP,
    LifespanGuard,
    QuietStartupFailure,
    StartupError,
    bind,
    check_postgresql,
    describe,
    env_name,
    flag_name,
    settings_problem,
)
from slos.errors import SpecError

EPILOG = """\
environment (flags win over the environment):
  SERVICE_HOST, SERVICE_PORT      where to listen (default 127.0.0.1:8000)
  SERVICE_ADMIN_TOKEN             bearer token for POST {api}/test/load;
                                  unset = that endpoint accepts loopback clients only;
                                  set but empty or blank = a startup error
  SERVICE_REQUIRE_POSTGRESQL      true = refuse to start unless PostgreSQL answers (default false: start on
                                  the DuckDB fallback and keep retrying PostgreSQL)
  SERVICE_SLO_WINDOW_S            window of /slo and /performance in seconds (default 300)
  SERVICE_REQUEST_TIMEOUT_S       a request must arrive whole (line, headers, body) within this long, else its
                                  connection is closed (default 10)
  SERVICE_KEEP_ALIVE_TIMEOUT_S    an idle kept-alive connection is closed after this long (default 5)
  SERVICE_MAX_CONNECTIONS         connections and requests in progress at once; beyond them 503 (default 256)
  SERVICE_MAX_HEADER_BYTES        request line plus headers; beyond it 400 (default 16384)
  SERVICE_MAX_BODY_BYTES          request body; beyond it 413 (default 65536)
  SERVICE_LOG_LEVEL               critical, error, warning, info (default), debug, trace
  FEATURESTORE_PG_DSN             PostgreSQL manifest DSN; unset = DuckDB only, no PostgreSQL needed
  FEATURESTORE_CACHE_DIR          folder of the Parquet files and manifest.duckdb (default ~/.feature_cache)
  other FEATURESTORE_* settings   pool size and timeouts, see featurestore/settings.py

endpoints (also listed by GET /):
{endpoints}

A startup problem (port in use, PostgreSQL unreachable while required, an unusable PROMETHEUS_MULTIPROC_DIR, a bad
setting) ends the process with one line naming it and the fix, and exit status 2. The service does not hold the
DuckDB manifest: a load run opens it, and names the process that holds it if another one does.
"""


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger("service")


class _RedactingFilter(logging.Filter):
    """Masks secrets in every record a handler emits (exception text included)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.text(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redactor.text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def parser(settings: ServiceSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="The feature store's monitoring service: health, SLO status, performance, Prometheus metrics "
        "and an on-demand load test, over the FeatureStore (DuckDB by default, PostgreSQL with FEATURESTORE_PG_DSN).",
        epilog=EPILOG.format(
            api=API_PREFIX,
            endpoints="\n".join(
                f"  {line['method']:<5} {line['path']:<36} {line['summary']}" for line in endpoints(routes())
            ),
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=settings.host, help=f"interface to bind (default {settings.host})")
    parser.add_argument("--port", type=int, default=settings.port, help=f"port to bind (default {settings.port})")
    parser.add_argument(
        "--log-level",
        default=settings.log_level,
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help=f"log level (default {settings.log_level})",
    )
    parser.add_argument(
        "--require-postgresql",
        action=argparse.BooleanOptionalAction,
        default=settings.require_postgresql,
        help="refuse to start unless PostgreSQL answers at FEATURESTORE_PG_DSN (SERVICE_REQUIRE_POSTGRESQL; "
        f"default {str(settings.require_postgresql).lower()})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _serve(argv)
    except StartupError as exc:
        print(f"python -m service: {exc}", file=sys.stderr)
        return EXIT_STARTUP


def _settings(argv: Sequence[str] | None) -> tuple[ServiceSettings, FeatureStoreSettings]:
    try:
        settings = ServiceSettings()
        store_settings = FeatureStoreSettings()
    except ValidationError as exc:
        prefix = "SERVICE_" if exc.title == ServiceSettings.__name__ else "FEATURESTORE_"
        raise StartupError(settings_problem(exc, env_name(prefix))) from None
    args = parser(settings).parse_args(argv)
    flags = {"host": args.host, "port": args.port, "log_level": args.log_level}
    try:
        # Validated like the environment: --port 70000 is refused here, not by the socket.
        settings = ServiceSettings(**flags, require_postgresql=args.require_postgresql)
    except ValidationError as exc:
        raise StartupError(settings_problem(exc, flag_name)) from None
    return settings, store_settings


def _serve(argv: Sequence[str] | None) -> int:
    settings, store_settings = _settings(argv)
    logging.basicConfig(level=settings.log_level.upper().replace("TRACE", "DEBUG"), format=LOG_FORMAT)
    redactor = redactor_for(settings, store_settings)
    if settings.require_postgresql:
        try:
            check_postgresql(store_settings)
        except StartupError as exc:
            raise StartupError(redactor.text(str(exc))) from None
    sock = bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    url = f"http://{f'[{settings.host}]' if ':' in settings.host else settings.host}:{port}/"
    try:
        app = create_app(settings, store_settings)
    except SpecError as exc:
        sock.close()
        raise StartupError(describe(exc)) from None
    guard = LifespanGuard(
        app,
        on_started=lambda: log.info("serving on %s (GET / lists every endpoint; Ctrl-C stops)", url),
    )
    config = server_config(guard, settings, port)
    server = uvicorn.Server(config)
    # uvicorn.Config has configured its loggers by now. Access lines keep their formatter's args (path and client
    # only); every other line, ours and the libraries' alike, passes the filter.
    redacting = _RedactingFilter(redactor)
    for handler in (*logging.getLogger().handlers, *logging.getLogger("uvicorn").handlers):
        handler.addFilter(redacting)
    logging.getLogger("uvicorn.error").addFilter(QuietStartupFailure(guard))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, after a clean shutdown
        pass
    except SystemExit:
        if guard.failure is None:
            raise
    finally:
        sock.close()
    if guard.failure is not None:
        raise StartupError(redactor.text(describe(guard.failure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
