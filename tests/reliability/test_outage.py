"""PostgreSQL dies mid-load: 32 worker processes keep publishing through the DuckDB fallback, and after the restart
every key any worker was told was stored is in PostgreSQL exactly once.

The outage runs once per module (`outage`); each test asserts one property of that run. Every worker appends each key
the store acknowledged to its own file before publishing the next, so the parent knows exactly what was promised.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from featurestore import FeatureStore, metrics
from featurestore.conventions import API_PREFIX as API
from featurestore.instruments import build as build_instruments
from featurestore.manifest.base import DEGRADED, HEALTHY, UNHEALTHY
from featurestore.metrics import BACKEND_DUCKDB, BACKEND_POSTGRESQL, COMPONENT_POSTGRESQL, HEALTH_STATUS
from service.app import create_app
from service.settings import ServiceSettings
from tests.reliability import workers
from tests.reliability.cluster import ThrowawayCluster

pytestmark = [pytest.mark.fault, pytest.mark.postgres]

WORKERS = 32
ACKS_BEFORE_OUTAGE = 200  # the kill lands mid-load, not before the workers got going
OUTAGE_S = 5.0
LOAD_AFTER_RESTART_S = 4.0
HEALTH_INTERVAL_S = 0.2
JOIN_DEADLINE_S = 60.0
REPLAY_DEADLINE_S = 60.0

Key = tuple[str, str, str]


@dataclass
class HealthSample:
    """One round of checks: the store's postgresql status and gauge, and the service's answer and scraped gauge."""

    began: float
    at: float
    status: str
    gauge: float | None
    overall: str
    service_postgresql: str
    service_gauge: float | None
    service_reasons: str


def scraped_gauge(exposition: str) -> float | None:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == HEALTH_STATUS.name and sample.labels.get(metrics.LABEL_COMPONENT) == COMPONENT_POSTGRESQL:
                return float(sample.value)
    return None


@dataclass
class HealthWatch:
    """Polls store.health() and the service's GET /health on a thread, each next to the gauge it set."""

    store: FeatureStore
    registry: CollectorRegistry
    client: TestClient
    samples: list[HealthSample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            status = self.store.health()[COMPONENT_POSTGRESQL].status
            gauge = self.registry.get_sample_value(HEALTH_STATUS.name, {metrics.LABEL_COMPONENT: COMPONENT_POSTGRESQL})
            body = self.client.get(f"{API}/health").json()
            service_gauge = scraped_gauge(self.client.get(f"{API}/metrics").text)
            reasons = "; ".join(
                f"{name} {part['status']}: {part['details'].get('reason') or part['details'].get('error')}"
                for name, part in body["components"].items()
                if part["status"] != HEALTHY
            )
            self.samples.append(
                HealthSample(
                    began=began,
                    at=time.monotonic(),
                    status=status,
                    gauge=gauge,
                    overall=body["overall_status"],
                    service_postgresql=body["components"]["postgresql_manifest"]["status"],
                    service_gauge=service_gauge,
                    service_reasons=reasons,
                )
            )
            self.stop.wait(HEALTH_INTERVAL_S)


@dataclass
class Acks:
    """What the workers recorded: acknowledged keys with their backend, and each worker's closing summary."""

    keys: list[Key] = field(default_factory=list)
    backends: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)
    examples: dict[str, str] = field(default_factory=dict)
    close_s: list[float] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Path, *, fallback_only: bool = False) -> Acks:
        acks = cls()
        for path in sorted(folder.glob("worker-*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.endswith("}"):
                    continue  # a line being written right now
                record = json.loads(line)
                if record.get("summary"):
                    acks.errors.update(record["errors"])
                    acks.error_times.extend(record["error_times"])
                    acks.examples.update(record["examples"])
                    acks.close_s.append(record["close_s"])
                elif not fallback_only or record["backend"] == BACKEND_DUCKDB:
                    symbol, feature, digest = record["key"]
                    acks.keys.append((symbol, feature, digest))
                    acks.backends[record["backend"]] += 1
        return acks


def total_acks(folder: Path) -> int:
    return sum(path.read_bytes().count(b'"key"') for path in folder.glob("worker-*.jsonl"))


def stored_keys(dsn: str) -> Counter[Key]:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        rows = conn.execute("SELECT symbol, feature, params_digest FROM manifest_entries").fetchall()
    return Counter((str(symbol), str(feature), str(digest)) for symbol, feature, digest in rows)


def wait_until(predicate: Callable[[], bool], deadline_s: float, what: str) -> float:
    """Poll `predicate` until true; return the seconds it took, fail after `deadline_s`."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > deadline_s:
            raise AssertionError(f"{what} did not happen within {deadline_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - began


def stop_workers(processes: list[BaseProcess], stop: Event) -> list[str]:
    """Signal stop, wait for every worker up to the deadline, kill the ones still running; their names."""
    stop.set()
    deadline = time.monotonic() + JOIN_DEADLINE_S
    for process in processes:
        process.join(max(0.1, deadline - time.monotonic()))
    hung = [str(process.name) for process in processes if process.is_alive()]
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)
    return hung


@dataclass
class OutageRun:
    acks: Acks
    stored: Counter[Key]
    samples: list[HealthSample]
    kill_asked_at: float
    killed_at: float
    restarted_at: float
    stopped_at: float
    acks_at_kill: int
    acks_at_restart: int
    fallback_replayed_s: float
    backlog: list[tuple[float, int]]
    hung: list[str]
    exitcodes: list[int | None]

    @property
    def during(self) -> list[HealthSample]:
        """Checks that began after the kill and ended before the restart was asked for."""
        return [s for s in self.samples if s.began >= self.killed_at and s.at <= self.killed_at + OUTAGE_S]

    def report(self) -> str:
        acked = set(self.acks.keys)
        lost = acked - set(self.stored)
        duplicates = sum(count - 1 for count in self.stored.values() if count > 1)
        after_restart = sorted(t - self.restarted_at for t in self.acks.error_times if t >= self.restarted_at)
        window = f"+{after_restart[0]:.1f}..+{after_restart[-1]:.1f} s" if after_restart else "-"
        timeline = [
            (round(s.at - self.killed_at, 1), s.status, s.gauge, s.overall, s.service_gauge) for s in self.samples[::4]
        ]
        reasons = sorted({s.service_reasons for s in self.samples if s.at > self.restarted_at and s.overall != HEALTHY})
        slowest_close = max(self.acks.close_s, default=0.0)
        lines = [
            f"outage: {WORKERS} worker processes; PostgreSQL down {self.restarted_at - self.killed_at:.1f} s "
            f"(acks at kill {self.acks_at_kill}, at restart {self.acks_at_restart})",
            f"acknowledged {len(self.acks.keys)} (postgresql {self.acks.backends[BACKEND_POSTGRESQL]}, duckdb fallback "
            f"{self.acks.backends[BACKEND_DUCKDB]}); rows in PostgreSQL {sum(self.stored.values())}; acknowledged "
            f"found {len(acked) - len(lost)}; lost {len(lost)}; duplicates {duplicates}; stored but unacknowledged "
            f"{len(set(self.stored) - acked)}",
            f"fallback entries not yet in PostgreSQL (s after restart, entries): {self.backlog}",
            f"fallback entries all in PostgreSQL {self.fallback_replayed_s:.1f} s after the restart; workers stopped "
            f"{self.stopped_at - self.restarted_at:.1f} s after it (slowest close {slowest_close:.1f} s)",
            f"publish errors {dict(self.acks.errors)}, {len(after_restart)} after the restart ({window}): "
            f"{self.acks.examples}",
            f"health (s since kill, store status, store gauge, service overall, service gauge): {timeline}",
            f"service not healthy after the restart because: {reasons}",
        ]
        return "\n".join(lines)


@pytest.fixture(scope="module")
def outage(throwaway_cluster: ThrowawayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageRun]:
    throwaway_cluster.ensure_running()
    database = throwaway_cluster.create_database()
    dsn = throwaway_cluster.dsn(database)
    folder = tmp_path_factory.mktemp("outage")
    cache_dir, ack_dir = folder / "cache", folder / "acks"
    ack_dir.mkdir()
    ctx = workers.context()
    go, stop = ctx.Event(), ctx.Event()
    processes: list[BaseProcess] = [
        ctx.Process(
            target=workers.publish_until_stopped,
            args=(dsn, cache_dir, index, ack_dir / f"worker-{index:02d}.jsonl", go, stop),
            name=f"outage-worker-{index}",
        )
        for index in range(WORKERS)
    ]
    with contextlib.ExitStack() as resources:
        resources.callback(throwaway_cluster.drop_database, database)
        resources.callback(throwaway_cluster.ensure_running)
        resources.callback(stop_workers, processes, stop)  # also when the run fails half-way
        for process in processes:
            process.start()
        registry = CollectorRegistry()
        store = FeatureStore.open(
            dsn, cache_dir, settings=workers.settings(dsn, cache_dir), instruments=build_instruments(registry)
        )
        resources.callback(store.close)
        # The service opens its own store on the same cache folder, as it would beside the workers of one machine.
        service_store = workers.settings(dsn, cache_dir, pool_min_size=1, pool_max_size=2)
        app = create_app(ServiceSettings(admin_token=None, snapshot_interval_s=1.0), service_store)
        client = resources.enter_context(TestClient(app, client=("127.0.0.1", 50000)))
        watch = HealthWatch(store, registry, client)
        watcher = threading.Thread(target=watch.run, name="health-watch", daemon=True)
        resources.callback(watcher.join, 30)
        resources.callback(watch.stop.set)
        watcher.start()

        go.set()
        wait_until(
            lambda: total_acks(ack_dir) >= ACKS_BEFORE_OUTAGE, 90, f"{ACKS_BEFORE_OUTAGE} acknowledged publishes"
        )
        acks_at_kill = total_acks(ack_dir)
        kill_asked_at = time.monotonic()
        throwaway_cluster.kill()
        killed_at = time.monotonic()  # pg_ctl -w returned: the server is gone from here on
        time.sleep(OUTAGE_S)
        throwaway_cluster.start()
        restarted_at = time.monotonic()
        acks_at_restart = total_acks(ack_dir)
        replayed_s: float | None = None
        backlog: list[tuple[float, int]] = []  # (s after restart, fallback-acknowledged keys not yet in PostgreSQL)
        while time.monotonic() < restarted_at + LOAD_AFTER_RESTART_S:
            missing = len(set(Acks.read(ack_dir, fallback_only=True).keys) - set(stored_keys(dsn)))
            backlog.append((round(time.monotonic() - restarted_at, 1), missing))
            if replayed_s is None and missing == 0:
                replayed_s = time.monotonic() - restarted_at
            time.sleep(0.5)

        hung = stop_workers(processes, stop)
        stopped_at = time.monotonic()
        acks = Acks.read(ack_dir)
        expected = set(acks.keys)
        # Workers that stopped before they saw PostgreSQL again leave their fallback file: a live store replays it.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: expected <= set(stored_keys(dsn)), REPLAY_DEADLINE_S, "the replay")
        if replayed_s is None:
            replayed_s = time.monotonic() - restarted_at
        with contextlib.suppress(AssertionError):
            wait_until(lambda: bool(watch.samples) and watch.samples[-1].overall == HEALTHY, 30, "healthy again")
        watch.stop.set()
        watcher.join(30)
        run = OutageRun(
            acks=acks,
            stored=stored_keys(dsn),
            samples=list(watch.samples),
            kill_asked_at=kill_asked_at,
            killed_at=killed_at,
            restarted_at=restarted_at,
            stopped_at=stopped_at,
            acks_at_kill=acks_at_kill,
            acks_at_restart=acks_at_restart,
            fallback_replayed_s=replayed_s,
            backlog=backlog,
            hung=hung,
            exitcodes=[process.exitcode for process in processes],
        )
        print("\n" + run.report())
        yield run


def test_every_worker_process_stops_by_itself_after_the_outage(outage: OutageRun) -> None:
    assert outage.hung == []
    assert outage.exitcodes == [0] * WORKERS
    assert len(outage.acks.close_s) == WORKERS, "a worker ended without writing its summary"


def test_every_key_a_worker_was_told_was_stored_is_in_postgresql_exactly_once(outage: OutageRun) -> None:
    acknowledged = set(outage.acks.keys)
    assert len(outage.acks.keys) == len(acknowledged), "a key was acknowledged twice"
    assert acknowledged - set(outage.stored) == set()
    assert {key: count for key, count in outage.stored.items() if count > 1} == {}


def test_publishes_during_the_outage_went_to_the_duckdb_fallback(outage: OutageRun) -> None:
    assert outage.acks_at_restart > outage.acks_at_kill, "nothing was acknowledged while PostgreSQL was down"
    assert outage.acks.backends[BACKEND_DUCKDB] > 0


def test_health_went_unhealthy_during_the_outage_and_back_to_healthy(outage: OutageRun) -> None:
    before = [sample for sample in outage.samples if sample.at < outage.kill_asked_at]
    assert before and all(sample.status == sample.overall == HEALTHY for sample in before)
    assert outage.during, "no health check completed during the outage"
    assert all(sample.status == sample.service_postgresql == UNHEALTHY for sample in outage.during)
    # `degraded` while the DuckDB fallback takes the writes; `unhealthy` only if a check timed out on a busy machine.
    assert all(sample.overall in {DEGRADED, UNHEALTHY} for sample in outage.during)
    assert outage.samples[-1].status == outage.samples[-1].overall == HEALTHY


def test_the_postgresql_health_gauge_followed_every_check(outage: OutageRun) -> None:
    # Store and service follow one rule (ComponentHealth.serving): 0 only for unhealthy, degraded still serves.
    assert [sample.gauge for sample in outage.samples] == [
        0.0 if sample.status == UNHEALTHY else 1.0 for sample in outage.samples
    ]
    assert [sample.service_gauge for sample in outage.samples] == [
        0.0 if sample.service_postgresql == UNHEALTHY else 1.0 for sample in outage.samples
    ]
    assert {sample.gauge for sample in outage.during} == {0.0}


def test_no_publish_fails_once_postgresql_answers_again(outage: OutageRun) -> None:
    """While PostgreSQL is down writes go to the fallback; once it is back they go to PostgreSQL: no caller sees an
    error in either phase."""
    after_restart = [t - outage.restarted_at for t in outage.acks.error_times if t >= outage.restarted_at]
    assert after_restart == [], f"{len(after_restart)} publishes failed after the restart: {outage.acks.examples}"
    assert outage.acks.errors == Counter()
