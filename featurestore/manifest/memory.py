"""In-memory manifest: the test double beside the real backends (same Protocol, same version rules)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from time import perf_counter

from featurestore.manifest.base import HEALTHY, ComponentHealth, InsertOutcome, ManifestEntry


class MemoryManifest:
    """A dict behind one lock; `inserts` counts insert calls so tests can see what reached the manifest."""

    name = "memory"

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str, str], ManifestEntry] = {}
        self._lock = threading.Lock()
        self.inserts = 0

    def insert(self, entry: ManifestEntry, *, replace: bool = False) -> InsertOutcome:
        start = perf_counter()
        with self._lock:
            wait_ms = (perf_counter() - start) * 1000.0
            self.inserts += 1
            version = 1 + max((e.version for e in self._rows.values() if e.symbol == entry.symbol), default=0)
            if replace:
                self._rows.pop(entry.key, None)
            existing = self._rows.get(entry.key)
            if existing is None:
                stored = dataclasses.replace(entry, version=version)
                self._rows[entry.key] = stored
            else:
                stored = existing
        return InsertOutcome(stored, existing is None, self.name, wait_ms, (perf_counter() - start) * 1000.0)

    def get(self, symbol: str, feature: str, params_digest: str) -> ManifestEntry | None:
        with self._lock:
            return self._rows.get((symbol, feature, params_digest))

    def delete(self, symbol: str, feature: str, params_digest: str) -> bool:
        with self._lock:
            return self._rows.pop((symbol, feature, params_digest), None) is not None

    def entries(self, symbol: str | None = None) -> Iterator[ManifestEntry]:
        with self._lock:
            rows = sorted(self._rows.values(), key=lambda e: (e.symbol, e.version))
        return iter([e for e in rows if symbol is None or e.symbol == symbol])

    def count_duplicates(self) -> int:
        return 0

    def health(self) -> ComponentHealth:
        return ComponentHealth(HEALTHY, {"entries": len(self._rows)})

    def close(self) -> None:
        pass
