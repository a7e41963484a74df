"""PostgreSQL manifest: a small psycopg pool per process, one-round-trip inserts under per-symbol advisory locks.

Directly on PostgreSQL every connection is autocommit, with `lock_timeout` and `statement_timeout` set when the pool
creates it, and psycopg prepares the statements it runs often. An insert is one statement (`manifest_insert_v2`, see
pg_schema), so the transaction that holds `pg_advisory_xact_lock` ends with the statement: committed, or rolled back
when it fails (lock timeout included) — no lock can outlive it.

Behind a transaction pooler (PgBouncer `pool_mode = transaction`; setting `pg_pooler`, `auto` detects one) each
transaction may run on another server connection, so nothing may live in the session: psycopg prepares nothing
(`prepare_threshold=None`; PgBouncer before 1.21 answers `prepared statement "_pg3_0" already exists`), no `SET` at
connect, and every statement is sent in a pipeline after `set_config('lock_timeout', …, true)` and
`set_config('statement_timeout', …, true)`: one Sync, so one implicit transaction that carries its own timeouts and its
transaction-scoped lock, still one round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from time import perf_counter
from typing import Any, LiteralString

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from featurestore.errors import BackendUnavailable, FeatureStoreError, LockTimeout, PoolTimeout
from featurestore.keys import FrameKey, advisory_key
from featurestore.manifest import pg_schema as sql
from featurestore.manifest.base import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    ComponentHealth,
    InsertOutcome,
    LeaseClaim,
    ManifestEntry,
)
from featurestore.metrics import BACKEND_POSTGRESQL
from featurestore.settings import FeatureStoreSettings, redact_dsn

log = logging.getLogger(__name__)

Cursor = psycopg.Cursor[tuple[Any, ...]]


class Connection(psycopg.Connection[tuple[Any, ...]]):
    """A manifest connection that runs its statements on one cursor it keeps: `conn.execute` builds a new cursor
    per statement, about a sixth of the client CPU of an insert. A connection serves one caller at a time (the pool
    lends it out), so one cursor is never used by two."""

    _statements: Cursor | None = None

    def run(self, query: LiteralString, params: tuple[Any, ...] | None = None) -> Cursor:
        cursor = self._statements
        if cursor is None or cursor.closed:
            cursor = self._statements = self.cursor()
        return cursor.execute(query, params)


# SQLSTATEs that mean "the server is not there for us", as opposed to an error in what we asked.
_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "53300", "53400"}
HEALTH_TIMEOUT_S = 1.0


def is_unavailable(exc: BaseException) -> bool:
    """True for connection failures (refused, lost, server shutting down, too many clients)."""
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES


def _entry(row: tuple[Any, ...]) -> ManifestEntry:
    return ManifestEntry(
        row[0], row[1], row[2], int(row[3]), row[4], int(row[5]), int(row[6]), row[7], row[8].astimezone(UTC)
    )


def probe(dsn: str, connect_timeout_s: float) -> str | None:
    """None when PostgreSQL answers `SELECT 1` on a fresh connection, else why not (password-free)."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=max(1, round(connect_timeout_s))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def behind_pooler(conn: psycopg.Connection[Any]) -> bool:
    """True when a pooler answered the connection: the cancel key it handed us names another process than the server
    backend running our statement (PgBouncer makes up its own key; PostgreSQL sends the backend's pid)."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    return row is not None and int(row[0]) != conn.info.backend_pid


def all_lent(stats: dict[str, int]) -> bool:
    """Every connection of the pool's capacity (`pool_stats()`) lent out."""
    return 0 < stats["total"] <= stats["active"]


def pool_exhausted(stats: dict[str, int]) -> bool:
    """Every connection of the pool's capacity lent out, or callers queueing: what PostgreSQLPoolExhausted means."""
    return stats["waiting"] > 0 or all_lent(stats)


