"""DuckDB manifest: the embedded single-machine default (`<cache_dir>/manifest.duckdb`) and the per-process fallback.

DuckDB admits one read-write process per file, and its optimistic commits raise duplicate-key errors when threads
race a read-modify-write (max(version)+1), so every write goes through one connection behind one lock. Lookups read
through a cursor per thread (DuckDB's MVCC gives each a consistent snapshot), so a cache hit never queues behind a
write's commit.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from time import perf_counter
from typing import Any

import duckdb

from featurestore.errors import BackendUnavailable, FeatureStoreError, ManifestLocked
from featurestore.manifest.base import HEALTHY, UNHEALTHY, ComponentHealth, InsertOutcome, ManifestEntry
from featurestore.metrics import BACKEND_DUCKDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest_entries (
    symbol VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    params_digest VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    path VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    sha256 VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT manifest_entries_key UNIQUE (symbol, feature, params_digest),
    CONSTRAINT manifest_entries_symbol_version UNIQUE (symbol, version)
)
"""
_COLUMNS = "symbol, feature, params_digest, version, path, rows, bytes, sha256, created_at"
_KEY = "symbol = ? AND feature = ? AND params_digest = ?"
# One statement, so one commit: the symbol's next version, unless the key is already there (our lock serializes it).
_INSERT_NEXT = f"""
INSERT INTO manifest_entries ({_COLUMNS})
SELECT ?, ?, ?, coalesce(max(version), 0) + 1, ?, ?, ?, ?, ? FROM manifest_entries WHERE symbol = ?
HAVING NOT EXISTS (SELECT 1 FROM manifest_entries WHERE {_KEY})
RETURNING version
"""
_NEXT_VERSION = "SELECT coalesce(max(version), 0) + 1 FROM manifest_entries WHERE symbol = ?"
_INSERT_ROW = f"INSERT INTO manifest_entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")

# DuckDB shares one database instance between connections of the same process, which would bypass our lock:
# a path is open at most once per process.
_open_paths: set[Path] = set()
_open_paths_lock = threading.Lock()


def _entry(row: tuple[Any, ...]) -> ManifestEntry:
    created_at = row[8]
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return ManifestEntry(row[0], row[1], row[2], int(row[3]), row[4], int(row[5]), int(row[6]), row[7], created_at)


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        message = str(exc)
        if "lock" not in message.lower():
            raise BackendUnavailable(f"cannot open the DuckDB manifest {path}: {message}") from None
        match = _HOLDER_PID.search(message)
        holder = f"process PID {match.group(1)}" if match else "another process"
        raise ManifestLocked(
            f"the DuckDB manifest {path} is held by {holder}. DuckDB admits one process per file: several "
            "processes sharing a cache need PostgreSQL (set FEATURESTORE_PG_DSN)",
            int(match.group(1)) if match else None,
        ) from None


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def cannot_open(path: Path) -> str | None:
    """Why the DuckDB manifest at `path` cannot be opened, or None: it opens, it does not exist yet (the first store
    creates it) or another process holds it (that process is using it).

    The probe opens the file read-only for a moment, so a process opening it read-write in that moment is told it is
    held (ManifestLocked names this process): callers probe only when the files changed (ServiceStore does).
    """
    if is_open_here(path):
        return None
    for part in (path, wal_path(path)):
        if part.exists() and not part.is_file():
            return f"{part} is not a file: move it away, DuckDB cannot open its manifest"
    if not path.exists():
        return None
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        message = str(exc)
        if isinstance(exc, duckdb.IOException) and "lock" in message.lower():
            return None
        return f"cannot open the DuckDB manifest {path}: {message}"
    return None


def is_open_here(path: Path) -> bool:
    with _open_paths_lock:
        return path.expanduser().resolve() in _open_paths


