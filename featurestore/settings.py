"""Settings of the feature core, read from FEATURESTORE_* environment variables when built."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from featurestore.metrics import DEFAULT_SYMBOL_CAP


class FeatureStoreSettings(BaseSettings):
    """Feature-store configuration; build it in main()/create_app(), never at import time."""

    model_config = SettingsConfigDict(env_prefix="FEATURESTORE_", frozen=True, extra="ignore")

    pg_dsn: SecretStr | None = Field(default=None, description="PostgreSQL DSN of the manifest; unset = DuckDB only")
    cache_dir: Path = Field(default=Path("~/.feature_cache"), description="Folder of Parquet files and manifest.duckdb")
    # 64 processes x 4 connections would pass PostgreSQL's default max_connections of 100.
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=2, ge=1)
    pool_timeout_s: float = Field(default=10.0, gt=0, description="Wait for a pooled connection before PoolTimeout")
    connect_timeout_s: float = Field(default=3.0, gt=0)
    lock_timeout_ms: int = Field(default=5000, gt=0, description="Advisory lock wait before LockTimeout")
    statement_timeout_ms: int = Field(default=30000, gt=0)
    compute_lease_s: float = Field(default=600.0, gt=0, description="Longest a compute may hold the single-flight")
    replay_interval_s: float = Field(default=2.0, gt=0, description="How often fallback entries are retried")
    symbol_label_cap: int = Field(default=DEFAULT_SYMBOL_CAP, ge=0, description="Distinct symbol label values")

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir.expanduser().resolve()
