"""The store through a real PgBouncer in transaction mode: compute once across processes, and PostgreSQL going away
behind the pooler (publishes fall back to DuckDB, then are replayed through the pooler exactly once)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest

from bench.pgbouncer import LocalPgBouncer
from featurestore import FeatureStore
from featurestore.keys import FrameKey
from featurestore.manifest.base import HEALTHY, UNHEALTHY
from featurestore.metrics import BACKEND_DUCKDB, BACKEND_POSTGRESQL
from featurestore.settings import FeatureStoreSettings
from tests.conftest import POOLER_SERVER_POOL, Pooled
from tests.featurestore import race_workers
from tests.featurestore.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

PROCESSES = 24
DEADLINE_S = 120.0
QUERY_WAIT_TIMEOUT_S = 2  # queries queued when PostgreSQL went away fail after this, so the store falls back


def frame(value: float = 1.0) -> pa.Table:
    return pa.table({"ts": pa.array([1, 2, 3], type=pa.int64()), "value": [value] * 3})


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_processes_racing_one_key_through_the_pooler_compute_it_once(pooled: Pooled, tmp_path: Path) -> None:
    race = race_workers.run(pooled.dsn, tmp_path, PROCESSES, DEADLINE_S)
    assert race.exitcodes == [0] * PROCESSES
    with psycopg.connect(pooled.direct_dsn) as conn:
        shared = conn.execute(
            "SELECT count(*) FROM manifest_entries WHERE symbol = %s AND params_digest = %s",
            (race_workers.SYMBOL, FrameKey.of("X", "f", race_workers.SHARED_PARAMS).params_digest),
        ).fetchone()
        versions = [row[0] for row in conn.execute("SELECT version FROM manifest_entries ORDER BY version")]
        leases = conn.execute("SELECT count(*) FROM compute_leases").fetchone()
    assert len(race.computed_by) == 1, "computed more than once"
    assert shared == (1,)
    assert versions == list(range(1, PROCESSES + 2))
    assert all(o["equal"] and o["inserted"] for o in race.outcomes)
    assert {o["backend"] for o in race.outcomes} == {BACKEND_POSTGRESQL}
    assert leases == (0,)


@pytest.fixture
def behind_proxy(pg_dsn: str, pooled: Pooled) -> Iterator[tuple[TcpProxy, LocalPgBouncer, str]]:
    """PgBouncer whose way to PostgreSQL a test can cut (a TCP proxy between them), on the `pooled` schema."""
    params = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    with TcpProxy((str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))) as proxy:
        target = psycopg.conninfo.make_conninfo(pg_dsn, host="127.0.0.1", port=proxy.port)
        with LocalPgBouncer(
            target, pool_size=POOLER_SERVER_POOL, search_path=pooled.schema, query_wait_timeout_s=QUERY_WAIT_TIMEOUT_S
        ) as bouncer:
            yield proxy, bouncer, pooled.direct_dsn


def test_publishes_fall_back_while_postgresql_is_gone_behind_the_pooler_and_are_replayed_through_it_once(
    behind_proxy: tuple[TcpProxy, LocalPgBouncer, str], tmp_path: Path
) -> None:
    proxy, bouncer, direct_dsn = behind_proxy
    symbol = f"FB{uuid.uuid4().hex[:8].upper()}"
    settings = FeatureStoreSettings(
        pg_dsn=bouncer.dsn,
        cache_dir=tmp_path / "cache",
        replay_interval_s=0.2,
        connect_timeout_s=1.0,
        pool_timeout_s=5.0,
    )
    with FeatureStore.open(settings=settings) as store:
        assert store.publish(symbol, "f", {"n": 0}, frame()).backend == BACKEND_POSTGRESQL
        assert store.health()["postgresql"].status == HEALTHY
        proxy.down()
        # PgBouncer still accepts the store's connections: health must ask PostgreSQL through it, not the pooler.
        assert store.health()["postgresql"].status == UNHEALTHY
        during = [store.publish(symbol, "f", {"n": n}, frame(float(n))).backend for n in (1, 2, 3)]
        assert during == [BACKEND_DUCKDB] * 3
        proxy.up()

        def replayed() -> bool:
            with psycopg.connect(direct_dsn) as conn:
                row = conn.execute("SELECT count(*) FROM manifest_entries WHERE symbol = %s", [symbol]).fetchone()
            return row == (4,) and store.backend_name == BACKEND_POSTGRESQL

        wait_for(replayed, "the fallback entries to be replayed through the pooler")
        assert store.health()["postgresql"].status == HEALTHY
        assert store.publish(symbol, "f", {"n": 4}, frame(4.0)).backend == BACKEND_POSTGRESQL
        with psycopg.connect(direct_dsn) as conn:
            versions = [
                r[0]
                for r in conn.execute("SELECT version FROM manifest_entries WHERE symbol = %s ORDER BY 1", [symbol])
            ]
        assert versions == [1, 2, 3, 4, 5]
        assert store.count_duplicates() == 0
        assert store.get_or_compute(symbol, "f", {"n": 2}, lambda: frame(99.0)).equals(frame(2.0))
