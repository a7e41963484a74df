"""The load generator and a pooler: its connection check lets a run through PgBouncer past max_connections, and
make bench's pooler part runs the workload directly and through a real PgBouncer, then a fleet through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import build_parser
from bench.held_lock import HeldLockStores, LockScope
from bench.pooler_compare import PoolerOptions, run_pooler_compare
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.runner import NotEnoughConnections, check_connections
from tests.conftest import POOLER_SERVER_POOL, Pooled

PAST_ANY_SERVER = 500  # more connections than max_connections (100) could ever leave free


@pytest.mark.postgres
def test_the_connection_check_refuses_a_run_past_max_connections_directly_but_not_through_a_pooler(
    pooled: Pooled,
) -> None:
    lines: list[str] = []
    check_connections(pooled.dsn, PAST_ANY_SERVER, progress=lines.append)
    assert any("connection pooler" in line for line in lines)
    with pytest.raises(NotEnoughConnections, match="connection pooler in transaction mode"):
        check_connections(pooled.direct_dsn, PAST_ANY_SERVER)


def test_pool_size_counts_the_connections_of_worker_processes_and_rejects_nonsense() -> None:
    assert LoadConfig(backend="postgresql", dsn="x", workers=40, processes=True, pool_size=4).connections() == 160
    assert LoadConfig(workers=8, pool_size=4).connections() == 8  # threads: one connection each
    with pytest.raises(ValueError, match="pool_size"):
        LoadConfig(pool_size=0)
    assert build_parser().parse_args(["--fleet", "40x4"]).fleet == (40, 4)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fleet", "40"])


@pytest.mark.postgres
def test_the_pooler_comparison_runs_one_workload_both_ways_and_a_fleet_through_pgbouncer(
    pg_dsn: str, tmp_path: Path
) -> None:
    base = LoadConfig(
        backend="postgresql", dsn=pg_dsn, workers=3, processes=True, duration_s=1.0, symbols=2, think_ms=10.0
    )
    options = PoolerOptions(fleet_workers=3, fleet_pool_size=2)
    stores = HeldLockStores(LockScope.SYMBOL, hold_ms=1.0)
    report = run_pooler_compare(base, stores, options, 1, tmp_path, lambda _: None)
    assert not report.skipped
    assert report.direct is not None and report.pooled is not None and report.fleet is not None
    for run in (report.direct, report.pooled, report.fleet):
        assert run.result.operations > 0
    assert report.bad() == 0
    assert report.pooled.client_wait_ms is not None and report.direct.client_wait_ms is None
    assert 1 <= report.pooled.server_connections <= POOLER_SERVER_POOL
    assert 1 <= report.direct.server_connections <= 3
    assert report.fleet.client_connections == 6
    text = "\n".join(report.render())
    assert "through PgBouncer (3x1)" in text and "fleet through PgBouncer (3x2)" in text
    document = report.to_json()
    assert document["fleet"]["client_connections"] == 6 and document["server_pool"] == 20
    assert (document["pgbouncer"]["lock"], document["pgbouncer"]["hold_ms"]) == ("symbol", 1.0)
