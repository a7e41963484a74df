"""The feature store's exceptions.

FeatureStoreError
├── InvalidName            a symbol or feature name that is empty, too long or could escape the cache folder
├── InvalidParams          params that are not plain JSON with finite numbers (they name the frame by their digest)
├── BackendUnavailable     the manifest database cannot be reached (PostgreSQL down, DuckDB file held elsewhere)
│   └── ManifestLocked     the DuckDB file is held by another process (names its PID)
├── LockTimeout            an advisory lock was not granted within lock_timeout; the transaction was rolled back
├── PoolTimeout            no pooled connection within the pool timeout
├── ComputeTimeout         another worker's compute of the same key did not finish within the compute lease
└── MetricsFolderError     PROMETHEUS_MULTIPROC_DIR is unusable (missing, not writable, set after prometheus_client)
"""


class FeatureStoreError(Exception):
    """Base class of every error the feature store raises on purpose."""


class InvalidName(FeatureStoreError, ValueError):
    """A symbol or feature name that is not allowed."""


class InvalidParams(FeatureStoreError, ValueError):
    """A frame's params that have no canonical JSON form, so no stable digest."""


class BackendUnavailable(FeatureStoreError):
    """The manifest backend cannot be reached."""


class ManifestLocked(BackendUnavailable):
    """The DuckDB manifest file is held by another process; `pid` is the holder's when DuckDB names it."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class LockTimeout(FeatureStoreError):
    """An advisory lock wait exceeded lock_timeout."""


class PoolTimeout(FeatureStoreError):
    """No pooled connection was free within the pool timeout."""


class ComputeTimeout(FeatureStoreError):
    """Waiting for another worker's compute of the same key exceeded the lease."""


class MetricsFolderError(FeatureStoreError):
    """The multiprocess metrics folder cannot be used; the message says what to change."""


def error_kind(exc: BaseException) -> str:
    """The `error` label value of manifest_insert_errors_total for an exception (one of metrics.INSERT_ERRORS)."""
    if isinstance(exc, LockTimeout):
        return "lock_timeout"
    if isinstance(exc, PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, BackendUnavailable):
        return "unavailable"
    return "other"
