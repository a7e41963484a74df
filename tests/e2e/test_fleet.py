"""A training job observed end to end: 4 worker processes that use only the public API (`FeatureStore.open()`,
`get_or_compute`) on PostgreSQL, sharing a metrics folder with `python -m service`, scraped by `make stack`'s real
Prometheus on the test profile (1 s scrape and evaluation, 5m windows as 20 s, `for:` divided by 60).

One job drives the module, in phases: idle (longer than any rule's `for:`), healthy lookups (99 % hits), a drop to
80 % hits, healthy again, then one worker lending out its whole pool. A thread records every alert state Prometheus
reports, with the phase it happened in; the tests check that record (printed with `-s`) and, from Prometheus's query
API, that the counts equal what the workers and the manifest table say.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import yaml

from devstack.runner import Stack, StackConfig, wait_for_target_up
from featurestore.multiprocess import ENV
from slos.models import duration_seconds
from tests.e2e.prometheus_api import Prometheus, poll
from tests.fleet import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WORKERS = 4  # a fleet: what the tests check needs more than one process, not many (4 pools of 4: 16 connections)
WINDOW_S = 20  # the test profile's 5m
PER_S = 25  # lookups per second per worker
HEALTHY, LOW = 0.99, 0.80
HEALTHY_S = WINDOW_S + 5  # the first healthy phase: a window of 99 % hits, held past the alert's for: (15 s)
PHASE_S = 60  # the deadline of a phase that waits for an alert to fire or resolve
HIT_RATIO_ALERT, POOL_ALERT = "FeatureStoreHitRatioLow", "PostgreSQLPoolExhausted"
HITS_TOTAL, MISSES_TOTAL, INSERTS_TOTAL = (
    "featurestore_hits_total",
    "featurestore_misses_total",
    "manifest_insert_latency_ms_count",
)


@dataclass
class Timeline:
    """Alert states seen by polling Prometheus, with the phase each first appeared in."""

    started: float = field(default_factory=time.monotonic)
    phase: str = "starting"
    phases: list[tuple[float, str]] = field(default_factory=list)
    events: list[tuple[float, str, str, str]] = field(default_factory=list)  # (t, phase, alertname, state)
    _last: dict[str, str] = field(default_factory=dict)

    def enter(self, phase: str) -> float:
        now = time.monotonic() - self.started
        self.phase = phase
        self.phases.append((now, phase))
        return now

    def observe(self, alerts: list[dict[str, object]]) -> None:
        now = time.monotonic() - self.started
        states: dict[str, str] = {}
        for alert in alerts:
            labels = alert["labels"]
            assert isinstance(labels, dict)
            name, state = str(labels["alertname"]), str(alert["state"])
            if states.get(name) != "firing":
                states[name] = state
        for name in sorted({*states, *self._last}):
            state = states.get(name, "inactive")
            if self._last.get(name, "inactive") != state:
                self.events.append((now, self.phase, name, state))
        self._last = states

    def first(self, name: str, state: str, after: float = 0.0) -> float | None:
        return next((t for t, _, n, s in self.events if n == name and s == state and t >= after), None)

    def text(self) -> str:
        lines = [f"{t:7.1f} s  phase {phase}" for t, phase in self.phases]
        lines += [f"{t:7.1f} s  [{phase}] {name} {state}" for t, phase, name, state in self.events]
        return "\n".join(sorted(lines, key=lambda line: float(line.split()[0])))


@dataclass
class JobRun:
    timeline: Timeline
    idle_alerts: list[str]
    low_started: float
    healthy_again: float
    recovered_by: float
    pool_held: float
    pool_released: float
    hits: int
    misses: int
    scraped: dict[str, float]
    manifest_rows: int


def longest_for_s(bundle: Path) -> float:
    rules = [
        rule
        for path in sorted((bundle / "prometheus" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    return max(duration_seconds(rule["for"]) for rule in rules if "for" in rule)


@pytest.fixture(scope="module")
def job(
    binaries: None, test_bundle: Path, module_schema_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobRun]:
    state = tmp_path_factory.mktemp("fleet-stack")
    folder = state / "metrics"
    folder.mkdir()  # the launcher owns the folder: created empty before anything starts
    # A pool of 4: a worker's lookup and its lease renewal use 2 at most, so only the hold below lends out all of them.
    store_env = {
        "FEATURESTORE_PG_DSN": module_schema_dsn,
        "FEATURESTORE_CACHE_DIR": str(state / "feature_cache"),
        "FEATURESTORE_POOL_MAX_SIZE": "4",
    }
    config = StackConfig(
        state_dir=state,
        rendered_dir=test_bundle,
        pg_dsn=module_schema_dsn,
        service_env={ENV: str(folder), "SERVICE_SLO_WINDOW_S": str(WINDOW_S), "SERVICE_SNAPSHOT_INTERVAL_S": "1"},
    )
    with Stack(config.with_free_ports().with_test_timings()) as stack, Fleet(WORKERS, folder, store_env) as fleet:
        assert stack.urls is not None
        prometheus = Prometheus(stack.urls.prometheus)
        assert wait_for_target_up(stack.urls.prometheus) is not None
        # Before the rules have seen a scrape there are no series, and the absent alerts rightly go pending: the idle
        # phase starts once no alert is pending or firing, and from then on nothing may become pending while idle.
        assert poll(lambda: True if prometheus.alerts() == [] else None, timeout_s=60), prometheus.alerts()
        timeline = Timeline()
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                try:
                    timeline.observe(prometheus.alerts())
                except OSError:
                    pass

        watcher = threading.Thread(target=watch, name="alert-timeline", daemon=True)
        watcher.start()
        try:
            idle_s = longest_for_s(test_bundle) + 5.0
            timeline.enter("idle")
            time.sleep(idle_s)  # the phase itself: nothing runs, and nothing may fire
            idle = prometheus.query(f"count by (alertname) (count_over_time(ALERTS[{int(idle_s)}s]))")
            idle_alerts = [item["metric"]["alertname"] for item in idle.result]

            # Healthy for longer than the window, so the ratio the rule reads has been 99 % for longer than its for:.
            timeline.enter("healthy")
            totals = fleet.lookups(HEALTHY, seconds=HEALTHY_S, per_s=PER_S)
            # Each later phase lasts until what it waits for happened, or its deadline passed (the tests then fail).
            low_started = timeline.enter("low (80 % hits)")
            low = fleet.lookups_until(
                LOW, PER_S, lambda: timeline.first(HIT_RATIO_ALERT, "firing", low_started) is not None, PHASE_S
            )
            healthy_again = timeline.enter("healthy again")
            again = fleet.lookups_until(
                HEALTHY, PER_S, lambda: timeline.first(HIT_RATIO_ALERT, "inactive", healthy_again) is not None, PHASE_S
            )
            recovered_by = timeline.enter("idle again")
            holder = fleet.workers[0]
            pool_held = timeline.enter("one worker holds its pool")
            holder.send({"op": "hold_pool", "seconds": PHASE_S})
            assert holder.reply() == {"held": True}
            poll(lambda: timeline.first(POOL_ALERT, "firing", pool_held), timeout_s=PHASE_S)
            holder.send({"op": "release"})
            assert holder.reply(timeout_s=PHASE_S + 10) == {"released": True}
            pool_released = timeline.enter("pool released")
            hits = totals["hits"] + low["hits"] + again["hits"]
            misses = totals["misses"] + low["misses"] + again["misses"]

            def scraped() -> dict[str, float] | None:
                values = {
                    name: sum(prometheus.query(f"sum({name})").values() or [-1.0])
                    for name in (
                        "featurestore_hits_total",
                        "featurestore_misses_total",
                        "manifest_insert_latency_ms_count",
                    )
                }
                return values if values[HITS_TOTAL] == hits else None

            deadline = time.monotonic() + 30
            counted = scraped()
            while counted is None and time.monotonic() < deadline:
                time.sleep(0.5)
                counted = scraped()
            resolved_deadline = time.monotonic() + 30
            while timeline.first(POOL_ALERT, "inactive", pool_held) is None:
                if time.monotonic() > resolved_deadline:
                    break
                time.sleep(0.5)
        finally:
            stop.set()
            watcher.join(timeout=5)
        with psycopg.connect(module_schema_dsn) as conn:
            row = conn.execute("SELECT count(*) FROM manifest_entries").fetchone()
        run = JobRun(
            timeline, idle_alerts, low_started, healthy_again, recovered_by, pool_held, pool_released,
            hits, misses, counted or {}, int(row[0]) if row else -1,
        )  # fmt: skip
        print("\nfleet e2e alert timeline (seconds since the job's stack was up):\n" + timeline.text())
        print(f"counted by the workers: {hits} hits, {misses} misses; manifest rows: {run.manifest_rows}")
        print(f"Prometheus: {run.scraped}")
        yield run


def test_no_alert_fires_or_is_pending_while_the_job_is_idle(job: JobRun) -> None:
    assert job.idle_alerts == [], job.timeline.text()
    assert [event for event in job.timeline.events if event[1] == "idle"] == [], job.timeline.text()


def test_prometheus_counts_exactly_the_inserts_hits_and_misses_of_the_workers_and_the_manifest(job: JobRun) -> None:
    assert job.scraped == {HITS_TOTAL: job.hits, MISSES_TOTAL: job.misses, INSERTS_TOTAL: job.manifest_rows}
    assert job.manifest_rows == job.misses  # every miss published one new key


def test_the_hit_ratio_alert_fires_when_the_workers_drop_to_80_percent_and_resolves_when_they_recover(
    job: JobRun,
) -> None:
    timeline = job.timeline.text()
    firing = job.timeline.first("FeatureStoreHitRatioLow", "firing", job.low_started)
    assert firing is not None and firing < job.healthy_again, timeline
    # The ratio crosses 0.95 within the window's first seconds; then `for:` (15 s) and an evaluation or two.
    assert firing - job.low_started < WINDOW_S + 15 + 5, timeline
    resolved = job.timeline.first("FeatureStoreHitRatioLow", "inactive", job.healthy_again)
    assert resolved is not None and resolved < job.recovered_by, timeline
    assert job.timeline.first("FeatureStoreHitRatioLow", "firing", 0.0) == firing  # not before the drop


def test_pool_exhausted_fires_while_one_worker_holds_its_whole_pool_and_resolves_after(job: JobRun) -> None:
    timeline = job.timeline.text()
    firing = job.timeline.first("PostgreSQLPoolExhausted", "firing", job.pool_held)
    assert firing is not None and firing < job.pool_released, timeline
    resolved = job.timeline.first("PostgreSQLPoolExhausted", "inactive", firing)
    assert resolved is not None, timeline
    assert job.timeline.first("PostgreSQLPoolExhausted", "firing", 0.0) == firing  # never before the hold
