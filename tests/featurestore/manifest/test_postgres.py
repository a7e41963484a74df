"""The PostgreSQL manifest against the real server: schema creation under concurrency, per-symbol versions assigned
under the advisory lock, the lock taken before the insert and released after a lock timeout or an error."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from bench.held_lock import HeldLockManifest, LockScope
from featurestore import FeatureStoreError, LockTimeout
from featurestore.keys import advisory_key, params_digest
from featurestore.manifest import pg_schema
from featurestore.manifest.base import DEGRADED, HEALTHY, ManifestEntry
from featurestore.manifest.postgres import PostgresManifest, pool_exhausted
from featurestore.settings import FeatureStoreSettings

pytestmark = pytest.mark.postgres

Connection = psycopg.Connection[tuple[Any, ...]]

# Advisory locks are server-wide and other test processes publish "AAPL" too: the tests that read pg_locks lock
# symbols of their own, so another process's holder or waiter never shows up in theirs.
_RUN = uuid.uuid4().hex[:12]
LOCKED, FREE = f"LOCKED-{_RUN}", f"FREE-{_RUN}"


def entry(symbol: str = "AAPL", n: int = 0) -> ManifestEntry:
    digest = params_digest({"n": n})
    path = f"{symbol}/returns/{digest}-{n:016x}.parquet"
    return ManifestEntry(symbol, "returns", digest, 0, path, 10, 100, f"{n:064x}", datetime.now(UTC))


def open_manifest(dsn: str, **overrides: Any) -> PostgresManifest:
    values: dict[str, Any] = {"pool_min_size": 1, "pool_max_size": 4, "pool_timeout_s": 10.0, **overrides}
    manifest = PostgresManifest(dsn, FeatureStoreSettings(**values))
    manifest.connect()
    return manifest


@pytest.fixture
def manifest(pg_schema_dsn: str) -> Iterator[PostgresManifest]:
    db = open_manifest(pg_schema_dsn)
    yield db
    db.close()


@pytest.fixture
def other(pg_schema_dsn: str) -> Iterator[Connection]:
    """A separate session, as another worker would have."""
    with psycopg.connect(pg_schema_dsn, autocommit=True) as conn:
        yield conn


def lock_holders(conn: Connection, key: int) -> list[tuple[int, bool]]:
    """(pid, granted) of every session holding or waiting for the bigint advisory lock `key`."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    rows = conn.execute(
        "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
        "AND classid::bigint = %s AND objid::bigint = %s ORDER BY pid",
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
    ).fetchall()
    return [(int(pid), bool(granted)) for pid, granted in rows]


def wait_for_advisory_waiter(conn: Connection, key: int, deadline_s: float = 30.0) -> int:
    """The pid of a backend blocked on the advisory lock `key`."""
    limit = time.monotonic() + deadline_s
    while time.monotonic() < limit:
        waiting = [pid for pid, granted in lock_holders(conn, key) if not granted]
        if waiting:
            return waiting[0]
        time.sleep(0.01)
    raise AssertionError("no insert ever waited on the advisory lock")


def test_schema_creation_is_idempotent_when_32_sessions_start_at_once(pg_schema_dsn: str) -> None:
    barrier = threading.Barrier(32)

    def create() -> bool:
        with psycopg.connect(pg_schema_dsn, autocommit=True) as conn:
            barrier.wait()
            return pg_schema.ensure_schema(conn)

    with ThreadPoolExecutor(32) as pool:
        created = list(pool.map(lambda _: create(), range(32)))
    assert created.count(True) == 1
    with psycopg.connect(pg_schema_dsn, autocommit=True) as conn:
        assert pg_schema.ensure_schema(conn) is False
        constraints = {
            row[0]
            for row in conn.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass('manifest_entries')"
            ).fetchall()
        }
    assert {"manifest_entries_key", "manifest_entries_symbol_version"} <= constraints


