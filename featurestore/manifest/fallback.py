"""PostgreSQL with a DuckDB fallback: writes go to this process's own DuckDB file while PostgreSQL is down, and are
replayed into PostgreSQL when it answers again.

    insert ──▶ PostgreSQL up? ──yes──▶ PostgresManifest ── connection failure ──▶ probe ──down──▶ mark down ─┐
                    │no                                                                                     │
                    └─────────────────────────▶ <cache>/fallback/<host>-<pid>-<random>.duckdb ◀─────────────────┘
    replay thread (every replay_interval_s): reconnect while down (a fresh pool); when up, replay own pending entries
    and the files of dead processes (a file it can open is not held by a live process), deleting each replayed row.

The circuit breaker exists because a pool whose server is down makes every caller wait the whole pool timeout; once
marked down, writes go to DuckDB at once. The file is per store (so per process) because DuckDB admits one process
per file and dozens of workers fall back at the same moment. A replayed entry goes through the normal idempotent
insert, so it is stored once whatever crashes in between, and PostgreSQL assigns its version.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb

from featurestore.errors import BackendUnavailable, FeatureStoreError, PoolTimeout
from featurestore.files import FrameFiles
from featurestore.instruments import Instruments
from featurestore.keys import FrameKey
from featurestore.manifest.base import (
    HEALTHY,
    UNHEALTHY,
    ComponentHealth,
    InsertOutcome,
    LeaseClaim,
    ManifestEntry,
)
from featurestore.manifest.duckdb import DuckDBManifest
from featurestore.manifest.postgres import PostgresManifest, probe
from featurestore.manifest.replay import drain, drain_orphans
from featurestore.metrics import BACKEND_DUCKDB, BACKEND_POSTGRESQL

log = logging.getLogger(__name__)
T = TypeVar("T")
ORPHAN_SCAN_EVERY = 10  # replay ticks between two scans for the files of dead processes


class _Down(Exception):
    """PostgreSQL was just marked down: the caller uses DuckDB."""


def fallback_file(folder: Path) -> Path:
    """`<host>-<pid>-<random>.duckdb`: one file per store, so two stores of one process never share a file."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"
    return folder / f"{host}-{os.getpid()}-{secrets.token_hex(3)}.duckdb"


