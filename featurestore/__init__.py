"""Feature store core: a compute-once feature cache whose manifest lives in PostgreSQL (advisory locks per symbol),
with an embedded DuckDB manifest as the single-machine default and the fallback while PostgreSQL is down."""

from featurestore.errors import (
    BackendUnavailable,
    ComputeTimeout,
    FeatureStoreError,
    InvalidName,
    LockTimeout,
    ManifestLocked,
    PoolTimeout,
)
from featurestore.store import FeatureStore

__all__ = [
    "BackendUnavailable",
    "ComputeTimeout",
    "FeatureStore",
    "FeatureStoreError",
    "InvalidName",
    "LockTimeout",
    "ManifestLocked",
    "PoolTimeout",
]