def test_an_insert_assigns_the_symbols_next_version_and_a_repeated_key_keeps_the_stored_row(
    manifest: PostgresManifest,
) -> None:
    first = manifest.insert(entry("AAPL", 0))
    second = manifest.insert(entry("AAPL", 1))
    msft = manifest.insert(entry("MSFT", 0))
    again = manifest.insert(entry("AAPL", 0))
    assert [(o.inserted, o.entry.version, o.backend) for o in (first, second, msft)] == [
        (True, 1, "postgresql"), (True, 2, "postgresql"), (True, 1, "postgresql")
    ]  # fmt: skip
    assert not again.inserted and again.entry == first.entry
    assert manifest.get("AAPL", "returns", params_digest({"n": 0})) == first.entry
    assert manifest.count_duplicates() == 0


def test_sixteen_sessions_racing_one_symbol_get_versions_one_to_n_without_errors(manifest: PostgresManifest) -> None:
    # Regression guard: a single statement that locks in a CTE reads max(version) with a snapshot from before its
    # lock wait, and then collides on (symbol, version) under exactly this load.
    def work(worker: int) -> list[int]:
        return [manifest.insert(entry("HOT", worker * 1000 + n)).entry.version for n in range(25)]

    with ThreadPoolExecutor(16) as pool:
        versions = [v for batch in pool.map(work, range(16)) for v in batch]
    assert sorted(versions) == list(range(1, 401))
    assert [e.version for e in manifest.entries("HOT")] == list(range(1, 401))


def test_the_advisory_lock_is_taken_before_the_insert_and_its_wait_is_measured_server_side(
    manifest: PostgresManifest, other: Connection
) -> None:
    key = advisory_key(LOCKED)
    other.execute("SELECT pg_advisory_lock(%s)", (key,))
    result: dict[str, Any] = {}
    writer = threading.Thread(target=lambda: result.update(outcome=manifest.insert(entry(LOCKED, 7))))
    writer.start()
    try:
        wait_for_advisory_waiter(other, key)
        assert other.execute("SELECT count(*) FROM manifest_entries").fetchone() == (0,)
        blocked_at = time.monotonic()
        time.sleep(0.2)
    finally:
        other.execute("SELECT pg_advisory_unlock(%s)", (key,))
        released_at = time.monotonic()
    writer.join(30)
    outcome = result["outcome"]
    assert outcome.inserted
    assert outcome.lock_wait_ms >= (released_at - blocked_at) * 1000.0 * 0.9
    assert lock_holders(other, key) == []


def test_a_schema_of_the_previous_release_gets_this_releases_insert_function_and_keeps_its_rows(
    pg_schema_dsn: str, other: Connection
) -> None:
    """Upgrade: the previous release's tables, a row, and its manifest_insert_v1 (which also took the benchmark's
    global key and hold); connecting adds manifest_insert_v2 and leaves the rest alone."""
    other.execute(pg_schema._TABLES)
    other.execute(
        "CREATE FUNCTION manifest_insert_v1(p_symbol_key bigint, p_global_key bigint, p_hold_s double precision) "
        "RETURNS integer LANGUAGE sql AS 'SELECT 1'"
    )
    old = entry("OLD", 0)
    other.execute(
        "INSERT INTO manifest_entries (symbol, feature, params_digest, version, path, rows, bytes, sha256) "
        "VALUES (%s, %s, %s, 1, %s, 10, 100, %s)",
        (old.symbol, old.feature, old.params_digest, old.path, old.sha256),
    )
    manifest = open_manifest(pg_schema_dsn)
    try:
        outcome = manifest.insert(entry("OLD", 1))
    finally:
        manifest.close()
    assert outcome.inserted and outcome.entry.version == 2
    functions = other.execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace ORDER BY proname"
    ).fetchall()
    assert [name for (name,) in functions] == ["manifest_insert_v1", pg_schema.INSERT_FUNCTION]


def test_other_symbols_do_not_wait_for_a_held_symbol(pg_schema_dsn: str, other: Connection) -> None:
    manifest = open_manifest(pg_schema_dsn, lock_timeout_ms=300)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", (advisory_key(LOCKED),))
        assert manifest.insert(entry(FREE, 0)).inserted
        with pytest.raises(LockTimeout):
            manifest.insert(entry(LOCKED, 0))
    finally:
        other.execute("SELECT pg_advisory_unlock_all()")
        manifest.close()


