"""A training job's worker processes and `python -m service` share one metrics folder: a worker killed with SIGKILL
leaves its counts and no live gauge, a service restart while workers run loses no count, and on the embedded DuckDB
default the service and a worker process both work, the worker's traffic in the service's scrape."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.process import LOOPBACK, ManagedProcess, free_port
from featurestore.multiprocess import ENV
from tests.conftest import REPO
from tests.e2e.prometheus_api import get_text, poll
from tests.fleet import Fleet, WorkerProcess

API = "/api/v1/monitoring"
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@contextmanager
def service(folder: Path, store_env: dict[str, str], state: Path, port: int) -> Iterator[str]:
    """`python -m service` on `port`, exporting the folder's aggregate; its base URL."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FEATURESTORE_", "SERVICE_"))}
    env.update(store_env, **{ENV: str(folder), "SERVICE_SNAPSHOT_INTERVAL_S": "1"})
    process = ManagedProcess(
        "service",
        [sys.executable, "-m", "service", "--host", LOOPBACK, "--port", str(port)],
        state_dir=state,
        env=env,
        cwd=REPO,
    )
    url = f"http://{LOOPBACK}:{port}"
    process.start()
    try:
        process.wait_ready(f"{url}{API}/health/live", 60.0)
        yield url
    finally:
        process.stop()


def scrape(url: str) -> Scrape:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(get_text(f"{url}{API}/metrics"))
        for sample in family.samples
    }


def total(scraped: Scrape, name: str) -> float:
    return sum(value for (sample, _), value in scraped.items() if sample == name)


def manifest_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM manifest_entries").fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def job(tmp_path: Path, pg_schema_dsn: str) -> tuple[Path, dict[str, str]]:
    """The launcher's part: an empty metrics folder, and the store's settings every process gets."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    return folder, {"FEATURESTORE_PG_DSN": pg_schema_dsn, "FEATURESTORE_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.postgres
def test_a_worker_killed_with_sigkill_leaves_its_counts_and_no_stale_live_gauge(
    job: tuple[Path, dict[str, str]], tmp_path: Path, pg_schema_dsn: str
) -> None:
    folder, store_env = job
    with Fleet(2, folder, store_env) as fleet, service(folder, store_env, tmp_path, free_port(LOOPBACK)) as url:
        counts = fleet.lookups(hit=0.5, seconds=2.0, per_s=25)
        killed, survivor = fleet.workers
        killed.send({"op": "hold_pool", "seconds": 600})
        assert killed.reply() == {"held": True}
        held = poll(lambda: (s := scrape(url))[("pg_manifest_pool_max_utilization_ratio", ())] == 1.0 and s, 30)
        assert held, "the held pool never showed in the scrape"
        assert held[("pg_manifest_pool_connections_total", ())] == 3 * 2  # two workers and the service, 2 each

        killed.kill()
        after = poll(lambda: (s := scrape(url))[("pg_manifest_pool_connections_total", ())] == 2 * 2 and s, 30)
        assert after, "the killed worker's pool gauges stayed in the scrape"
        assert after[("pg_manifest_pool_max_utilization_ratio", ())] < 1.0
        assert list(folder.glob(f"gauge_live*_{killed.pid}.db")) == []
        assert (total(after, "featurestore_hits_total"), total(after, "featurestore_misses_total")) == (
            counts["hits"],
            counts["misses"],
        )
        assert total(after, "manifest_insert_latency_ms_count") == manifest_rows(pg_schema_dsn) == counts["misses"]
        assert survivor.process.poll() is None


@pytest.mark.postgres
def test_a_service_restart_while_workers_run_loses_no_count(job: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, store_env = job
    port = free_port(LOOPBACK)
    with Fleet(3, folder, store_env) as fleet:
        for worker in fleet.workers:
            worker.send({"op": "lookups", "hit": 0.7, "seconds": 8.0, "per_s": 20})
        with service(folder, store_env, tmp_path, port) as url:
            assert poll(lambda: total(scrape(url), "featurestore_hits_total") > 0, 30)
            before = scrape(url)
        with service(folder, store_env, tmp_path, port) as url:  # the same folder: nothing was wiped
            assert total(scrape(url), "featurestore_hits_total") >= total(before, "featurestore_hits_total")
            replies = [worker.reply() for worker in fleet.workers]
            hits, misses = (sum(reply[key] for reply in replies) for key in ("hits", "misses"))
            final = poll(
                lambda: (
                    (s := scrape(url))
                    and (total(s, "featurestore_hits_total"), total(s, "featurestore_misses_total")) == (hits, misses)
                ),
                30,
            )
            assert final, f"the scrape never showed the workers' {hits} hits and {misses} misses"


def test_on_the_embedded_default_the_service_and_a_worker_process_both_work_and_share_one_scrape(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    store_env = {"FEATURESTORE_CACHE_DIR": str(tmp_path / "cache")}  # no DSN: the DuckDB default
    with service(folder, store_env, tmp_path, free_port(LOOPBACK)) as url:
        assert get_text(f"{url}{API}/health/ready")
        worker = WorkerProcess("SNIPPET", {**os.environ, **store_env, ENV: str(folder)})
        try:
            assert "ready" in worker.reply()  # the service does not hold manifest.duckdb
            worker.send({"op": "lookups", "hit": 0.5, "seconds": 1.0, "per_s": 50})
            counts = worker.reply()
            shown = poll(lambda: (s := scrape(url)) and total(s, "featurestore_hits_total") == counts["hits"] and s, 30)
            assert shown, "the worker's hits never showed in the service's scrape"
            assert total(shown, "featurestore_misses_total") == counts["misses"]
            assert total(shown, "manifest_insert_latency_ms_count") == counts["misses"]
            assert get_text(f"{url}{API}/health/ready")  # still ready while the worker holds the file
        finally:
            worker.stop()
