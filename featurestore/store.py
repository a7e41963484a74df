"""FeatureStore: the compute-once feature cache over a manifest backend.

get_or_compute(key) ── verified by this process before, file unchanged? (verified.py) ──▶ hit, no manifest query
        │ no
        ▼
manifest row? ── file verified (size, sha256)? ──▶ hit (remembered)
        │ no / missing / corrupt
        ▼
threads of this process: one computes, the others wait (KeyedLocks)
processes anywhere: one computes, the others poll until the row appears (SingleFlight, PostgreSQL lease)
        ▼
compute() ──▶ publish: Parquet file atomically (files.py) ──▶ manifest row under the advisory lock
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from types import TracebackType
from typing import Any

import pyarrow as pa
from pydantic import SecretStr

from featurestore.errors import FeatureStoreError, error_kind
from featurestore.files import FrameFiles, FrameUnreadable
from featurestore.frames import as_table, refuse_by_annotation
from featurestore.instruments import Instruments, build
from featurestore.keys import FrameKey
from featurestore.layout import FALLBACK_FOLDER, MANIFEST_FILE, METRICS_FOLDER
from featurestore.manifest.base import (
    NOT_CONFIGURED,
    ComponentHealth,
    InsertOutcome,
    ManifestBackend,
    ManifestEntry,
)
from featurestore.manifest.duckdb import DuckDBManifest
from featurestore.manifest.fallback import FallbackManifest
from featurestore.manifest.postgres import PostgresManifest
from featurestore.metrics import COMPONENT_DUCKDB, COMPONENT_POSTGRESQL, takes_advisory_lock
from featurestore.settings import FeatureStoreSettings
from featurestore.singleflight import KeyedLocks, SingleFlight
from featurestore.verified import VerifiedFrame, VerifiedFrames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Stale:
    """A manifest row whose file could not be used, and why (`missing` or `corrupt`, and the details)."""

    entry: ManifestEntry
    reason: str
    message: str


class FeatureStore:
    """Feature frames per (symbol, feature, params), computed once across processes and cached on disk."""

    settings: FeatureStoreSettings
    instruments: Instruments

    def __init__(
        self,
        manifest: ManifestBackend,
        files: FrameFiles,
        *,
        settings: FeatureStoreSettings,
        instruments: Instruments,
        postgres: FallbackManifest | None = None,
    ) -> None:
        """Assemble a store from its parts (tests inject a MemoryManifest); `open()` is the usual way in."""
        self.manifest = manifest
        self.files = files
        self.settings = settings
        self.instruments = instruments
        self._postgres = postgres
        self._inflight = KeyedLocks()
        self._verified = VerifiedFrames(table_bytes=settings.kept_tables_mb * 1024 * 1024)
        owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._flight = SingleFlight(postgres, owner=owner, ttl_s=settings.lease_ttl_s, wait_s=settings.compute_lease_s)
        self._closed = False
        self._owns_instruments = False  # open() built them: close() closes them
        self._pool_sampler: threading.Thread | None = None
        self._stop_sampling = threading.Event()
        if postgres is not None and instruments.multiprocess and instruments.enabled:
            # Nobody scrapes a worker: in the multiprocess mode its pool gauges are sampled here instead of on read.
            self._pool_sampler = threading.Thread(
                target=self._sample_pool, name="featurestore-pool-gauges", daemon=True
            )
            self._pool_sampler.start()

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
        settings = settings if settings is not None else FeatureStoreSettings()
        updates: dict[str, Any] = {}
        if pg_dsn is not None:
            updates["pg_dsn"] = SecretStr(pg_dsn) if pg_dsn else None
        if cache_dir is not None:
            updates["cache_dir"] = Path(cache_dir)
        if updates:
            settings = settings.model_copy(update=updates)
        files = FrameFiles(settings.resolved_cache_dir())
        dsn = settings.dsn()
        owned = instruments is None
        if instruments is None:
            # The embedded default: the service on the same cache folder serves these values (folder_values).
            default_folder = None if dsn else files.root / METRICS_FOLDER
            instruments = build(symbol_cap=settings.symbol_label_cap, default_folder=default_folder)
        if not dsn:
            try:
                manifest = DuckDBManifest(files.root / MANIFEST_FILE)
            except BaseException:
                if owned:
                    instruments.close()
                raise
            store = cls(manifest, files, settings=settings, instruments=instruments)
            store._owns_instruments = owned
            return store
        return cls.on_postgres(PostgresManifest(dsn, settings), dsn, files, settings, instruments)

    @classmethod
    def on_postgres(
        cls,
        primary: PostgresManifest,
        dsn: str,
        files: FrameFiles,
        settings: FeatureStoreSettings,
        instruments: Instruments,
    ) -> FeatureStore:
        """A store on `primary` behind the DuckDB fallback: what open() builds for a DSN (a benchmark passes a
        PostgresManifest of its own)."""
        postgres = FallbackManifest(primary, dsn, files.root / FALLBACK_FOLDER, files, instruments)
        postgres.start()
        return cls(postgres, files, settings=settings, instruments=instruments, postgres=postgres)

    # The cache

    def get_or_compute(
        self, symbol: str, feature: str, params: dict[str, Any], compute: Callable[[], object]
    ) -> pa.Table:
        """The cached frame for the key, or compute it once across all processes, publish it and return it.

        `compute` returns a pyarrow.Table, a pandas DataFrame or a polars DataFrame (featurestore/frames.py), converted
        once; the result is always a pyarrow.Table. Anything else is a TypeError before anything is written.
        """
        key = FrameKey.of(symbol, feature, params)
        table, stale = self._cached(key)
        if table is not None:
            return self._hit(key, table)
        refuse_by_annotation(compute)  # a miss: before any lock, lease or compute
        with self._inflight.hold(key):
            # Another thread of this process may have published or read it meanwhile: either is remembered, so the
            # manifest is not asked twice; another process's publish is found by the read after the lease claim.
            table = self._remembered(key)
            if table is not None:
                return self._hit(key, table)
            while True:
                with self._flight.turn(key, stale.entry if stale else None) as turn:
                    if turn.entry is not None:
                        table, bad = self._load(key, turn.entry)
                        if table is not None:
                            return self._hit(key, table)
                        stale = bad
                        if not turn.leased:
                            continue
                    return self._compute(key, compute, stale)

    def _compute(self, key: FrameKey, compute: Callable[[], object], stale: _Stale | None) -> pa.Table:
        if stale is not None:
            # Logged here, once per recompute: the same bad file is seen by each of the lookups that lead here.
            log.warning("cached frame unusable (%s), recomputing: %s", stale.reason, stale.message)
            self.instruments.count_recompute(stale.reason)
        table = as_table(compute())
        self.instruments.record_lookup(key.symbol, hit=False)
        try:
            self._publish(key, table, replace=stale is not None)
        except FeatureStoreError as exc:
            # The frame is computed: hand it back; the next caller computes and publishes it again.
            log.warning("computed %s/%s but could not publish it: %s", key.symbol, key.feature, exc)
        return table

    def _hit(self, key: FrameKey, table: pa.Table) -> pa.Table:
        self.instruments.record_lookup(key.symbol, hit=True)
        return table

    def _cached(self, key: FrameKey) -> tuple[pa.Table | None, _Stale | None]:
        table = self._remembered(key)
        if table is not None:
            return table, None
        backend = self.backend_name
        start = perf_counter()
        entry = self._current(key)
        self.instruments.observe_read(backend, key.symbol, (perf_counter() - start) * 1000.0)
        if entry is None:
            return None, None
        return self._load(key, entry)

    def _remembered(self, key: FrameKey) -> pa.Table | None:
        """The frame of a key this process verified, read without the manifest (verified.py); None when unknown,
        gone or damaged (then forgotten, so the caller asks the manifest and checks the file as before)."""
        known = self._verified.get(key)
        if known is None:
            return None
        try:
            table, seen = self.files.read_verified(known.entry, known)
        except FrameUnreadable:
            self._verified.forget(key)
            return None
        if seen is not known:  # read from the file: its identity refreshed, or its table parsed to be kept
            self._verified.remember(key, seen)
        return table

    def _current(self, key: FrameKey) -> ManifestEntry | None:
        return self.manifest.get(key.symbol, key.feature, key.params_digest)

    def _load(self, key: FrameKey, entry: ManifestEntry) -> tuple[pa.Table | None, _Stale | None]:
        try:
            table, verified = self.files.read_verified(entry)
        except FrameUnreadable as exc:
            self._verified.forget(key)
            return None, _Stale(entry, exc.reason, str(exc))
        self._verified.remember(key, verified)
        return table, None

    def forget(self, symbol: str, feature: str, params: dict[str, Any]) -> None:
        """Drop what this process verified of the key (verified.py), so its next lookup asks the manifest."""
        self._verified.forget(FrameKey.of(symbol, feature, params))

    # Publishing

    def publish(
        self,
        symbol: str,
        feature: str,
        params: dict[str, Any],
        table: pa.Table,
    ) -> InsertOutcome:
        """The publish path: write the Parquet file atomically, then insert its manifest row under the lock."""
        return self._publish(FrameKey.of(symbol, feature, params), table)

    def _publish(
        self,
        key: FrameKey,
        table: pa.Table,
        *,
        replace: bool = False,
    ) -> InsertOutcome:
        # The file is written and fsynced before the lock is taken: only the row insert runs inside it.
        stored = self.files.write(key, table)
        entry = ManifestEntry(
            key.symbol, key.feature, key.params_digest, 0, stored.path, stored.rows, stored.bytes, stored.sha256,
            datetime.now(UTC),
        )  # fmt: skip
        backend = self.backend_name
        start = perf_counter()
        try:
            outcome = self.manifest.insert(entry, replace=replace)
        except BaseException as exc:
            self._verified.forget(key)
            self.instruments.observe_insert(backend, key.symbol, (perf_counter() - start) * 1000.0)
            self.instruments.count_insert_error(backend, error_kind(exc))
            if stored.created:
                self.files.remove(stored.path)
            raise
        latency_ms = (perf_counter() - start) * 1000.0
        self.instruments.observe_insert(outcome.backend, key.symbol, latency_ms)
        if takes_advisory_lock(outcome.backend):
            self.instruments.observe_lock_wait(key.symbol, outcome.lock_wait_ms)
        if not outcome.inserted and outcome.entry.path != stored.path:
            self.files.remove(stored.path)  # the key was already published with other bytes; that row stays
            self._verified.forget(key)
        elif stored.written is not None:
            # The row names the file just written from bytes hashed in memory: verified without reading it back.
            self._verified.remember(key, VerifiedFrame(outcome.entry, stored.written.path, stored.written.identity))
        return dataclasses.replace(outcome, latency_ms=latency_ms)

    # Introspection for the service and the load generator

    @property
    def backend_name(self) -> str:
        """`postgresql` or `duckdb`: where inserts go right now (duckdb while PostgreSQL is down)."""
        return self._postgres.name if self._postgres is not None else self.manifest.name

    @property
    def postgres_configured(self) -> bool:
        return self._postgres is not None

    def health(self) -> dict[str, ComponentHealth]:
        """Health per component: keys `postgresql`, `duckdb`; also sets featurestore_health_check_status.

        The gauge is set here only ("health from the last check"), so it always agrees with what a check returned.

        Without a DSN, PostgreSQL is reported `not_configured` with `configured: False` and its gauge is left unset:
        the embedded default is not a degraded state.
        """
        if self._postgres is None:
            duck = self.manifest.health()
            duck = ComponentHealth(duck.status, {"role": "primary", **duck.details})
            postgresql = ComponentHealth(NOT_CONFIGURED, {"configured": False})
        else:
            postgresql = self._postgres.health_postgresql()
            duck = self._postgres.health_duckdb()
            self.instruments.set_health(COMPONENT_POSTGRESQL, postgresql.serving)
        self.instruments.set_health(COMPONENT_DUCKDB, duck.serving)
        self.pool_stats()
        return {"postgresql": postgresql, "duckdb": duck}

    def pool_stats(self) -> dict[str, int]:
        """`total`, `active`, `waiting` of the PostgreSQL pool (zeros without PostgreSQL); also sets the gauges.

        The gauges are refreshed where they are read (health checks, the service's scrape and snapshots), not after
        every insert: a pool statistics read per publish cost more than every instrument call of it together.
        """
        if self._postgres is None:
            stats = {"total": 0, "active": 0, "waiting": 0}
        else:
            stats = self._postgres.primary.pool_stats()
        self.instruments.set_pool(stats["total"], stats["active"], stats["waiting"])
        return stats

    def _sample_pool(self) -> None:
        while not self._stop_sampling.wait(self.settings.pool_sample_interval_s):
            try:
                self.pool_stats()
            except Exception:  # the thread must outlive any one failure; the next tick samples again
                log.exception("sampling the pool gauges failed")

    def advisory_locks_held(self) -> int:
        """Advisory locks in pg_locks for this database (0 without PostgreSQL)."""
        if self._postgres is None or not self._postgres.up:
            return 0
        try:
            return self._postgres.primary.advisory_locks_held()
        except FeatureStoreError:
            return 0

    def count_duplicates(self) -> int:
        """Manifest rows sharing a key with another row (0 while the unique constraint holds)."""
        return self.manifest.count_duplicates()

    def entries(self, symbol: str | None = None) -> Iterator[ManifestEntry]:
        return self.manifest.entries(symbol)

    def replay_fallback(self) -> int:
        """Replay pending fallback entries into PostgreSQL now (the background thread also does it)."""
        return self._postgres.replay() if self._postgres is not None else 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_sampling.set()
        if self._pool_sampler is not None:
            self._pool_sampler.join(timeout=5.0)
            self.instruments.clear_pool()  # the process may live on: its closed pool must not count in the fleet's
        self._flight.close()
        self.manifest.close()
        self.files.close()
        if self._owns_instruments:
            self.instruments.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