def test_a_lock_timeout_raises_lock_timeout_rolls_back_and_leaves_no_lock_of_ours(
    pg_schema_dsn: str, other: Connection
) -> None:
    manifest = open_manifest(pg_schema_dsn, lock_timeout_ms=200, pool_max_size=1)
    key = advisory_key(LOCKED)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        with pytest.raises(LockTimeout, match="lock_timeout=200 ms"):
            manifest.insert(entry(LOCKED, 0))
        assert lock_holders(other, key) == [(other.info.backend_pid, True)]
        other.execute("SELECT pg_advisory_unlock(%s)", (key,))
        assert lock_holders(other, key) == []
        assert manifest.get(LOCKED, "returns", params_digest({"n": 0})) is None
        assert manifest.insert(entry(LOCKED, 0)).inserted, "the pooled connection is usable after the timeout"
    finally:
        other.execute("SELECT pg_advisory_unlock_all()")
        manifest.close()


def test_an_error_while_holding_the_lock_releases_it(pg_schema_dsn: str, other: Connection) -> None:
    # The benchmark's adapter holds work inside the lock (production has no such knob); the error handling, the
    # connection and its transaction are PostgresManifest's own.
    manifest = HeldLockManifest(
        pg_schema_dsn,
        FeatureStoreSettings(pool_min_size=1, pool_max_size=4, pool_timeout_s=10.0, statement_timeout_ms=1500),
        scope=LockScope.SYMBOL,
        hold_ms=10_000,
    )
    manifest.connect()
    key = advisory_key(LOCKED)
    failure: dict[str, BaseException] = {}

    def insert() -> None:
        try:
            manifest.insert(entry(LOCKED, 0))  # canceled by statement_timeout inside the lock
        except BaseException as exc:
            failure["error"] = exc

    writer = threading.Thread(target=insert)
    writer.start()
    try:
        limit = time.monotonic() + 30
        while not any(granted for _, granted in lock_holders(other, key)):
            assert time.monotonic() < limit, "the insert never took the lock"
            time.sleep(0.01)
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (False,)
        writer.join(30)
        assert isinstance(failure.get("error"), FeatureStoreError)
        assert "57014" in str(failure["error"])
        assert lock_holders(other, key) == []
        assert other.execute("SELECT count(*) FROM manifest_entries").fetchone() == (0,)
    finally:
        manifest.close()


def test_health_pool_stats_and_lock_count_come_from_the_server_and_the_pool(
    manifest: PostgresManifest, other: Connection
) -> None:
    other.execute("SELECT pg_advisory_lock(%s)", (advisory_key("HEALTH"),))
    # The server is shared with other tests: their locks count too, ours is one of them.
    assert manifest.advisory_locks_held() >= 1
    health = manifest.health()
    other.execute("SELECT pg_advisory_unlock_all()")
    assert health.healthy
    assert health.details["connection"] is True
    assert health.details["lock_stats"]["total_advisory_locks"] >= 1  # type: ignore[index]
    assert "password" not in str(health.details)
    # Nothing is lent out now, even while the pool may still be opening a connection for the first requests.
    stats = manifest.pool_stats()
    assert set(stats) == {"total", "active", "waiting"}
    # total is the capacity, so a pool still at its min_size is not reported as full
    assert stats["total"] == manifest.settings.pool_max_size and stats["active"] == 0 and stats["waiting"] == 0
    with manifest.connection():
        assert manifest.pool_stats()["active"] == 1


def test_a_password_never_reaches_an_error_message() -> None:
    manifest = PostgresManifest(
        "postgresql://postgres:s3cr3t-pw@127.0.0.1:1/postgres", FeatureStoreSettings(connect_timeout_s=1)
    )
    with pytest.raises(FeatureStoreError) as caught:
        manifest.connect()
    assert "s3cr3t-pw" not in str(caught.value) and "s3cr3t-pw" not in manifest.redacted_dsn


