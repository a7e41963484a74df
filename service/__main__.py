"""`python -m service`: run the monitoring service with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from featurestore.settings import FeatureStoreSettings
from service.app import API, create_app
from service.redact import Redactor, redactor_for
from service.settings import ServiceSettings

EPILOG = f"""\
environment (flags win over the environment):
  SERVICE_HOST, SERVICE_PORT      where to listen (default 127.0.0.1:8000)
  SERVICE_ADMIN_TOKEN             bearer token for POST {API}/test/load;
                                  unset = that endpoint accepts loopback clients only
  SERVICE_SLO_WINDOW_S            window of /slo and /performance in seconds (default 300)
  SERVICE_LOG_LEVEL               critical, error, warning, info (default), debug, trace
  FEATURESTORE_PG_DSN             PostgreSQL manifest DSN; unset = DuckDB only, no PostgreSQL needed
  FEATURESTORE_CACHE_DIR          folder of the Parquet files and manifest.duckdb (default ~/.feature_cache)
  other FEATURESTORE_* settings   pool size and timeouts, see featurestore/settings.py

endpoints: {API}/health, /health/ready, /health/live, /slo, /performance, /metrics, /test/load
"""


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
        epilog=EPILOG,
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = ServiceSettings()
        store_settings = FeatureStoreSettings()
    except ValidationError as exc:
        print(f"python -m service: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    args = parser(settings).parse_args(argv)
    settings = settings.model_copy(update={"host": args.host, "port": args.port, "log_level": args.log_level})
    logging.basicConfig(level=settings.log_level.upper().replace("TRACE", "DEBUG"), format=LOG_FORMAT)
    config = uvicorn.Config(
        create_app(settings, store_settings), host=settings.host, port=settings.port, log_level=settings.log_level
    )
    server = uvicorn.Server(config)
    # uvicorn.Config has configured its loggers by now. Access lines keep their formatter's args (path and client
    # only); every other line, ours and the libraries' alike, passes the filter.
    redacting = _RedactingFilter(redactor_for(settings, store_settings))
    for handler in (*logging.getLogger().handlers, *logging.getLogger("uvicorn").handlers):
        handler.addFilter(redacting)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, after a clean shutdown
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
