"""The service's FeatureStore: held open while PostgreSQL is configured, opened only for a load run on the embedded
DuckDB default.

DuckDB admits one process per file, and on the embedded default that process is the training job's (or the README's
snippet): a service holding `manifest.duckdb` from start to stop would lock them out. So without a DSN the service
opens the store only while a load run needs it (a run started while another process holds the file fails with
ManifestLocked, naming that process), and answers health from the cache folder without opening the file. With
PostgreSQL the manifest is shared: the service holds its store (a pool of its own and a DuckDB fallback file of its
own) as every worker does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from featurestore.files import MANIFEST_FILE
from featurestore.instruments import Instruments
from featurestore.manifest.base import HEALTHY, UNHEALTHY, ComponentHealth
from featurestore.metrics import BACKEND_DUCKDB
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore

StoreOpener = Callable[[FeatureStoreSettings, Instruments], FeatureStore]


class ServiceStore:
    """Opens, lends and closes the service's store; `hold` keeps it open from `start()` to `close()`."""

    def __init__(
        self, opener: StoreOpener, settings: FeatureStoreSettings, instruments: Instruments, *, hold: bool
    ) -> None:
        self.opener = opener
        self.settings = settings
        self.instruments = instruments
        self.hold = hold
        self.opened: FeatureStore | None = None
        self._lock = threading.Lock()
        self._borrowers = 0

    def start(self) -> None:
        if self.hold:
            self.opened = self.opener(self.settings, self.instruments)

    @property
    def backend_name(self) -> str:
        store = self.opened
        return store.backend_name if store is not None else BACKEND_DUCKDB

    @contextmanager
    def borrowed(self) -> Iterator[FeatureStore]:
        """The store, opened for the caller when it is not held (ManifestLocked when another process holds it)."""
        with self._lock:
            if self.opened is None:
                self.opened = self.opener(self.settings, self.instruments)
            self._borrowers += 1
            store = self.opened
        try:
            yield store
        finally:
            with self._lock:
                self._borrowers -= 1
                if not self.hold and self._borrowers == 0 and self.opened is not None:
                    closing, self.opened = self.opened, None
                    closing.close()

    def health(self) -> dict[str, ComponentHealth]:
        """The store's own checks while it is open; else the embedded default's, from the folder alone."""
        store = self.opened
        if store is not None:
            return store.health()
        folder = self.settings.resolved_cache_dir()
        path = folder / MANIFEST_FILE
        existing = folder if folder.exists() else folder.parent
        writable = os.access(existing, os.W_OK)
        details: dict[str, object] = {
            "role": "primary",
            "path": str(path),
            "exists": path.exists(),
            "writable": writable,
            "open_in_service": False,
            "note": "the service opens the DuckDB manifest only for a load run: DuckDB admits one process per file",
        }
        if not writable:
            details["error"] = f"{existing} is not writable"
            return {
                "postgresql": ComponentHealth(HEALTHY, {"configured": False}),
                "duckdb": ComponentHealth(UNHEALTHY, details),
            }
        return {
            "postgresql": ComponentHealth(HEALTHY, {"configured": False}),
            "duckdb": ComponentHealth(HEALTHY, details),
        }

    def pool_stats(self) -> dict[str, int]:
        store = self.opened
        if store is not None:
            return store.pool_stats()
        self.instruments.set_pool(0, 0, 0)
        return {"total": 0, "active": 0, "waiting": 0}

    def close(self) -> None:
        with self._lock:
            store, self.opened = self.opened, None
        if store is not None:
            store.close()
