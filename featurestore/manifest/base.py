"""The manifest's data types and the Protocol every backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
# A component this install does not use (PostgreSQL without FEATURESTORE_PG_DSN): no fault, and no health to check.
NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class ManifestEntry:
    """One cached frame: its key (symbol, feature, params_digest) and the file that holds it."""

    symbol: str
    feature: str
    params_digest: str
    version: int
    path: str  # relative to the cache folder
    rows: int
    bytes: int
    sha256: str
    created_at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.symbol, self.feature, self.params_digest)


@dataclass(frozen=True)
class InsertOutcome:
    """What an insert did: `inserted` is False when the key already existed and the stored row was kept."""

    entry: ManifestEntry
    inserted: bool
    backend: str
    lock_wait_ms: float
    latency_ms: float


@dataclass(frozen=True)
class LeaseClaim:
    """A compute lease claim: `claimed` when this caller may compute the key, and `entry`, the key's manifest row as
    read right after the claim (a row published before the previous holder released the lease is seen)."""

    claimed: bool
    entry: ManifestEntry | None


@dataclass(frozen=True)
class ComponentHealth:
    """A component's status word (`healthy` / `degraded` / `unhealthy`) and what the check saw."""

    status: str
    details: dict[str, object] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY

    @property
    def serving(self) -> bool:
        """What featurestore_health_check_status reports: 1 unless unhealthy (a degraded component still serves)."""
        return self.status != UNHEALTHY


class ManifestBackend(Protocol):
    """A manifest store. Inserts are idempotent on (symbol, feature, params_digest)."""

    @property
    def name(self) -> str:
        """The backend label of metrics: `postgresql` or `duckdb` (`memory` for the test double)."""
        ...

    def insert(self, entry: ManifestEntry, *, replace: bool = False) -> InsertOutcome:
        """Insert under the advisory lock of the entry's symbol (PostgreSQL; DuckDB serializes every write).

        The entry's `version` is ignored: the backend assigns the symbol's next version under the lock. With
        `replace`, an existing row for the key is deleted first, under the same lock (a corrupt file was recomputed).
        """
        ...

    def get(self, symbol: str, feature: str, params_digest: str) -> ManifestEntry | None: ...

    def delete(self, symbol: str, feature: str, params_digest: str) -> bool: ...

    def entries(self, symbol: str | None = None) -> Iterator[ManifestEntry]: ...

    def count_duplicates(self) -> int:
        """Rows sharing a key with another row: always 0 while the unique constraint holds."""
        ...

    def health(self) -> ComponentHealth: ...

    def close(self) -> None: ...
