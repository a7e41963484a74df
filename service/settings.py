"""Settings of the monitoring service, read from SERVICE_* environment variables when built."""

from __future__ import annotations

from pydantic import Field, SecretStr
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
    load_max_workers: int = Field(default=128, ge=1, le=1024, description="Most workers a load-test body may ask for")
    load_max_duration_s: float = Field(
        default=300.0, gt=0, le=3600, description="Longest duration_seconds a load-test body may ask for"
    )
    top_symbols: int = Field(default=10, ge=1, le=100, description="Symbols listed by GET /performance")
