"""The benchmark's lock adapters: a manifest insert with `hold_ms` of work held inside the advisory lock, under the
entry's symbol key or under one global key as well (the baseline the per-symbol design is compared with).

Production's insert (featurestore/manifest/pg_schema.py) takes neither: the hold and the global key live here, in a
function of the benchmark's own, created in the run's scratch schema beside the store's tables. Its body is the
production function's plus, before it, the global key and, after the wait is measured, the hold; still one round
trip for lock + hold + insert, so the baseline's critical section is what it always was (hold + insert, about
1 / (5 ms + insert) = 168 ops/s at a 5 ms hold on this machine), neither slower nor faster.

`HeldLockStores` opens a store on this manifest the way FeatureStore.open does (DuckDB fallback included); it is a
picklable factory, so the load generator's worker processes open theirs through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from featurestore.errors import BackendUnavailable
from featurestore.files import FrameFiles
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.keys import SCHEMA_NAMESPACE, advisory_key
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.result import LoadResult
from featurestore.manifest import pg_schema
from featurestore.manifest.base import InsertOutcome, ManifestEntry
from featurestore.manifest.postgres import Connection, PostgresManifest, is_unavailable
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore

GLOBAL_LOCK_SYMBOL = "__global__"
FUNCTION = "bench_held_insert_v1"
_INSTALL_LOCK_KEY = advisory_key(FUNCTION, SCHEMA_NAMESPACE)


class LockScope(StrEnum):
    """Which advisory key serializes an insert: the entry's symbol, or one shared key (the baseline)."""

    SYMBOL = "symbol"
    GLOBAL = "global"


# The global scope takes the shared key and then the symbol's key, so the version sequence is still serialized per
# symbol if both scopes ever write the same symbol. Order is fixed: no deadlock.
_SIGNATURE = "p_symbol_key bigint, p_replace boolean,"
_SYMBOL_LOCK = "    PERFORM pg_advisory_xact_lock(p_symbol_key);\n"
_WAIT = "    o_lock_wait_ms := extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000;\n"


def _function_sql() -> str:
    """Production's insert function with the global key before the symbol's and the hold after the wait is measured:
    the same statements otherwise, by construction (a change to production's body that moves these lines fails here)."""
    source = pg_schema.INSERT_FUNCTION_SQL
    edits = {
        f"FUNCTION {pg_schema.INSERT_FUNCTION}(": f"FUNCTION {FUNCTION}(",
        _SIGNATURE: "p_symbol_key bigint, p_global_key bigint, p_hold_s double precision, p_replace boolean,",
        _SYMBOL_LOCK: "    IF p_global_key IS NOT NULL THEN\n        PERFORM pg_advisory_xact_lock(p_global_key);\n"
        "    END IF;\n" + _SYMBOL_LOCK,
        _WAIT: _WAIT + "    IF p_hold_s > 0 THEN\n        PERFORM pg_sleep(p_hold_s);\n    END IF;\n",
    }
    for old, new in edits.items():
        if source.count(old) != 1:
            raise RuntimeError(f"production's insert function no longer has exactly one {old.strip()!r}")
        source = source.replace(old, new)
    return source


_FUNCTION = _function_sql()
INSERT = f"SELECT * FROM {FUNCTION}(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def install(conn: Connection) -> None:
    """Create the function in the connection's current schema unless present (64 workers may start at once)."""
    present = "SELECT count(*) FROM pg_proc WHERE proname = %s AND pronamespace = current_schema()::regnamespace"
    row = conn.execute(present, [FUNCTION]).fetchone()
    if row and row[0]:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_INSTALL_LOCK_KEY])
        row = conn.execute(present, [FUNCTION]).fetchone()
        if not (row and row[0]):
            conn.execute(_FUNCTION)


class HeldLockManifest(PostgresManifest):
    """The PostgreSQL manifest whose inserts hold `hold_ms` inside the lock of `scope` (the benchmark's workload)."""

    def __init__(self, dsn: str, settings: FeatureStoreSettings, *, scope: LockScope, hold_ms: float) -> None:
        super().__init__(dsn, settings)
        self.global_key = advisory_key(GLOBAL_LOCK_SYMBOL) if scope is LockScope.GLOBAL else None
        self.hold_s = max(hold_ms, 0.0) / 1000.0

    def connect(self) -> None:
        # Before the pool opens, so that a worker holds one connection at a time, as production's connect() does
        # (plpgsql resolves manifest_entries when the function runs, not when it is created).
        try:
            with self._connect_once() as conn:
                install(conn)
        except psycopg.Error as exc:
            if is_unavailable(exc):
                raise BackendUnavailable(f"PostgreSQL at {self.redacted_dsn} does not answer: {exc}") from None
            raise
        super().connect()

    def insert(self, entry: ManifestEntry, *, replace: bool = False) -> InsertOutcome:
        return self._insert(INSERT, (advisory_key(entry.symbol), self.global_key, self.hold_s, replace), entry)


@dataclass(frozen=True)
class HeldLockStores:
    """Opens the load generator's stores on a HeldLockManifest (same settings as featurestore.loadtest.open_store)."""

    scope: LockScope = LockScope.SYMBOL
    hold_ms: float = 0.0

    def __call__(
        self, config: LoadConfig, cache_dir: Path, *, pool_size: int, instruments: Instruments | None = None
    ) -> FeatureStore:
        if not config.dsn:
            raise ValueError("the benchmark's lock adapters need PostgreSQL: the config has no dsn")
        settings = FeatureStoreSettings(
            pg_dsn=SecretStr(config.dsn), cache_dir=cache_dir, pool_min_size=pool_size, pool_max_size=pool_size
        )
        return open_held_store(settings, instruments, self.scope, self.hold_ms)


def open_held_store(
    settings: FeatureStoreSettings, instruments: Instruments | None, scope: LockScope, hold_ms: float
) -> FeatureStore:
    """A store on a HeldLockManifest, behind the DuckDB fallback as FeatureStore.open builds it (on_postgres)."""
    dsn = settings.dsn()
    if not dsn:
        raise ValueError("the benchmark's lock adapters need PostgreSQL: the settings have no pg_dsn")
    if instruments is None:
        instruments = build_instruments(symbol_cap=settings.symbol_label_cap)
    manifest = HeldLockManifest(dsn, settings, scope=scope, hold_ms=hold_ms)
    return FeatureStore.on_postgres(manifest, dsn, FrameFiles(settings.resolved_cache_dir()), settings, instruments)


def run_json(result: LoadResult, lock: LockScope, hold_ms: float) -> dict[str, Any]:
    """A run's JSON with the benchmark's knobs beside its workload, where the report has always shown them."""
    document = result.to_json()
    head = {"backend": document.pop("backend"), "lock": str(lock)}
    for name in ("workers", "processes", "symbols"):
        head[name] = document.pop(name)
    return {**head, "hold_ms": hold_ms, **document}
