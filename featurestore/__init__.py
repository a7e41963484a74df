"""Feature store core: a compute-once feature cache whose manifest lives in PostgreSQL (advisory locks per symbol),
with an embedded DuckDB manifest as the single-machine default and the fallback while PostgreSQL is down.

`FeatureStore` is imported on first use, so `featurestore.metrics` (the catalog) and `featurestore.conventions` load
without pyarrow, psycopg, DuckDB or prometheus_client: the generators read names, not instruments."""

from typing import TYPE_CHECKING

from featurestore.errors import (
    BackendUnavailable,
    ComputeTimeout,
    FeatureStoreError,
    InvalidName,
    InvalidParams,
    LockTimeout,
    ManifestLocked,
    PoolTimeout,
)

if TYPE_CHECKING:
    from featurestore.store import FeatureStore

__all__ = [
    "BackendUnavailable",
    "ComputeTimeout",
    "FeatureStore",
    "FeatureStoreError",
    "InvalidName",
    "InvalidParams",
    "LockTimeout",
    "ManifestLocked",
    "PoolTimeout",
]


def __getattr__(name: str) -> object:
    if name == "FeatureStore":
        from featurestore.store import FeatureStore

        return FeatureStore
    raise AttributeError(f"module 'featurestore' has no attribute {name!r}")
