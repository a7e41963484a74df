"""FeatureStore: the compute-once feature cache over a manifest backend.  (INTERFACE STUB - the core issue fills it.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa

from featurestore.manifest.base import ComponentHealth, InsertOutcome, LockScope
from featurestore.metrics import Instruments
from featurestore.settings import FeatureStoreSettings


class FeatureStore:
    """Feature frames per (symbol, feature, params), computed once across processes and cached on disk."""

    settings: FeatureStoreSettings
    instruments: Instruments

    @classmethod
    def open(
        cls,
        pg_dsn: str | None = None,
        cache_dir: Path | None = None,
        *,
        settings: FeatureStoreSettings | None = None,
        instruments: Instruments | None = None,
    ) -> FeatureStore:
        """Open the store: PostgreSQL (with DuckDB fallback) when a DSN is given or configured, else DuckDB."""
        raise NotImplementedError

    def get_or_compute(
        self, symbol: str, feature: str, params: dict[str, Any], compute: Callable[[], pa.Table]
    ) -> pa.Table:
        """The cached frame for the key, or compute it once across all processes, publish it and return it."""
        raise NotImplementedError

    def publish(
        self,
        symbol: str,
        feature: str,
        params: dict[str, Any],
        table: pa.Table,
        *,
        lock: LockScope = LockScope.SYMBOL,
        hold_ms: float = 0.0,
    ) -> InsertOutcome:
        """The publish path: write the Parquet file atomically, then insert its manifest row under the lock."""
        raise NotImplementedError

    @property
    def backend_name(self) -> str:
        """`postgresql` or `duckdb`: where inserts go right now (duckdb while PostgreSQL is down)."""
        raise NotImplementedError

    def health(self) -> dict[str, ComponentHealth]:
        """Health per component: keys `postgresql`, `duckdb`; also sets featurestore_health_check_status."""
        raise NotImplementedError

    def pool_stats(self) -> dict[str, int]:
        """`total`, `active`, `waiting` of the PostgreSQL pool (zeros without PostgreSQL); also sets the gauges."""
        raise NotImplementedError

    def advisory_locks_held(self) -> int:
        """Advisory locks in pg_locks for this database (0 without PostgreSQL)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
