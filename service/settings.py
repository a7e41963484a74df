"""Settings of the monitoring service, read from SERVICE_* environment variables when built."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from featurestore.conventions import DEFAULT_PORT


class ServiceSettings(BaseSettings):
    """Monitoring-service configuration; build it in main()/create_app(), never at import time."""

    model_config = SettingsConfigDict(env_prefix="SERVICE_", frozen=True, extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface uvicorn binds to")
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, description="TCP port uvicorn binds to")
    log_level: str = Field(
        default="info", pattern=r"^(critical|error|warning|info|debug|trace)$", description="uvicorn's log level"
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the load endpoint requires; unset = the load endpoint accepts loopback clients only",
    )
    require_postgresql: bool = Field(
        default=False,
        description="Refuse to start unless PostgreSQL answers; false = start on the DuckDB fallback and retry",
    )
    # The ring of snapshots keeps a bit more than the window.
    slo_window_s: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="Window of GET /slo, GET /performance and featurestore_hit_ratio, like the rules' [5m]",
    )
    snapshot_interval_s: float = Field(
        default=5.0, gt=0, le=60, description="How often the service snapshots its metrics for that window"
    )
    health_check_timeout_s: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="A health check still running after this long is abandoned and reported unhealthy (timed out)",
    )
    health_check_threads: int = Field(default=4, ge=1, le=64, description="Health checks running at once, at most")
    max_body_bytes: int = Field(default=64 * 1024, ge=1, description="Larger request bodies get 413")
    # The server's own limits (service/server.py): a connection costs a socket and a little memory until cut.
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, le=1024 * 1024, description="Larger request lines plus headers get 400"
    )
    request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="A request's line, headers and body must arrive within this long of the connection opening (or "
        "of its first byte, on a kept-alive connection); else the connection is closed",
    )
    keep_alive_timeout_s: int = Field(
        default=5, ge=1, le=300, description="An idle kept-alive connection is closed after this long"
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        le=65536,
        description="Open connections and requests in progress at once; a request beyond them gets 503",
    )
    load_max_workers: int = Field(default=128, ge=1, le=1024, description="Most workers a load-test body may ask for")
    load_max_duration_s: float = Field(
        default=300.0, gt=0, le=3600, description="Longest duration_seconds a load-test body may ask for"
    )
    top_symbols: int = Field(default=10, ge=1, le=100, description="Symbols listed by GET /performance")

    @field_validator("admin_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # Set but blank is a mistake (an empty secret mounted, a template left unfilled), never "no token": it would
        # make an empty bearer credential the password of the load endpoint.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is set but empty or blank: set a token, or unset it to serve loopback clients only")
        return value
