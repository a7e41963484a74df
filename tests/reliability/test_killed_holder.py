"""A process SIGKILLed while it computes a key under the compute-once lease: the workers waiting on that key get the
frame once the lease runs out (lease_ttl_s), and PostgreSQL is left holding no advisory lock of ours."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from featurestore import FeatureStore
from featurestore.singleflight import LAST_POLL_S
from tests.conftest import lease_expiry, server_is_past
from tests.reliability import workers
from tests.reliability.cluster import ThrowawayCluster

pytestmark = [pytest.mark.fault, pytest.mark.postgres]

LEASE_TTL_S = 3.0  # how long a lease may go unrenewed before another worker may take the compute over
WAITERS = 3
SYMBOL = "KILLED"
PARAMS = {"window": 20}
# Hang detection only (no latency claim): the waiters must be done long before this.
DEADLINE_S = LEASE_TTL_S + 60.0

ADVISORY_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def wait_for(path: Path, deadline_s: float, what: str) -> None:
    limit = time.monotonic() + deadline_s
    while not path.exists():
        if time.monotonic() > limit:
            raise AssertionError(f"{what} did not happen within {deadline_s:.0f} s")
        time.sleep(0.05)


def test_waiters_get_the_frame_after_the_lease_of_a_sigkilled_holder_runs_out_and_no_advisory_lock_is_left(
    throwaway_cluster: ThrowawayCluster, throwaway_dsn: str, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    started = tmp_path / "holder-started"
    overrides = {"lease_ttl_s": LEASE_TTL_S}
    ctx = workers.context()
    holder = ctx.Process(
        target=workers.hold_compute,
        args=(throwaway_dsn, cache_dir, SYMBOL, PARAMS, started),
        kwargs=overrides,
        name="lease-holder",
    )
    holder.start()
    results = [tmp_path / f"waiter-{index}.json" for index in range(WAITERS)]
    waiters = []
    try:
        wait_for(started, 60, "the holder entering its compute")
        first_expiry = lease_expiry(throwaway_dsn, SYMBOL)
        waiters = [
            ctx.Process(
                target=workers.wait_for_frame,
                args=(throwaway_dsn, cache_dir, SYMBOL, PARAMS, result),
                kwargs=overrides,
                name=f"waiter-{index}",
            )
            for index, result in enumerate(results)
        ]
        for waiter in waiters:
            waiter.start()
        # The waiters are blocked on the live holder's lease: nobody has a frame even once the server's clock is past
        # the lease's first expiry by two of a waiter's longest polls (only the holder's renewals keep it then).
        past = first_expiry + timedelta(seconds=2 * LAST_POLL_S)
        limit = time.monotonic() + DEADLINE_S
        while not server_is_past(throwaway_dsn, past):
            assert time.monotonic() < limit, "the server's clock did not pass the first lease expiry"
            time.sleep(0.05)
        early = [result.name for result in results if result.exists()]

        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.join(10)
        for result in results:
            wait_for(result, DEADLINE_S, f"{result.stem} getting the frame")
    finally:
        for process in [holder, *waiters]:
            if process.is_alive():
                process.kill()
            process.join(10)

    outcomes = [json.loads(result.read_text()) for result in results]
    waited = [outcome["at"] - killed_at for outcome in outcomes]
    computed = sum(bool(outcome["computed"]) for outcome in outcomes)
    with psycopg.connect(throwaway_dsn) as conn:
        locks = conn.execute(ADVISORY_LOCKS).fetchone()
        leases = conn.execute("SELECT count(*) FROM compute_leases WHERE expires_at > clock_timestamp()").fetchone()
    with FeatureStore.open(throwaway_dsn, cache_dir, settings=workers.settings(throwaway_dsn, cache_dir)) as store:
        locks_seen_by_store = store.advisory_locks_held()
    locks_left = locks[0] if locks else None
    leases_left = leases[0] if leases else None
    print(
        f"\nkilled holder: lease_ttl_s {LEASE_TTL_S}; {WAITERS} waiters got the frame "
        f"{', '.join(f'{seconds:.2f}' for seconds in sorted(waited))} s after the SIGKILL; computed by {computed} "
        f"waiter(s); advisory locks left {locks_left}; live leases left {leases_left}"
    )

    assert holder.exitcode == -signal.SIGKILL
    assert early == [], "a waiter got a frame while the holder was alive and computing"
    assert [outcome.get("error") for outcome in outcomes] == [None] * WAITERS
    assert all(outcome["equal"] for outcome in outcomes)
    assert computed == 1, "the key was computed more than once after the takeover"
    assert locks == (0,)
    assert leases == (0,)
    assert locks_seen_by_store == 0
