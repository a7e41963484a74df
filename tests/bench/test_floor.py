"""The floor section of make bench on the real server, small: pgbench, the publish path and the read mix each ran,
the share and the ratio are what their parts say, a hit never computes, and nothing is left in the database."""

from __future__ import annotations

import os

import psycopg
import pytest

from bench import __main__ as bench_main
from bench.floor import FloorOptions, run_floor

pytestmark = pytest.mark.postgres


def floor_schemas(dsn: str) -> list[str]:
    """This process's floor schemas (`floor_<pid>_…`): another benchmark on the same server has its own."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        pattern = f"floor\\_{os.getpid()}\\_%"
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [pattern]).fetchall()
    return sorted(row[0] for row in rows)


def test_a_small_floor_measures_every_side_and_drops_what_it_inserted(pg_dsn: str) -> None:
    before = floor_schemas(pg_dsn)
    report = run_floor(FloorOptions(dsn=pg_dsn, workers=2, symbols=4, slice_s=1.0, rounds=1))
    assert floor_schemas(pg_dsn) == before
    [pgbench] = report.pgbench
    assert pgbench.transactions > 0 and pgbench.failed == 0
    assert report.publish.operations > 0 and report.publish.errors == 0 and report.publish.duplicates == 0
    assert report.reads.samples.hits > 0 and report.reads.errors == 0
    assert report.share == pytest.approx(report.publish.throughput_ops_s / report.pgbench_tps)
    assert report.hit_rate_ratio == pytest.approx(report.reads.throughput_ops_s / report.publish.throughput_ops_s)
    assert 0 < report.hit_cpu_ms
    assert len(report.load_averages) == 2
    text = report.render()
    assert "share" in text and "client CPU" in text and "per hit" in text
    assert report.to_json()["share"] == round(report.share, 4)


def test_the_floor_needs_a_round_and_a_positive_slice() -> None:
    with pytest.raises(ValueError, match="floor rounds"):
        FloorOptions(dsn="postgresql://x", rounds=0)


def test_without_pgbench_the_floor_alone_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_main, "pgbench_path", lambda: None)
    with pytest.raises(SystemExit) as refused:
        bench_main.main(["--floor-only", "--dsn", "postgresql://127.0.0.1:1/nowhere"])
    assert refused.value.code == 2
