"""The PostgreSQL manifest through a real PgBouncer 1.18 in `pool_mode = transaction` (server pool 20): more client
connections than max_connections, no duplicate version, timeouts that stay in their transaction, and detection."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from featurestore.errors import LockTimeout
from featurestore.keys import advisory_key
from featurestore.manifest.base import ManifestEntry
from featurestore.manifest.postgres import PostgresManifest
from featurestore.settings import FeatureStoreSettings
from tests.conftest import POOLER_SERVER_POOL, Pooled

pytestmark = pytest.mark.postgres

PROCESSES_LIKE = 40  # manifests, each with its own pool, as 40 worker processes would have
POOL = 4  # connections per manifest: 160 client connections, past max_connections = 100
INSERTS_PER_THREAD = 8  # past psycopg's prepare_threshold (5), so a prepared statement would be tried
SYMBOLS = 8
DEADLINE_S = 120.0


def entry(symbol: str, params: str) -> ManifestEntry:
    return ManifestEntry(symbol, "f", params, 0, f"{symbol}/{params}.parquet", 1, 1, "0" * 64, datetime.now(UTC))


def manifest(dsn: str, **settings: Any) -> PostgresManifest:
    store = PostgresManifest(dsn, FeatureStoreSettings(**settings))
    store.connect()
    return store


def wait_for(condition: Any, what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_pooler_is_detected_and_a_direct_server_is_not(pooled: Pooled) -> None:
    through, direct = manifest(pooled.dsn), manifest(pooled.direct_dsn)
    forced = manifest(pooled.direct_dsn, pg_pooler="transaction")
    try:
        assert through.pooled and not direct.pooled and forced.pooled
        assert through.insert(entry("DETECT", "a")).inserted
    finally:
        for store in (through, direct, forced):
            store.close()


def test_160_client_connections_share_20_server_connections_without_error_or_duplicate_version(
    pooled: Pooled,
) -> None:
    stores = [
        manifest(pooled.dsn, pool_min_size=POOL, pool_max_size=POOL, pool_timeout_s=60.0) for _ in range(PROCESSES_LIKE)
    ]
    errors: list[BaseException] = []
    peak_servers = [0]
    clients = [0]
    try:

        def logged_in() -> bool:
            pools = pooled.bouncer.pools()
            clients[0] = sum(int(p["cl_active"]) + int(p["cl_waiting"]) for p in pools)
            return clients[0] >= PROCESSES_LIKE * POOL

        wait_for(logged_in, f"{PROCESSES_LIKE * POOL} client connections on PgBouncer")
        threads_n = PROCESSES_LIKE * POOL
        start = threading.Barrier(threads_n)

        def work(index: int) -> None:
            store = stores[index % PROCESSES_LIKE]
            try:
                start.wait(DEADLINE_S)
                for n in range(INSERTS_PER_THREAD):
                    store.insert(entry(f"P{(index + n) % SYMBOLS}", f"t{index}-{n}"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(index,)) for index in range(threads_n)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + DEADLINE_S
        while any(thread.is_alive() for thread in threads):
            assert time.monotonic() < deadline, "inserts did not finish"
            peak_servers[0] = max(peak_servers[0], pooled.bouncer.server_connections())
            threads[0].join(0.1)
        for thread in threads:
            thread.join()
        assert errors == [], f"{len(errors)} errors, first: {errors[0]!r}"
        with psycopg.connect(pooled.direct_dsn) as conn:
            rows = conn.execute("SELECT symbol, version FROM manifest_entries ORDER BY symbol, version").fetchall()
            max_connections = conn.execute("SHOW max_connections").fetchone()
        versions: dict[str, list[int]] = {}
        for symbol, version in rows:
            versions.setdefault(symbol, []).append(int(version))
        print(f"\npooler: {clients[0]} clients, peak {peak_servers[0]} server connections, {len(rows)} rows")
        assert max_connections is not None and clients[0] > int(max_connections[0])
        assert len(rows) == threads_n * INSERTS_PER_THREAD
        assert all(found == list(range(1, len(found) + 1)) for found in versions.values()), "versions 1..n per symbol"
        assert stores[0].count_duplicates() == 0
        assert peak_servers[0] <= POOLER_SERVER_POOL
    finally:
        for store in stores:
            store.close()


def test_a_timeout_set_for_one_transaction_never_reaches_another_client(pooled: Pooled) -> None:
    impatient = manifest(pooled.dsn, lock_timeout_ms=150, statement_timeout_ms=4321, pool_max_size=4)
    patient = manifest(pooled.dsn, lock_timeout_ms=60_000, pool_max_size=4)
    holder = psycopg.connect(pooled.direct_dsn)
    symbol = f"TIMEOUTS{uuid.uuid4().hex[:8].upper()}"
    try:
        for n in range(10):  # leaves its timeouts behind on every server connection it ran on, if it ever did
            impatient.insert(entry(symbol, f"warm-{n}"))
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key(symbol)])
        with pytest.raises(LockTimeout):
            impatient.insert(entry(symbol, "impatient"))

        outcome: list[Any] = []
        waiter = threading.Thread(target=lambda: outcome.append(patient.insert(entry(symbol, "patient"))))
        waiter.start()
        # The patient client is still waiting for the lock well past the impatient one's 150 ms.
        wait_for(
            lambda: _advisory_wait_s(pooled.direct_dsn, symbol) >= 1.0, "the patient insert to wait 1 s for the lock"
        )
        assert not outcome
        holder.rollback()
        waiter.join(DEADLINE_S)
        assert outcome and outcome[0].inserted

        # Every server connection PgBouncer holds, each pinned by an open transaction: none kept a setting of ours.
        probes = [
            psycopg.connect(pooled.dsn, autocommit=False, prepare_threshold=None) for _ in range(POOLER_SERVER_POOL)
        ]
        try:
            seen = {
                tuple(
                    p.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')").fetchone()
                    or ()
                )
                for p in probes
            }
        finally:
            for probe in probes:
                probe.close()
        assert seen == {("0", "0")}, f"a server connection kept a client's timeout: {seen}"
    finally:
        holder.close()
        impatient.close()
        patient.close()


def _advisory_wait_s(dsn: str, symbol: str) -> float:
    """How long the longest waiter for `symbol`'s advisory lock has waited so far (0 when nobody waits)."""
    unsigned = advisory_key(symbol) & 0xFFFFFFFFFFFFFFFF
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - a.query_start)), 0) "
            "FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND NOT l.granted "
            "AND l.objsubid = 1 AND l.classid::bigint = %s AND l.objid::bigint = %s",
            (unsigned >> 32, unsigned & 0xFFFFFFFF),
        ).fetchone()
    return float(row[0]) if row else 0.0


def test_behind_the_pooler_the_pool_gauges_count_client_connections_and_health_asks_postgresql(pooled: Pooled) -> None:
    store = manifest(pooled.dsn, pool_min_size=3, pool_max_size=3)
    try:
        wait_for(lambda: store.pool_stats() == {"total": 3, "active": 0, "waiting": 0}, "three idle pooled connections")
        with store.connection():
            # One client connection lent out, yet no transaction in flight: PgBouncer holds it no server connection.
            assert store.pool_stats()["active"] == 1
            wait_for(lambda: pooled.bouncer.pools()[0]["sv_active"] == 0, "PgBouncer to release its server connection")
        health = store.health()
        assert health.status == "healthy" and health.details["connection"] is True
        assert "total_advisory_locks" in health.details["lock_stats"]  # type: ignore[operator]
    finally:
        store.close()