class DuckDBManifest:
    """One DuckDB file, one connection, every statement serialized by an in-process lock."""

    name = BACKEND_DUCKDB

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _open_paths_lock:
            if self.path in _open_paths:
                raise ManifestLocked(
                    f"the DuckDB manifest {self.path} is already open in this process; open one FeatureStore per "
                    "cache folder and share it between threads",
                    None,
                )
            _open_paths.add(self.path)
        try:
            self._con = _connect(self.path)
            self._con.execute(_SCHEMA)
        except BaseException:
            with _open_paths_lock:
                _open_paths.discard(self.path)
            raise
        self._lock = threading.Lock()
        self._closed = False
        self._readers = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []

    @staticmethod
    def is_open_here(path: Path) -> bool:
        return is_open_here(path)

    def insert(self, entry: ManifestEntry, *, replace: bool = False) -> InsertOutcome:
        start = perf_counter()
        with self._lock:
            wait_ms = (perf_counter() - start) * 1000.0
            con = self._con
            key, payload = list(entry.key), [entry.path, entry.rows, entry.bytes, entry.sha256, entry.created_at]
            if replace:
                con.begin()
                try:
                    # The replacement gets a new version: take it before the old row is gone.
                    row = con.execute(_NEXT_VERSION, [entry.symbol]).fetchone()
                    con.execute(f"DELETE FROM manifest_entries WHERE {_KEY}", key)
                    con.execute(_INSERT_ROW, [*key, row[0] if row else 1, *payload])
                    con.commit()
                except BaseException:
                    con.rollback()
                    raise
            else:
                row = con.execute(_INSERT_NEXT, [*key, *payload, entry.symbol, *key]).fetchone()
            if row is not None:
                stored, inserted = dataclasses.replace(entry, version=int(row[0])), True
            else:
                found = con.execute(f"SELECT {_COLUMNS} FROM manifest_entries WHERE {_KEY}", key).fetchone()
                if found is None:
                    raise FeatureStoreError(f"manifest insert of {entry.key} neither inserted nor found a row")
                stored, inserted = _entry(found), False
        return InsertOutcome(stored, inserted, self.name, wait_ms, (perf_counter() - start) * 1000.0)

    def _reader(self) -> duckdb.DuckDBPyConnection:
        """This thread's read cursor (a DuckDB connection is not thread-safe; its cursors are, one per thread)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._readers, "cursor", None)
        if cursor is None:
            with self._lock:
                if self._closed:
                    raise BackendUnavailable(f"the DuckDB manifest {self.path} is closed")
                cursor = self._con.cursor()
                self._cursors.append(cursor)
            self._readers.cursor = cursor
        return cursor

    def get(self, symbol: str, feature: str, params_digest: str) -> ManifestEntry | None:
        row = (
            self._reader()
            .execute(f"SELECT {_COLUMNS} FROM manifest_entries WHERE {_KEY}", [symbol, feature, params_digest])
            .fetchone()
        )
        return _entry(row) if row is not None else None

    def delete(self, symbol: str, feature: str, params_digest: str) -> bool:
        with self._lock:
            row = self._con.execute(
                f"DELETE FROM manifest_entries WHERE {_KEY} RETURNING 1", [symbol, feature, params_digest]
            ).fetchone()
        return row is not None

    def entries(self, symbol: str | None = None) -> Iterator[ManifestEntry]:
        where, params = ("WHERE symbol = ?", [symbol]) if symbol is not None else ("", [])
        with self._lock:
            rows = self._con.execute(
                f"SELECT {_COLUMNS} FROM manifest_entries {where} ORDER BY symbol, version", params
            ).fetchall()
        return iter([_entry(row) for row in rows])

    def count(self) -> int:
        with self._lock:
            row = self._con.execute("SELECT count(*) FROM manifest_entries").fetchone()
        return int(row[0]) if row else 0

    def count_duplicates(self) -> int:
        with self._lock:
            row = self._con.execute(
                "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM manifest_entries "
                "GROUP BY symbol, feature, params_digest HAVING count(*) > 1)"
            ).fetchone()
        return int(row[0]) if row else 0

    def health(self) -> ComponentHealth:
        try:
            entries = self.count()
        except duckdb.Error as exc:
            return ComponentHealth(UNHEALTHY, {"path": str(self.path), "error": str(exc)})
        return ComponentHealth(HEALTHY, {"path": str(self.path), "entries": entries})

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for cursor in self._cursors:
                cursor.close()
            self._con.close()
        with _open_paths_lock:
            _open_paths.discard(self.path)

    def remove_files(self) -> None:
        """Delete the database file and its WAL (call after close, once every entry was replayed)."""
        for path in (self.path, wal_path(self.path)):
            path.unlink(missing_ok=True)