class PostgresManifest:
    """The shared manifest. `connect()` creates the schema and opens the pool; construction touches nothing."""

    name = BACKEND_POSTGRESQL

    def __init__(self, dsn: str, settings: FeatureStoreSettings) -> None:
        self._dsn = dsn
        self.settings = settings
        self.redacted_dsn = redact_dsn(dsn)
        self._pool: psycopg_pool.ConnectionPool[Connection] | None = None
        # Connections lent out by connection(): psycopg_pool's pool_size - pool_available also counts the ones it is
        # still opening, so a fresh pool would read as exhausted.
        self._lent = 0
        self._lent_lock = threading.Lock()
        self.pooled = settings.pg_pooler == "transaction"  # decided again by connect() under `auto`

    @property
    def connected(self) -> bool:
        return self._pool is not None

    def connect(self) -> None:
        """Create the schema (idempotent, safe under concurrency) and open a fresh pool; BackendUnavailable if down.

        Called again after an outage: a pool whose connections all failed retries with an exponential backoff of
        its own, so it would keep callers waiting (PoolTimeout) well after the server is back. A new pool connects
        at once; the old one is closed (nobody borrows from it while the store writes to the fallback).
        """
        try:
            with self._connect_once() as conn:
                sql.ensure_schema(conn)
                pooled = self.settings.pg_pooler == "transaction" or (
                    self.settings.pg_pooler == "auto" and behind_pooler(conn)
                )
        except psycopg.Error as exc:
            if is_unavailable(exc):
                raise BackendUnavailable(f"PostgreSQL at {self.redacted_dsn} does not answer: {exc}") from None
            raise
        pool: psycopg_pool.ConnectionPool[Connection] = psycopg_pool.ConnectionPool(
            self._dsn,
            min_size=self.settings.pool_min_size,
            max_size=max(self.settings.pool_max_size, self.settings.pool_min_size),
            open=False,
            timeout=self.settings.pool_timeout_s,
            kwargs=self._connection_kwargs(pooled),
            configure=None if pooled else self._configure,
            connection_class=Connection,
            name="featurestore-manifest",
        )
        if pooled and not self.pooled:
            log.info("PostgreSQL at %s is reached through a transaction pooler: no prepared statements, timeouts set "
                     "per transaction", self.redacted_dsn)  # fmt: skip
        self.pooled = pooled
        pool.open(wait=False)
        old, self._pool = self._pool, pool
        if old is not None:
            old.close(timeout=1.0)

    def disconnect(self) -> None:
        """Close the pool (PostgreSQL is down); `connect()` opens a new one."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=1.0)

    def _connect_timeout(self) -> int:
        return max(1, round(self.settings.connect_timeout_s))

    def _connection_kwargs(self, pooled: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": self._connect_timeout()}
        if pooled:
            kwargs["prepare_threshold"] = None
        return kwargs

    def _connect_once(self) -> Connection:
        """A connection outside the pool (schema, detection, health when the pool is exhausted): prepares nothing."""
        return Connection.connect(
            self._dsn, autocommit=True, connect_timeout=self._connect_timeout(), prepare_threshold=None
        )

    def _execute(
        self, conn: Connection, query: LiteralString, params: tuple[Any, ...] | None = None
    ) -> psycopg.Cursor[tuple[Any, ...]]:
        """`conn.execute`, or behind a transaction pooler: the timeouts set for this transaction only, in the same
        pipeline as the statement (one Sync: one implicit transaction on one server connection, one round trip)."""
        if not self.pooled:
            return conn.run(query, params)
        with conn.pipeline():
            conn.execute(
                sql.LOCAL_TIMEOUTS, (str(self.settings.lock_timeout_ms), str(self.settings.statement_timeout_ms))
            )
            cursor = conn.execute(query, params)
        return cursor

    def _configure(self, conn: Connection) -> None:
        # SET takes no bind parameters; both values are validated ints.
        conn.execute(f"SET lock_timeout = {int(self.settings.lock_timeout_ms)}")
        conn.execute(f"SET statement_timeout = {int(self.settings.statement_timeout_ms)}")

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection]:
        """A pooled connection, with psycopg's errors translated into the feature store's."""
        if self._pool is None:
            raise BackendUnavailable(f"PostgreSQL at {self.redacted_dsn} is not connected")
        try:
            with self._pool.connection(timeout=timeout) as conn:
                with self._lent_lock:
                    self._lent += 1
                try:
                    yield conn
                finally:
                    with self._lent_lock:
                        self._lent -= 1
        except psycopg_pool.PoolTimeout:
            waited = timeout if timeout is not None else self.settings.pool_timeout_s
            stats = self.pool_stats()
            raise PoolTimeout(
                f"no pooled manifest connection free within {waited:g} s (pool_timeout_s; pool_max_size="
                f"{self.settings.pool_max_size}, {stats['active']} lent out, {stats['waiting']} callers waiting)"
            ) from None
        except pg_errors.LockNotAvailable:
            raise LockTimeout(
                f"advisory lock not granted within lock_timeout={self.settings.lock_timeout_ms} ms; "
                "the transaction was rolled back"
            ) from None
        except psycopg.Error as exc:
            if is_unavailable(exc):
                raise BackendUnavailable(f"PostgreSQL at {self.redacted_dsn} is unavailable: {exc}") from None
            # The statement's transaction was rolled back with it (autocommit), advisory lock included.
            raise FeatureStoreError(f"manifest statement failed ({exc.sqlstate}): {exc}") from exc

    def insert(self, entry: ManifestEntry, *, replace: bool = False) -> InsertOutcome:
        return self._insert(sql.INSERT, (advisory_key(entry.symbol), replace), entry)

    def _insert(self, statement: str, leading: tuple[object, ...], entry: ManifestEntry) -> InsertOutcome:
        """Run an insert function called with `leading` then the entry's columns, returning its one row."""
        params = (
            *leading,
            entry.symbol, entry.feature, entry.params_digest, entry.path, entry.rows, entry.bytes, entry.sha256,
            entry.created_at,
        )  # fmt: skip
        start = perf_counter()
        with self.connection() as conn:
            row = self._execute(conn, statement, params).fetchone()
        latency_ms = (perf_counter() - start) * 1000.0
        if row is None or row[1] is None:
            # The conflicting row vanished between the insert and the read (a concurrent delete): not stored.
            raise FeatureStoreError(f"manifest insert of {entry.key} neither inserted nor found a row")
        inserted, version, path, rows, size, sha256, created_at, wait_ms = row
        stored = ManifestEntry(
            entry.symbol, entry.feature, entry.params_digest, int(version), path, int(rows), int(size), sha256,
            created_at.astimezone(UTC),
        )  # fmt: skip
        return InsertOutcome(stored, bool(inserted), self.name, float(wait_ms), latency_ms)

    def get(self, symbol: str, feature: str, params_digest: str) -> ManifestEntry | None:
        with self.connection() as conn:
            row = self._execute(conn, sql.GET, (symbol, feature, params_digest)).fetchone()
        return _entry(row) if row is not None else None

    def delete(self, symbol: str, feature: str, params_digest: str) -> bool:
        with self.connection() as conn:
            return self._execute(conn, sql.DELETE, (symbol, feature, params_digest)).rowcount > 0

    def entries(self, symbol: str | None = None) -> Iterator[ManifestEntry]:
        with self.connection() as conn:
            if symbol is None:
                rows = self._execute(conn, sql.ENTRIES).fetchall()
            else:
                rows = self._execute(conn, sql.ENTRIES_OF_SYMBOL, (symbol,)).fetchall()
        return iter([_entry(row) for row in rows])

    def count_duplicates(self) -> int:
        with self.connection() as conn:
            row = self._execute(conn, sql.DUPLICATES).fetchone()
        return int(row[0]) if row else 0

    def advisory_locks_held(self) -> int:
        with self.connection(timeout=HEALTH_TIMEOUT_S) as conn:
            row = self._execute(conn, sql.ADVISORY_LOCKS).fetchone()
        return int(row[0]) if row else 0

    def pool_stats(self) -> dict[str, int]:
        """This process's pool: `total` its capacity, `active` connections lent out, `waiting` callers queueing.

        Behind a pooler these are connections to the pooler, not to PostgreSQL: `active` counts this process's
        transactions in flight, while how many server connections they share (and how long clients wait for one) is
        the pooler's to report (pgbouncer_exporter: pgbouncer_pools_server_*, pgbouncer_pools_client_maxwait_seconds).
        """
        if self._pool is None:
            return {"total": 0, "active": 0, "waiting": 0}
        stats = self._pool.get_stats()
        size = int(stats.get("pool_size", 0))
        # `total` is the capacity (max_size), not the current size: a pool at min_size that could still grow is not
        # exhausted, and PostgreSQLPoolExhausted (active >= total) must not say it is.
        return {
            "total": max(int(stats.get("pool_max", size)), size),
            "active": self._lent,
            "waiting": int(stats.get("requests_waiting", 0)),
        }

    def health(self) -> ComponentHealth:
        """Healthy when a pooled query answers; degraded while the pool is exhausted but the server answers."""
        stats = self.pool_stats()
        details: dict[str, object] = {"dsn": self.redacted_dsn, "pool_stats": stats}
        if self._pool is None:
            details.update(connection=False, error="not connected")
            return ComponentHealth(UNHEALTHY, details)
        if pool_exhausted(stats):
            # Queueing for the pool behind the callers would only measure the queue: ask on a fresh connection.
            return self._health_direct(details)
        try:
            locks = self.advisory_locks_held()
        except PoolTimeout:
            return self._health_direct(details)
        except FeatureStoreError as exc:
            details.update(connection=False, error=str(exc))
            return ComponentHealth(UNHEALTHY, details)
        details.update(connection=True, lock_stats={"total_advisory_locks": locks})
        return ComponentHealth(HEALTHY, details)

    def _health_direct(self, details: dict[str, object]) -> ComponentHealth:
        try:
            with self._connect_once() as conn:
                row = self._execute(conn, sql.ADVISORY_LOCKS).fetchone()
        except psycopg.Error as exc:
            details.update(connection=False, error=str(exc).strip())
            return ComponentHealth(UNHEALTHY, details)
        details.update(connection=True, lock_stats={"total_advisory_locks": int(row[0]) if row else 0})
        stats = self.pool_stats()
        details["pool_stats"] = stats
        if pool_exhausted(stats):
            details["reason"] = (
                f"pool exhausted: {stats['active']} of {stats['total']} connections in use, {stats['waiting']} waiting"
            )
            return ComponentHealth(DEGRADED, details)
        return ComponentHealth(HEALTHY, details)

    def saturated(self) -> bool:
        """Every connection the pool may open is lent out: a PoolTimeout then is back-pressure, not an outage."""
        return all_lent(self.pool_stats())

    def yield_to_callers(self, limit_s: float) -> None:
        """Wait until no caller queues for a pooled connection, at most `limit_s`: background work (the fallback's
        replay) takes a connection only between the callers' requests, so it never makes one wait for a whole
        backlog, and still moves on when they never pause."""
        deadline = time.monotonic() + limit_s
        while self.pool_stats()["waiting"] and time.monotonic() < deadline:
            time.sleep(0.002)

    def check_pool(self) -> None:
        """Drop broken idle connections (after PostgreSQL came back)."""
        if self._pool is not None:
            self._pool.check()

    # Compute leases: the cross-process single-flight, without pinning a connection while a frame is computed.

    def claim_lease(self, key: FrameKey, owner: str, ttl_s: float) -> LeaseClaim:
        """Claim the key's lease, then read its manifest row, in one round trip: a pipeline with one Sync, so one
        transaction whose second statement takes its own snapshot (read committed) after the claim has settled, and
        sees a row its previous holder published before releasing the lease, as a read after the claim would."""
        digest = (key.symbol, key.feature, key.params_digest)
        with self.connection() as conn:
            with conn.pipeline():
                if self.pooled:
                    conn.execute(
                        sql.LOCAL_TIMEOUTS,
                        (str(self.settings.lock_timeout_ms), str(self.settings.statement_timeout_ms)),
                    )
                claim = conn.execute(sql.CLAIM_LEASE, (*digest, owner, ttl_s))
                found = conn.run(sql.GET, digest)
            claimed = claim.fetchone() is not None
            row = found.fetchone()
        return LeaseClaim(claimed, _entry(row) if row is not None else None)

    def renew_leases(self, owner: str, ttl_s: float) -> int:
        with self.connection() as conn:
            return self._execute(conn, sql.RENEW_LEASES, (ttl_s, owner)).rowcount

    def release_lease(self, key: FrameKey, owner: str) -> None:
        with self.connection() as conn:
            self._execute(conn, sql.RELEASE_LEASE, (key.symbol, key.feature, key.params_digest, owner))

    def close(self) -> None:
        self.disconnect()
