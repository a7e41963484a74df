"""The throwaway cluster really goes down and comes back with its data: the fault the outage test relies on."""

from __future__ import annotations

import psycopg
import pytest

from tests.reliability.cluster import ThrowawayCluster

pytestmark = pytest.mark.fault


def test_a_killed_throwaway_cluster_refuses_connections_and_restarts_with_its_committed_rows(
    throwaway_cluster: ThrowawayCluster, throwaway_dsn: str
) -> None:
    with psycopg.connect(throwaway_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE survivor (id int PRIMARY KEY)")
        conn.execute("INSERT INTO survivor VALUES (1), (2), (3)")
    assert throwaway_cluster.port != 5432

    throwaway_cluster.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(throwaway_dsn, connect_timeout=2)

    throwaway_cluster.start()
    with psycopg.connect(throwaway_dsn) as conn:
        rows = conn.execute("SELECT id FROM survivor ORDER BY id").fetchall()
    assert rows == [(1,), (2,), (3,)]
