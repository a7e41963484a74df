"""pgbench running the publish's own statement: its output is read right, and every transaction inserts one new row
through production's insert function, under the symbol's lock (versions 1..n per symbol)."""

from __future__ import annotations

import psycopg
import pytest

from bench.pgbench import PgbenchRun, insert_script, run_pgbench
from featurestore.manifest import pg_schema

# The end of pgbench 15's report for a custom script.
OUTPUT = """\
transaction type: /tmp/floor-x.sql
scaling factor: 1
query mode: prepared
number of clients: 64
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 31520
number of failed transactions: 3 (0.010%)
latency average = 20.3 ms
initial connection time = 95.1 ms
tps = 3152.4 (without initial connection time)
"""


def test_pgbenchs_report_is_read_into_tps_latency_and_counts() -> None:
    assert PgbenchRun.parse(OUTPUT) == PgbenchRun(tps=3152.4, latency_avg_ms=20.3, transactions=31520, failed=3)


def test_a_report_without_a_result_is_an_error_that_shows_it() -> None:
    with pytest.raises(RuntimeError, match="printed no result"):
        PgbenchRun.parse("connection to server failed")


def test_the_script_calls_productions_insert_function_on_a_random_symbol_with_a_new_key() -> None:
    script = insert_script(64)
    assert "\\set s random(0, 63)" in script
    assert f"SELECT * FROM {pg_schema.INSERT_FUNCTION}(:s, false," in script


@pytest.mark.postgres
def test_every_pgbench_transaction_inserts_one_new_row_under_its_symbols_lock(pg_schema_dsn: str) -> None:
    with psycopg.connect(pg_schema_dsn, autocommit=True) as conn:
        pg_schema.ensure_schema(conn)
    run = run_pgbench(pg_schema_dsn, clients=2, duration_s=1, symbols=4)
    assert run.tps > 0 and run.failed == 0
    with psycopg.connect(pg_schema_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT (symbol, feature, params_digest)), count(DISTINCT symbol), "
            "bool_and(v.gapless) FROM manifest_entries, LATERAL (SELECT max(version) = count(*) AS gapless "
            "FROM manifest_entries m WHERE m.symbol = manifest_entries.symbol) v"
        ).fetchone()
    assert rows == (run.transactions, run.transactions, 4, True)