def test_the_insert_runs_as_a_prepared_statement_of_its_connection_after_a_few_executions(pg_schema_dsn: str) -> None:
    manifest = open_manifest(pg_schema_dsn, pool_min_size=1, pool_max_size=1)
    try:
        for n in range(8):
            manifest.insert(entry("PREP", n))
        with manifest.connection() as conn:
            rows = conn.execute(
                "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements WHERE NOT from_sql"
            ).fetchall()
    finally:
        manifest.close()
    executions = {statement: int(plans) for statement, plans in rows if pg_schema.INSERT_FUNCTION in statement}
    assert len(executions) == 1, rows  # prepared once, on the connection, by psycopg (prepare_threshold)
    assert next(iter(executions.values())) >= 8 - 5, executions


def test_a_connection_runs_every_statement_on_one_cursor_it_keeps_also_after_a_failed_one(pg_schema_dsn: str) -> None:
    manifest = open_manifest(pg_schema_dsn, pool_min_size=1, pool_max_size=1, lock_timeout_ms=100)
    try:
        manifest.insert(entry("CURS", 0))
        with manifest.connection() as conn:
            kept = manifest._execute(conn, pg_schema.DUPLICATES)
            assert manifest._execute(conn, pg_schema.ADVISORY_LOCKS) is kept
        with psycopg.connect(pg_schema_dsn, autocommit=True) as holder, holder.transaction():
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("CURS"),))
            with pytest.raises(LockTimeout):
                manifest.insert(entry("CURS", 1))
        outcome = manifest.insert(entry("CURS", 2))  # the same connection and cursor, after the failed statement
        assert outcome.inserted and outcome.entry.version == 2
        with manifest.connection() as conn:
            assert manifest._execute(conn, pg_schema.DUPLICATES) is kept
    finally:
        manifest.close()


@pytest.mark.parametrize(
    ("stats", "exhausted"),
    [
        ({"total": 2, "active": 2, "waiting": 0}, True),  # every connection of the capacity lent out
        ({"total": 2, "active": 1, "waiting": 3}, True),  # callers queueing
        ({"total": 2, "active": 1, "waiting": 0}, False),
        ({"total": 0, "active": 0, "waiting": 0}, False),  # no pool: nothing to exhaust
    ],
)
def test_the_pool_is_exhausted_when_its_capacity_is_lent_out_or_callers_queue(
    stats: dict[str, int], exhausted: bool
) -> None:
    assert pool_exhausted(stats) is exhausted


def test_health_is_degraded_with_the_reason_while_every_pooled_connection_is_lent_out(pg_schema_dsn: str) -> None:
    manifest = open_manifest(pg_schema_dsn, pool_min_size=2, pool_max_size=2)
    try:
        with manifest.connection(), manifest.connection():
            held = manifest.health()
        assert held.status == DEGRADED, held.details
        assert "pool exhausted: 2 of 2 connections in use" in str(held.details["reason"])
        assert held.details["connection"] is True  # the server answers (asked on a fresh connection)
        deadline = time.monotonic() + 5
        while manifest.pool_stats()["active"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert manifest.health().status == HEALTHY
    finally:
        manifest.close()


def test_background_work_yields_the_pool_to_a_queueing_caller_and_a_full_pool_reads_as_saturated(
    pg_schema_dsn: str,
) -> None:
    """The fallback's replay calls yield_to_callers before each insert: a caller that queues for the only connection
    gets it before the replay takes it again."""
    manifest = open_manifest(pg_schema_dsn, pool_min_size=1, pool_max_size=1)
    order: list[str] = []
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with manifest.connection():
            held.set()
            release.wait(30)

    def caller() -> None:
        with manifest.connection():
            order.append("caller")

    try:
        threads = [threading.Thread(target=holder), threading.Thread(target=caller)]
        threads[0].start()
        assert held.wait(30)
        assert manifest.saturated()
        threads[1].start()
        limit = time.monotonic() + 30
        while manifest.pool_stats()["waiting"] == 0:
            assert time.monotonic() < limit, "the caller never queued"
            time.sleep(0.005)
        release.set()
        manifest.yield_to_callers(30.0)
        assert manifest.pool_stats()["waiting"] == 0  # the queued caller was handed the connection first
        with manifest.connection():  # the replay's insert: after the caller's, whose thread may not have run yet
            order.append("replay")
        for thread in threads:
            thread.join(30)
        assert order == ["caller", "replay"]
        assert not manifest.saturated()
    finally:
        release.set()
        manifest.close()