class FallbackManifest:
    """The manifest when a DSN is configured: PostgreSQL, or this process's DuckDB file while PostgreSQL is down."""

    def __init__(self, primary: PostgresManifest, dsn: str, folder: Path, files: FrameFiles, instruments: Instruments):
        self.primary = primary
        self._dsn = dsn
        self.folder = folder
        self.local_path = fallback_file(folder)
        self._files = files
        self._instruments = instruments
        self._settings = primary.settings
        self._local: DuckDBManifest | None = None
        self._local_lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._up = False
        self.down_reason: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> None:
        """Connect if PostgreSQL answers (else start on DuckDB), replay what dead processes left, start the thread."""
        try:
            self.primary.connect()
        except BackendUnavailable as exc:
            self._mark_down(str(exc))
        else:
            self._mark_up()
            self._replay_logged(scan_orphans=True)
        self._thread = threading.Thread(target=self._run, name="featurestore-replay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self._up and self.pending():
            self._replay_logged(scan_orphans=False)  # what is left stays in the file for the next store to replay
        with self._local_lock:
            local, self._local = self._local, None
        if local is not None:
            empty = local.count() == 0
            local.close()
            if empty:
                local.remove_files()
        self.primary.close()

    @property
    def up(self) -> bool:
        return self._up

    @property
    def name(self) -> str:
        return BACKEND_POSTGRESQL if self._up else BACKEND_DUCKDB

    # The manifest Protocol

    def insert(self, entry: ManifestEntry, *, replace: bool = False) -> InsertOutcome:
        if self._up:
            try:
                return self._on_primary(lambda: self.primary.insert(entry, replace=replace))
            except _Down:
                pass
        outcome = self._local_db().insert(entry, replace=replace)
        self._update_pending()
        return outcome

    def get(self, symbol: str, feature: str, params_digest: str) -> ManifestEntry | None:
        if self._up:
            try:
                found = self._on_primary(lambda: self.primary.get(symbol, feature, params_digest))
            except _Down:
                found = None
            if found is not None:
                return found
        local = self._local
        return local.get(symbol, feature, params_digest) if local is not None else None

    def delete(self, symbol: str, feature: str, params_digest: str) -> bool:
        deleted = False
        if self._up:
            try:
                deleted = self._on_primary(lambda: self.primary.delete(symbol, feature, params_digest))
            except _Down:
                pass
        local = self._local
        if local is not None:
            deleted = local.delete(symbol, feature, params_digest) or deleted
            self._update_pending()
        return deleted

    def entries(self, symbol: str | None = None) -> Iterator[ManifestEntry]:
        rows: list[ManifestEntry] = []
        if self._up:
            try:
                rows.extend(self._on_primary(lambda: list(self.primary.entries(symbol))))
            except _Down:
                pass
        local = self._local
        if local is not None:
            rows.extend(local.entries(symbol))
        return iter(rows)

    def count_duplicates(self) -> int:
        return self.primary.count_duplicates() if self._up else 0

    def health(self) -> ComponentHealth:
        return self.health_postgresql()

    def health_postgresql(self) -> ComponentHealth:
        if not self._up:
            return ComponentHealth(
                UNHEALTHY,
                {"dsn": self.primary.redacted_dsn, "connection": False, "error": self.down_reason,
                 "pool_stats": self.primary.pool_stats()},
            )  # fmt: skip
        health = self.primary.health()
        if health.status == UNHEALTHY:
            self._mark_down(str(health.details.get("error")))
        return health

    def health_duckdb(self) -> ComponentHealth:
        details: dict[str, object] = {"role": "fallback", "active": not self._up, "path": str(self.local_path)}
        local = self._local
        if local is not None:
            checked = local.health()
            details.update(checked.details, pending=self.pending())
            return ComponentHealth(checked.status, details)
        writable = os.access(self.folder if self.folder.exists() else self.folder.parent, os.W_OK)
        details.update(pending=0, writable=writable)
        return ComponentHealth(HEALTHY if writable else UNHEALTHY, details)

    # Compute leases: available only while PostgreSQL answers (None = coordinate within this process only).

    def claim_lease(self, key: FrameKey, owner: str, ttl_s: float) -> LeaseClaim | None:
        """The claim and the row read with it, as `get` reads it: PostgreSQL's row, else this process's pending one."""
        if not self._up:
            return None
        try:
            claim = self._on_primary(lambda: self.primary.claim_lease(key, owner, ttl_s))
        except _Down:
            return None
        local = self._local
        if claim.entry is None and local is not None:
            claim = dataclasses.replace(claim, entry=local.get(key.symbol, key.feature, key.params_digest))
        return claim

    def renew_leases(self, owner: str, ttl_s: float) -> None:
        if self._up:
            try:
                self._on_primary(lambda: self.primary.renew_leases(owner, ttl_s))
            except _Down:
                pass  # the lease expires by itself; nobody can claim it while PostgreSQL is down anyway

    def release_lease(self, key: FrameKey, owner: str) -> None:
        if self._up:
            try:
                self._on_primary(lambda: self.primary.release_lease(key, owner))
            except _Down:
                pass

    # Replay

    def pending(self) -> int:
        local = self._local
        return local.count() if local is not None else 0

    def replay(self, *, scan_orphans: bool = True) -> int:
        """Move pending entries (own, and dead processes' files) into PostgreSQL; the number inserted there."""
        if not self._up:
            return 0
        replayed = 0
        with self._replay_lock:
            local = self._local
            if local is not None:
                replayed += drain(local, self.primary, self._files, self._instruments)
            if scan_orphans:
                replayed += drain_orphans(self.folder, self.local_path, self.primary, self._files, self._instruments)
        self._update_pending()
        return replayed

    def _replay_logged(self, *, scan_orphans: bool) -> None:
        try:
            self.replay(scan_orphans=scan_orphans)
        except (BackendUnavailable, PoolTimeout) as exc:
            self._mark_down(str(exc))
        except (FeatureStoreError, duckdb.Error, OSError):
            log.exception("replaying fallback entries failed; retrying in %.1f s", self._settings.replay_interval_s)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self._settings.replay_interval_s):
            tick += 1
            try:
                self._tick(tick)
            except Exception:  # the thread must outlive any one failure; the next tick retries
                log.exception("fallback replay tick failed")

    def _tick(self, tick: int) -> None:
        recovered = False
        if not self._up:
            reason = self._reconnect()
            if reason is not None:
                self.down_reason = reason
                return
            self._mark_up()
            recovered = True
        scan = recovered or tick % ORPHAN_SCAN_EVERY == 0
        if scan or self.pending():
            self._replay_logged(scan_orphans=scan)

    def _reconnect(self) -> str | None:
        try:
            self.primary.connect()
        except BackendUnavailable as exc:
            # Stop the old pool's own reconnect attempts (and their log lines); a new pool comes with recovery.
            self.primary.disconnect()
            return str(exc)
        return None

    # The circuit breaker

    def _on_primary(self, call: Callable[[], T]) -> T:
        """Run `call` on PostgreSQL; on a connection failure, retry once if PostgreSQL answers, else mark it down."""
        for attempt in (1, 2):
            try:
                return call()
            except PoolTimeout as exc:
                if self.primary.saturated() and probe(self._dsn, self._settings.connect_timeout_s) is None:
                    raise  # every connection lent out and PostgreSQL answers: back-pressure, not an outage
                reason = str(exc)  # the pool could not open a connection in time (PostgreSQL just came back)
            except BackendUnavailable as exc:
                reason = str(exc)
            if attempt == 1 and probe(self._dsn, self._settings.connect_timeout_s) is None:
                self.primary.check_pool()
                continue
            self._mark_down(reason)
            raise _Down(reason)
        raise AssertionError("unreachable")

    def _mark_down(self, reason: str) -> None:
        if self._up or self.down_reason is None:
            log.warning("PostgreSQL manifest unavailable, writing to %s until it answers: %s", self.local_path, reason)
        self._up = False
        self.down_reason = reason

    def _mark_up(self) -> None:
        if not self._up:
            log.info("PostgreSQL manifest at %s answers", self.primary.redacted_dsn)
        self._up = True
        self.down_reason = None

    def _local_db(self) -> DuckDBManifest:
        with self._local_lock:
            if self._local is None:
                self._local = DuckDBManifest(self.local_path)
            return self._local

    def _update_pending(self) -> None:
        self._instruments.set_fallback_pending(self.pending())
