"""The service's FeatureStore: held open while PostgreSQL is configured, opened only for a load run on the embedded
DuckDB default.

DuckDB admits one process per file, and on the embedded default that process is the training job's (or the README's
snippet): a service holding `manifest.duckdb` from start to stop would lock them out. So without a DSN the service
opens the store only while a load run needs it (a run started while another process holds the file fails with
ManifestLocked, naming that process), and answers health from the cache folder without opening the file. With
PostgreSQL the manifest is shared: the service holds its store (a pool of its own and a DuckDB fallback file of its
own) as every worker does.

Health on the embedded default probes the manifest file (featurestore.manifest.duckdb.cannot_open) when the file or
its WAL changed since the last probe: a manifest that cannot be opened makes the service unready, with the reason.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from featurestore.instruments import Instruments
from featurestore.layout import MANIFEST_FILE
from featurestore.manifest.base import HEALTHY, UNHEALTHY, ComponentHealth
from featurestore.manifest.duckdb import cannot_open, wal_path
from featurestore.metrics import BACKEND_DUCKDB
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore

StoreOpener = Callable[[FeatureStoreSettings, Instruments], FeatureStore]
FileState = tuple[tuple[int, int, int, int] | None, ...]


def file_state(*paths: Path) -> FileState:
    """Identity, size, mtime and type of each path (None when missing): what changes when a file is written."""
    states: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            found = path.stat()
        except OSError:
            states.append(None)
        else:
            states.append((found.st_ino, found.st_size, found.st_mtime_ns, stat.S_IFMT(found.st_mode)))
    return tuple(states)


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
        self._probed: tuple[FileState, str | None] | None = None  # the manifest files as last probed, and why not

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
        """The store's own checks while it is open; else the embedded default's, from the folder and, when the
        manifest's files changed since the last check, a read-only open of the manifest."""
        folder = self.settings.resolved_cache_dir()
        path = folder / MANIFEST_FILE
        with self._lock:  # not while a load run of this process opens or closes the file
            store = self.opened
            problem = self._manifest_problem(path) if store is None else None
        if store is not None:
            return store.health()
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
        if problem is not None or not writable:
            details["error"] = problem or f"{existing} is not writable"
            return {
                "postgresql": ComponentHealth(HEALTHY, {"configured": False}),
                "duckdb": ComponentHealth(UNHEALTHY, details),
            }
        return {
            "postgresql": ComponentHealth(HEALTHY, {"configured": False}),
            "duckdb": ComponentHealth(HEALTHY, details),
        }

    def _manifest_problem(self, path: Path) -> str | None:
        state = file_state(path, wal_path(path))
        if self._probed is None or self._probed[0] != state:
            self._probed = (state, cannot_open(path))
        return self._probed[1]

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
