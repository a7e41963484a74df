"""Compute once: 64 processes racing one key compute it once and leave one row; a lease whose holder stopped renewing
it is taken over; a waiter gives up after compute_lease_s."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from featurestore import ComputeTimeout, FeatureStore
from featurestore.keys import FrameKey, advisory_key
from featurestore.manifest.base import LeaseClaim, ManifestEntry
from featurestore.manifest.postgres import PostgresManifest
from featurestore.settings import FeatureStoreSettings
from featurestore.singleflight import KeyedLocks
from tests.conftest import lease_expiry, server_is_past
from tests.featurestore import race_workers

PROCESSES = 64
DEADLINE_S = 240.0  # hang detection only: 64 processes on 2 shared cores


def test_keyed_locks_serialize_one_key_let_other_keys_through_and_forget_keys_afterwards() -> None:
    locks = KeyedLocks()
    key_a, key_b = FrameKey.of("A", "f", {}), FrameKey.of("B", "f", {})
    inside: list[str] = []

    def enter(key: FrameKey) -> None:
        with locks.hold(key):
            inside.append(key.symbol)

    with locks.hold(key_a):
        same = threading.Thread(target=enter, args=(key_a,))
        other = threading.Thread(target=enter, args=(key_b,))
        same.start()
        other.start()
        other.join(30)
        assert inside == ["B"], "another key waited"
        # The second holder of A has registered (2 users) and so is at, or blocked on, A's lock, which we hold.
        _wait_for(lambda: locks.users(key_a) == 2)
        assert inside == ["B"], "the same key got in twice"
        assert len(locks) == 1
    same.join(30)
    assert inside == ["B", "A"]
    assert len(locks) == 0


@pytest.mark.postgres
def test_64_processes_racing_one_key_compute_it_once_and_leave_one_row_per_key(
    pg_schema_dsn: str, tmp_path: Path
) -> None:
    race = race_workers.run(pg_schema_dsn, tmp_path, PROCESSES, DEADLINE_S)
    assert race.exitcodes == [0] * PROCESSES
    computed_by = race.computed_by
    with psycopg.connect(pg_schema_dsn) as conn:
        shared = conn.execute(
            "SELECT count(*) FROM manifest_entries WHERE symbol = %s AND params_digest = %s",
            (race_workers.SYMBOL, FrameKey.of("X", "f", race_workers.SHARED_PARAMS).params_digest),
        ).fetchone()
        versions = [row[0] for row in conn.execute("SELECT version FROM manifest_entries ORDER BY version")]
        leases = conn.execute("SELECT count(*) FROM compute_leases").fetchone()
        locks = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
            "AND classid::bigint = %s AND objid::bigint = %s",
            _lock_parts(advisory_key(race_workers.SYMBOL)),
        ).fetchone()
    print(f"\nrace: {PROCESSES} processes, computed by {computed_by}, {len(versions)} rows")
    assert len(computed_by) == 1, f"computed {len(computed_by)} times"
    assert shared == (1,)
    assert versions == list(range(1, PROCESSES + 2)), "one row per key, versions gap-free"
    assert all(o["equal"] for o in race.outcomes) and all(o["inserted"] for o in race.outcomes)
    assert {o["backend"] for o in race.outcomes} == {"postgresql"}
    assert leases == (0,) and locks == (0,)


def _lock_parts(key: int) -> tuple[int, int]:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _settings(dsn: str, cache: Path, **overrides: Any) -> FeatureStoreSettings:
    return FeatureStoreSettings(pg_dsn=dsn, cache_dir=cache, replay_interval_s=0.2, **overrides)


def _wait_for(condition: Callable[[], bool], timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        time.sleep(0.01)


def _foreign_lease(dsn: str, key: FrameKey, ttl_s: float) -> None:
    """A lease held by a worker that will never renew it (it died)."""
    manifest = PostgresManifest(dsn, FeatureStoreSettings())
    manifest.connect()
    try:
        assert manifest.claim_lease(key, "dead-host:1:0", ttl_s).claimed
    finally:
        manifest.close()


@pytest.mark.postgres
def test_a_lease_whose_holder_stopped_renewing_it_is_taken_over(pg_schema_dsn: str, tmp_path: Path) -> None:
    params = {"window": 5}
    with FeatureStore.open(settings=_settings(pg_schema_dsn, tmp_path)) as store:
        _foreign_lease(pg_schema_dsn, FrameKey.of("LEASED", "returns", params), ttl_s=0.5)
        calls: list[float] = []
        began = time.monotonic()
        table = store.get_or_compute(
            "LEASED", "returns", params, lambda: calls.append(time.monotonic()) or pa.table({"a": [1]})
        )
    assert table.equals(pa.table({"a": [1]}))
    assert len(calls) == 1 and calls[0] - began >= 0.4, "computed before the foreign lease expired"


@pytest.mark.postgres
def test_a_frame_published_between_the_miss_and_the_lease_claim_is_read_with_the_claim_not_computed_again(
    pg_schema_dsn: str, tmp_path: Path
) -> None:
    params = {"window": 7}
    with (
        FeatureStore.open(settings=_settings(pg_schema_dsn, tmp_path)) as late,
        FeatureStore.open(settings=_settings(pg_schema_dsn, tmp_path)) as first,
    ):
        miss = late.manifest.get

        def read_then_lose_the_race(symbol: str, feature: str, digest: str) -> ManifestEntry | None:
            found = miss(symbol, feature, digest)  # nothing yet; the other store publishes (lease and all) right after
            first.get_or_compute("RACED", "returns", params, lambda: pa.table({"a": [1]}))
            return found

        late.manifest.get = read_then_lose_the_race  # type: ignore[method-assign]
        calls: list[int] = []
        table = late.get_or_compute("RACED", "returns", params, lambda: calls.append(1) or pa.table({"a": [2]}))
    assert calls == [] and table.equals(pa.table({"a": [1]}))


@pytest.mark.postgres
def test_a_waiter_gives_up_with_compute_timeout_after_compute_lease_s(pg_schema_dsn: str, tmp_path: Path) -> None:
    params = {"window": 6}
    with FeatureStore.open(settings=_settings(pg_schema_dsn, tmp_path, compute_lease_s=0.3)) as store:
        _foreign_lease(pg_schema_dsn, FrameKey.of("LEASED", "returns", params), ttl_s=60)
        calls: list[int] = []
        with pytest.raises(ComputeTimeout, match="compute_lease_s"):
            store.get_or_compute("LEASED", "returns", params, lambda: calls.append(1) or pa.table({"a": [1]}))
    assert calls == []


@pytest.mark.postgres
def test_a_holder_computing_longer_than_the_lease_ttl_keeps_its_lease_by_renewing_it(
    pg_schema_dsn: str, tmp_path: Path
) -> None:
    params = {"window": 7}
    key = FrameKey.of("LONG", "f", params)
    ttl_s = 3.0
    computes: list[str] = []
    results: dict[str, pa.Table] = {}
    outlived = threading.Event()  # the holder's first lease has expired by the server's clock: renewals keep it
    waiter_claims: list[bool | None] = []

    def slow() -> pa.Table:
        computes.append("holder")
        first_expiry = lease_expiry(pg_schema_dsn, key.symbol)
        # Compute past the lease's first expiry (the server's clock decides), however the threads are scheduled.
        _wait_for(lambda: server_is_past(pg_schema_dsn, first_expiry))
        outlived.set()
        # Finish only after the waiter asked for the lease twice and was refused (it is really waiting on us), or
        # was granted it (the failure this test looks for: then there is nothing left to wait for).
        _wait_for(lambda: waiter_claims.count(False) >= 2 or True in waiter_claims)
        return pa.table({"a": [1]})

    settings = _settings(pg_schema_dsn, tmp_path, lease_ttl_s=ttl_s)
    with FeatureStore.open(settings=settings) as holder, FeatureStore.open(settings=settings) as waiter:
        leases = waiter._flight._leases
        assert leases is not None
        claim = leases.claim_lease

        def spy(key: FrameKey, owner: str, ttl_s: float) -> LeaseClaim | None:
            claimed = claim(key, owner, ttl_s)
            waiter_claims.append(claimed.claimed if claimed is not None else None)
            return claimed

        leases.claim_lease = spy  # type: ignore[method-assign]
        thread = threading.Thread(
            target=lambda: results.update(holder=holder.get_or_compute("LONG", "f", params, slow))
        )
        thread.start()
        assert outlived.wait(DEADLINE_S)
        results["waiter"] = waiter.get_or_compute(
            "LONG", "f", params, lambda: computes.append("waiter") or pa.table({"a": [2]})
        )
        thread.join(DEADLINE_S)
    assert computes == ["holder"], "the waiter took over a lease its holder was still renewing"
    assert results["waiter"].equals(results["holder"])


@pytest.mark.postgres
def test_a_compute_that_raises_releases_its_lease_and_the_next_caller_computes(
    pg_schema_dsn: str, tmp_path: Path
) -> None:
    params = {"window": 8}

    def failing() -> pa.Table:
        raise RuntimeError("feature pipeline failed")

    with FeatureStore.open(settings=_settings(pg_schema_dsn, tmp_path)) as store:
        with pytest.raises(RuntimeError, match="pipeline failed"):
            store.get_or_compute("FAILS", "f", params, failing)
        with psycopg.connect(pg_schema_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM compute_leases").fetchone() == (0,)
        assert store.get_or_compute("FAILS", "f", params, lambda: pa.table({"a": [3]})).equals(pa.table({"a": [3]}))
