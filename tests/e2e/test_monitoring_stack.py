"""The real monitoring stack end to end, on PostgreSQL: rules load, the target is scraped, alerts go pending and
firing, Alertmanager routes them to the receiver their severity names and the webhook receiver gets them, every
dashboard query returns data, and /slo agrees with Prometheus.

One stack serves the module (service on a fresh PostgreSQL schema with a pool of 4, Prometheus and Alertmanager on
the test-profile render: 1 s scrape and evaluation, 20 s windows, `for:` divided by 60). One contention run drives
it: 12 load workers on one symbol while a slow holder (`SlowHolder`, another session: a batch job, say) keeps taking
that symbol's advisory lock for 50 ms at a time, so inserts queue on the lock (insert p95 far above 5 ms, lock wait
p95 far above 10 ms) and on the pool (all 4 connections lent out). (The service's load runs publish through the
production path, which holds nothing inside the lock: `hold_ms` is make bench's.) Nearly every
insert is then slower than 5 ms, so the insert-latency budget burns at ~20x and its page fires too; that page is
another SLO (its own `slo` label), so the rendered inhibition (a critical alert silences the warnings of the same
`slo`) does not hold the guide's p95 ticket back. While the load runs and after it stops, the `contention` fixture
records what Prometheus, Alertmanager, the webhook receiver and the service said, with timestamps (printed with `-s`);
the tests check that record.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
import yaml

from devstack.runner import Stack, StackConfig
from devstack.webhook import Notification, WebhookReceiver
from featurestore.keys import advisory_key
from generators import naming
from slos.loader import load_specs
from slos.models import SLO, GaugeObjective, Op, QuantileObjective
from tests.conftest import REPO, require_tool
from tests.e2e.prometheus_api import ApiError, Prometheus, QueryResult, get_json, poll, post_json

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

API = "/api/v1/monitoring"
JOB = "featurestore"
POOL_SIZE = 4
WINDOW_S = 20  # the test profile's 5m windows (generators/profile.py divides by 15)
LOAD = {"workers": 12, "duration_seconds": 30.0, "symbol": "E2E_CONTENTION", "wait": False}
HOLDER_HOLD_S = 0.05
# Then a short read mix (hits, misses, manifest reads), so the lookup panels have data too; it runs to completion.
LOOKUP_LOAD = {"workers": 4, "duration_seconds": 6.0, "read_fraction": 0.8, "symbol": "E2E_LOOKUPS"}
# The alerts this load must fire, by (name, severity); a burn-rate alert has one rule per window pair.
TRACKED = {
    "insert_p95": ("FeatureStoreManifestInsertLatencyHigh", "warning"),
    "insert_budget_page": ("FeatureStoreInsertLatencyBudgetBurn", "critical"),
    "lock_wait": ("FeatureStoreAdvisoryLockWaitHigh", "warning"),
    "pool_exhausted": ("PostgreSQLPoolExhausted", "critical"),
}
# rendered/alertmanager/alertmanager.yml routes by severity; the tests also ask amtool which receiver a label set gets.
RECEIVER_OF_SEVERITY = {"critical": "pager", "warning": "ticket"}
DASHBOARDS = REPO / "rendered" / "grafana" / "dashboards"
MAIN_DASHBOARD = DASHBOARDS / "featurestore.json"


# --- the stack -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(
    binaries: None, test_bundle: Path, module_schema_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("stack"),
        rendered_dir=test_bundle,
        pg_dsn=module_schema_dsn,
        service_env={
            "FEATURESTORE_POOL_MIN_SIZE": str(POOL_SIZE),
            "FEATURESTORE_POOL_MAX_SIZE": str(POOL_SIZE),
            "SERVICE_SLO_WINDOW_S": str(WINDOW_S),
            "SERVICE_SNAPSHOT_INTERVAL_S": "1",
        },
    )
    with Stack(config.with_free_ports().with_test_timings()) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Prometheus:
    assert stack.urls is not None
    return Prometheus(stack.urls.prometheus)


def _rule_files(bundle: Path) -> list[Path]:
    return sorted((bundle / "prometheus" / "rules").glob("*.yml"))


def test_prometheus_loads_every_rendered_rule_group_and_each_rule_evaluates_with_health_ok(
    test_bundle: Path, prometheus: Prometheus
) -> None:
    rendered = {
        (group["name"], len(group["rules"]))
        for path in _rule_files(test_bundle)
        for group in yaml.safe_load(path.read_text())["groups"]
    }
    assert rendered

    def all_ok() -> list[dict[str, Any]] | None:
        groups = prometheus.rule_groups()
        rules = [rule for group in groups for rule in group["rules"]]
        return groups if rules and all(rule["health"] == "ok" for rule in rules) else None

    groups = poll(all_ok, timeout_s=20) or prometheus.rule_groups()
    assert {(group["name"], len(group["rules"])) for group in groups} == rendered
    unhealthy = {
        rule["name"]: (rule["health"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    }
    assert unhealthy == {}


def test_the_featurestore_target_is_scraped_on_the_services_metrics_path_and_is_up(
    stack: Stack, prometheus: Prometheus
) -> None:
    def up() -> list[dict[str, Any]] | None:
        targets = prometheus.targets()
        return targets if targets and all(target["health"] == "up" for target in targets) else None

    # The first scrape waits ~5 s for the discovery manager's throttle, whatever the scrape interval.
    targets = poll(up, timeout_s=30) or prometheus.targets()
    assert [(target["labels"]["job"], target["health"], target["lastError"]) for target in targets] == [(JOB, "up", "")]
    assert stack.urls is not None
    assert targets[0]["scrapeUrl"] == f"{stack.urls.service}{API}/metrics"


# --- the contention run ----------------------------------------------------------------------------------------


def _stamp(moment: float | None) -> str:
    return "never" if moment is None else datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class AlertPath:
    """What one alert did during the run, in Prometheus, in Alertmanager and at the webhook receiver."""

    name: str
    severity: str
    pending_since: float | None = None  # Prometheus's activeAt
    seen_pending: float | None = None
    seen_firing: float | None = None
    seen_inactive: float | None = None  # after it was last seen active
    dips: list[tuple[float, float]] = field(default_factory=list)  # (inactive, active again) before that
    in_alertmanager: dict[str, Any] | None = None  # Alertmanager's view the first time it had the alert
    seen_in_alertmanager: float | None = None
    firing: Notification | None = None
    resolved: Notification | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        return labels.get("alertname") == self.name and labels.get("severity") == self.severity

    def notified(self, notification: Notification, status: str) -> bool:
        return notification.status == status and any(
            self.matches(alert["labels"]) and alert["status"] == status for alert in notification.alerts
        )

    def alert_in(self, notification: Notification) -> dict[str, Any]:
        return next(alert for alert in notification.alerts if self.matches(alert["labels"]))

    @property
    def suppressed(self) -> bool:
        return self.in_alertmanager is not None and self.in_alertmanager["status"]["state"] == "suppressed"

    def events(self) -> list[tuple[float | None, str]]:
        who = f"{self.name} ({self.severity})"
        am = self.in_alertmanager
        am_text = "-" if am is None else f"{am['status']['state']}, receivers {[r['name'] for r in am['receivers']]}"
        events = [
            (self.pending_since, f"{who} active (Prometheus activeAt: pending until its for: has passed)"),
            (self.seen_pending, f"{who} seen pending in Prometheus /api/v1/alerts"),
            (self.seen_firing, f"{who} seen firing in Prometheus /api/v1/alerts"),
            (self.seen_in_alertmanager, f"{who} in Alertmanager: {am_text}"),
            (self.seen_inactive, f"{who} inactive again in Prometheus"),
        ]
        for gone, back in self.dips:
            events += [(gone, f"{who} inactive for a while in Prometheus"), (back, f"{who} active again")]
        for note, status in ((self.firing, "firing"), (self.resolved, "resolved")):
            if note is not None:
                alert = self.alert_in(note)
                edge = alert["startsAt"] if status == "firing" else alert["endsAt"]
                events.append((note.received_at, f"{who} {status} notification at webhook /{note.path_receiver} "
                               f"({'startsAt' if status == 'firing' else 'endsAt'} {edge})"))  # fmt: skip
        return events


@dataclass
class ContentionRun:
    load_started: float
    paths: dict[str, AlertPath]
    load_finished: float | None = None
    load_status: dict[str, Any] = field(default_factory=dict)
    lookup_result: dict[str, Any] = field(default_factory=dict)
    slo_pairs: list[SloPair] = field(default_factory=list)
    slo_report: dict[str, Any] = field(default_factory=dict)
    panels: dict[str, list[tuple[str, QueryResult | str]]] = field(default_factory=dict)
    alertmanager_alerts_seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    def timeline(self) -> str:
        events = [(self.load_started, f"load started: {json.dumps(LOAD)}"), (self.load_finished, "load finished")]
        for path in self.paths.values():
            events += path.events()
        stamped = sorted((moment, text) for moment, text in events if moment is not None)
        missing = [text for moment, text in events if moment is None]
        return "\n".join([f"{_stamp(moment)}  {text}" for moment, text in stamped] + [f"never: {t}" for t in missing])


def _observe(run: ContentionRun, prometheus: Prometheus, alertmanager: str, webhook: WebhookReceiver) -> None:
    now = time.time()
    firing_in_prometheus = prometheus.alerts()
    managed = get_json(f"{alertmanager}/api/v2/alerts")
    notifications = webhook.notifications()
    for path in run.paths.values():
        alerts = [alert for alert in firing_in_prometheus if path.matches(alert["labels"])]
        if alerts:
            if path.seen_inactive is not None:
                path.dips.append((path.seen_inactive, now))
                path.seen_inactive = None
            path.pending_since = path.pending_since or min(_parse_time(alert["activeAt"]) for alert in alerts)
            states = {alert["state"] for alert in alerts}
            if "pending" in states and path.seen_pending is None:
                path.seen_pending = now
            if "firing" in states and path.seen_firing is None:
                path.seen_firing = now
        elif path.seen_firing is not None and path.seen_inactive is None:
            path.seen_inactive = now
        if path.in_alertmanager is None:
            path.in_alertmanager = next((alert for alert in managed if path.matches(alert["labels"])), None)
            path.seen_in_alertmanager = now if path.in_alertmanager is not None else None
        path.firing = path.firing or next((n for n in notifications if path.notified(n, "firing")), None)
        path.resolved = path.resolved or next((n for n in notifications if path.notified(n, "resolved")), None)
    run.alertmanager_alerts_seen.update({alert["fingerprint"]: alert for alert in managed})


class SlowHolder:
    """Another session taking `key` for HOLDER_HOLD_S at a time, over and over, until stopped: each time it lets go,
    the inserts queued behind it go through, then it queues again behind the next ones."""

    def __init__(self, dsn: str, key: int) -> None:
        self.dsn, self.key = dsn, key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-holder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                conn.execute("SELECT pg_advisory_lock(%s)", [self.key])
                self._stop.wait(HOLDER_HOLD_S)
                conn.execute("SELECT pg_advisory_unlock(%s)", [self.key])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture(scope="module")
def contention(stack: Stack, prometheus: Prometheus, module_schema_dsn: str) -> ContentionRun:
    """Drive the contention load; record the alert paths, /slo against Prometheus, and every panel's result."""
    assert stack.urls is not None and stack.webhook is not None
    webhook, service, alertmanager = stack.webhook, stack.urls.service, stack.urls.alertmanager
    poll(lambda: all(t["health"] == "up" for t in prometheus.targets()) or None, timeout_s=30)
    status, body = post_json(f"{service}{API}/test/load", LOAD)
    assert status == 202, body
    holder = SlowHolder(module_schema_dsn, advisory_key(str(LOAD["symbol"])))
    paths = {key: AlertPath(name, severity) for key, (name, severity) in TRACKED.items()}
    run = ContentionRun(load_started=time.time(), paths=paths)
    deadline = time.monotonic() + float(str(LOAD["duration_seconds"])) + 3 * WINDOW_S + 30

    def reached_alertmanager(path: AlertPath) -> bool:
        return path.firing is not None or path.suppressed

    # Phase 1, under load: every tracked alert fires and reaches Alertmanager; /slo is compared meanwhile.
    while time.monotonic() < deadline and not all(reached_alertmanager(path) for path in paths.values()):
        _observe(run, prometheus, alertmanager, webhook)
        if not run.slo_pairs and paths["insert_p95"].seen_firing is not None:
            run.slo_report, run.slo_pairs = _slo_snapshot(service, prometheus)
        time.sleep(0.25)
    if not run.slo_pairs:
        run.slo_report, run.slo_pairs = _slo_snapshot(service, prometheus)
    # Phase 2: the load ends; every panel query runs at once, while the 20 s windows still hold its data.
    while time.monotonic() < deadline:
        _observe(run, prometheus, alertmanager, webhook)
        load = get_json(f"{service}{API}/test/load")
        if load["status"] != "running":
            run.load_finished, run.load_status = time.time(), load
            break
        time.sleep(0.25)
    holder.stop()
    status, run.lookup_result = post_json(f"{service}{API}/test/load", LOOKUP_LOAD, timeout_s=60)
    assert status == 200, run.lookup_result
    run.panels = _run_panels(prometheus)
    # Phase 3: every alert resolves; the receivers that got a firing notification get a resolved one.
    resolving = [path for key, path in paths.items() if key != "insert_budget_page"]
    while time.monotonic() < deadline and not all(
        path.seen_inactive is not None and (path.firing is None or path.resolved is not None) for path in resolving
    ):
        _observe(run, prometheus, alertmanager, webhook)
        time.sleep(0.25)
    print("\ne2e alert paths (UTC):\n" + run.timeline())
    return run


# --- alerts ----------------------------------------------------------------------------------------------------


def _route(stack: Stack, labels: dict[str, str]) -> str:
    """The receiver Alertmanager's route tree picks for `labels` (amtool reads the same overlay config)."""
    config = stack.config.state_dir / "config" / "alertmanager.yml"
    args = [f"{name}={value}" for name, value in sorted(labels.items())]
    result = subprocess.run(
        [require_tool("amtool"), "config", "routes", "test", f"--config.file={config}", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_load_ran_on_postgresql_and_pushed_insert_p95_far_above_5_ms(contention: ContentionRun) -> None:
    assert contention.load_status.get("status") == "succeeded", contention.load_status
    result = contention.load_status["result"]
    assert result["backend"] == "postgresql"
    assert result["operations"] > 0
    assert result["insert_latency_ms"]["p95"] > 5


@pytest.mark.parametrize("key", ["insert_p95", "insert_budget_page", "lock_wait", "pool_exhausted"])
def test_an_alert_goes_pending_then_firing_and_alertmanager_routes_it_to_the_receiver_its_severity_names(
    contention: ContentionRun, stack: Stack, key: str
) -> None:
    path = contention.paths[key]
    timeline = contention.timeline()
    assert path.pending_since is not None and path.seen_firing is not None, timeline
    assert path.pending_since <= path.seen_firing, timeline
    assert path.in_alertmanager is not None, timeline
    labels = path.in_alertmanager["labels"]
    receiver = _route(stack, labels)
    assert receiver == RECEIVER_OF_SEVERITY[path.severity]
    assert [r["name"] for r in path.in_alertmanager["receivers"]] == [receiver]


@pytest.mark.parametrize("key", ["insert_p95", "insert_budget_page", "lock_wait", "pool_exhausted"])
def test_a_firing_alert_is_delivered_to_the_webhook_of_the_receiver_its_severity_names(
    contention: ContentionRun, key: str
) -> None:
    path = contention.paths[key]
    assert path.firing is not None, contention.timeline()
    assert path.firing.path_receiver == path.firing.receiver == RECEIVER_OF_SEVERITY[path.severity]
    assert path.pending_since is not None and path.firing.received_at >= path.pending_since


# PostgreSQLPoolExhausted reads an instant gauge (the guide's rule): on a loaded machine a scrape can catch one of the
# load's threads between two inserts, outside the pool, and the alert resolves before the load ends, as it would in
# production. The windowed alerts hold until their windows forget the load, and must not dip.
MAY_DIP = {"pool_exhausted"}


# The budget page stays firing until its 6h/30m pair's short window (2 min in the test profile) forgets the load,
# longer than this module waits; its resolution is the same Alertmanager path as these.
@pytest.mark.parametrize("key", ["insert_p95", "lock_wait", "pool_exhausted"])
def test_after_the_load_stops_the_alert_resolves_and_the_same_receiver_hears_it(
    contention: ContentionRun, key: str
) -> None:
    path = contention.paths[key]
    timeline = contention.timeline()
    assert contention.load_finished is not None
    assert path.seen_inactive is not None and path.seen_firing is not None, timeline
    if key not in MAY_DIP:
        assert path.seen_inactive > contention.load_finished - 1 and not path.dips, timeline
    assert path.seen_inactive > path.seen_firing, timeline
    assert path.firing is not None and path.resolved is not None, timeline
    assert path.resolved.path_receiver == path.firing.path_receiver
    assert _parse_time(path.alert_in(path.resolved)["endsAt"]) > contention.load_started


# --- dashboards ------------------------------------------------------------------------------------------------

# Panels that may legitimately return nothing on this stack, with the reason. Nowhere else.
LEGITIMATELY_EMPTY: dict[str, str] = {
    "Latency Comparison Over Time / D": "DuckDB insert p95: on PostgreSQL, inserts go to DuckDB only during an outage",
}
GRAFANA_VARIABLES = {
    "job": JOB,
    "instance": ".*",  # the dashboard's "All" (includeAll, allValue ".*"), what a fresh dashboard shows
    "datasource": "Prometheus",
    "__rate_interval": f"{WINDOW_S}s",
    "__interval": "1s",
    "__range": f"{WINDOW_S}s",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr: str) -> str:
    """The query Grafana would send, with its variables replaced (`$job`, `${job}`, `$__rate_interval`...)."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in GRAFANA_VARIABLES:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLES[name]

    return _VARIABLE.sub(value, expr)


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title / refId, expr) of every target of every panel, rows' nested panels included."""
    queries = []
    stack_ = list(dashboard.get("panels", []))
    while stack_:
        panel = stack_.pop(0)
        stack_ = list(panel.get("panels", [])) + stack_
        for target in panel.get("targets", []):
            if target.get("expr"):
                queries.append((f"{panel.get('title', '?')} / {target.get('refId', '?')}", target["expr"]))
    return queries


def _dashboards() -> list[Path]:
    paths = sorted(DASHBOARDS.glob("*.json"))
    if not paths:
        pytest.fail(f"no dashboards in {DASHBOARDS}: the generators must render them")
    return paths


def _run_panels(prometheus: Prometheus) -> dict[str, list[tuple[str, QueryResult | str]]]:
    results: dict[str, list[tuple[str, QueryResult | str]]] = {}
    for path in _dashboards():
        runs: list[tuple[str, QueryResult | str]] = []
        for title, expr in panel_queries(json.loads(path.read_text())):
            try:
                runs.append((title, prometheus.query(substitute(expr))))
            except (ApiError, KeyError) as exc:
                runs.append((title, f"{type(exc).__name__}: {exc}"))
        results[path.name] = runs
    return results


def _empty_panels(contention: ContentionRun) -> tuple[dict[str, str], dict[str, str]]:
    """Panel queries that failed (key -> error) and that returned no data (key -> expr), by `<dashboard>: <panel>`."""
    errors, empty = {}, {}
    for dashboard, runs in contention.panels.items():
        assert runs, f"{dashboard} has no panel queries"
        for title, result in runs:
            if isinstance(result, str):
                errors[f"{dashboard}: {title}"] = result
            elif result.empty:
                empty[title] = result.expr
    return errors, empty


def test_every_panel_query_of_every_rendered_dashboard_runs_without_error_and_returns_data(
    contention: ContentionRun,
) -> None:
    assert sorted(contention.panels) == [path.name for path in _dashboards()]
    errors, empty = _empty_panels(contention)
    assert errors == {}
    unexplained = {title: expr for title, expr in empty.items() if title not in LEGITIMATELY_EMPTY}
    assert unexplained == {}
    titles = {title for runs in contention.panels.values() for title, _ in runs}
    assert set(LEGITIMATELY_EMPTY) <= titles, "an exemption names a panel that no longer exists"


def test_the_lookup_load_hit_and_missed_so_the_lookup_panels_have_their_series(contention: ContentionRun) -> None:
    result = contention.lookup_result["result"] if "result" in contention.lookup_result else contention.lookup_result
    assert result["hits"] > 0 and result["misses"] > 0 and result["errors"] == 0, result
    _, empty = _empty_panels(contention)
    assert {"Manifest Read Latency (P95) / A", "Top Symbols by Activity / A"}.isdisjoint(empty)


_LABEL_VALUES = re.compile(r"^label_values\((?P<match>[^,]+),\s*(?P<label>\w+)\)$")


def test_every_dashboard_variable_query_lists_the_values_a_user_picks_from(
    stack: Stack, prometheus: Prometheus
) -> None:
    """`$job` comes from `label_values(...)`: it must list the scrape job, or every panel filters on nothing."""
    poll(lambda: all(t["health"] == "up" for t in prometheus.targets()) or None, timeout_s=30)
    variables = [
        (path.name, variable)
        for path in _dashboards()
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", [])
        if variable.get("type") == "query"
    ]
    assert variables
    for dashboard, variable in variables:
        query = variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        found = _LABEL_VALUES.match(query)
        assert found, f"{dashboard}: ${variable['name']} = {query!r} is not label_values(metric, label)"
        values = prometheus.label_values(found["label"], substitute(found["match"]))
        # $job must list the scrape job; $instance (filtered by $job) the service's own target.
        expected = {"job": JOB, "instance": urlparse(stack.urls.service).netloc if stack.urls else None}
        assert expected[variable["name"]] in values, f"{dashboard}: ${variable['name']} lists {values}"


def test_the_main_dashboards_queries_together_answer_within_the_guides_3_s_load_target(
    contention: ContentionRun,
) -> None:
    """Measured and printed, not asserted: timings on this shared machine are noise (the guide's target is < 3 s)."""
    runs = contention.panels[MAIN_DASHBOARD.name]
    timings = [result.seconds for _, result in runs if not isinstance(result, str)]
    assert len(timings) == len(runs)
    print(f"\nmain dashboard: {len(timings)} panel queries, {sum(timings):.3f} s in total (sequential), "
          f"slowest {max(timings):.3f} s; the guide's dashboard load target is < 3 s")  # fmt: skip


# --- /slo against Prometheus -----------------------------------------------------------------------------------

RANGE_S = 6  # Prometheus's values over the seconds before the instant the service computed its own, and
AHEAD_S = 2  # those evaluated up to a scrape and an evaluation (1 s each) after it, bracket the service's value
# Why values differ at all: the service computes from its registry at the instant of the request over a trailing
# window of SERVICE_SLO_WINDOW_S (20 s) between 1 s snapshots, while Prometheus computes from 1 s scrapes, over its
# 20 s rate windows with extrapolation at the edges, at 1 s evaluations. So the service's value must lie within what
# Prometheus computed from RANGE_S seconds before the request until AHEAD_S after it, widened by:
TOLERANCE = {
    # interpolation inside one bucket moves with the counts at the window's edges: 10 % of the value
    "quantile": (0.10, 0.0),
    # the same gauge read at another instant: the RANGE_S bracket covers it; 1 connection of the pool otherwise
    "gauge": (0.0, 100.0 / POOL_SIZE),
    # a share of events in percent: one second of events more or less at either edge of a 20 s window
    "ratio": (0.0, 100.0 / WINDOW_S),
    "latency_budget": (0.0, 100.0 / WINDOW_S),
}


def slo_expression(slo: SLO) -> str:
    """The PromQL of the SLO's current value in /slo units, from the recording rules the generators render."""
    objective = slo.objective
    job = f'{{job="{JOB}"}}'
    if isinstance(objective, QuantileObjective):
        return naming.quantile_record(objective.metric, objective.quantile, objective.window, objective.by) + job
    if isinstance(objective, GaugeObjective):
        if objective.divide_by is not None and objective.aggregate is None:
            value = naming.gauge_ratio_record(objective.metric, objective.divide_by) + job
        else:
            matchers = ",".join(f'{k}="{v}"' for k, v in sorted({**objective.matchers, "job": JOB}.items()))
            value = f"{objective.metric}{{{matchers}}}"
            if objective.aggregate is not None:
                value = f"{objective.aggregate} by ({', '.join(objective.by)}) ({value})"
        return f"({value}) * {objective.scale:g}"
    # Budgeted SLOs: the share of good events over the 5m-named window (20 s in the test profile, as the service's).
    return f'(1 - {naming.sli_error_record("5m")}{{slo="{slo.name}"}}) * 100'


def _worst(slo: SLO) -> str:
    """The aggregation that picks, across series, the value the service reports (service.slo.worst)."""
    return "max" if slo.status_op in (Op.LT, Op.LE) else "min"


@dataclass(frozen=True)
class SloPair:
    name: str
    kind: str
    service: float | None
    low: float | None
    high: float | None
    expr: str

    def agrees(self) -> bool:
        if self.service is None or self.low is None or self.high is None:
            return self.service is None and self.low is None
        relative, absolute = TOLERANCE[self.kind]
        low, high = sorted((self.low, self.high))
        return low - abs(low) * relative - absolute <= self.service <= high + abs(high) * relative + absolute

    def line(self) -> str:
        return f"{self.name:36} service {self.service!s:>12}  prometheus [{self.low!s:>12}, {self.high!s:>12}]"


def _scalar(prometheus: Prometheus, expr: str) -> float | None:
    values = [value for value in prometheus.query(expr).values() if value == value]  # NaN != NaN
    return values[0] if values else None


def _evaluated_since(prometheus: Prometheus, moment: float) -> bool:
    """Every rule group has been evaluated since `moment` (Prometheus's lastEvaluation, nanoseconds cut to micro)."""
    return all(_parse_time(group["lastEvaluation"]) > moment for group in prometheus.rule_groups())


def _slo_snapshot(service: str, prometheus: Prometheus) -> tuple[dict[str, Any], list[SloPair]]:
    report = get_json(f"{service}{API}/slo")
    asked = time.time()
    # The bracket reaches past the instant too: while the load fills the windows a value climbs, and the service's,
    # computed from data up to the request, leads Prometheus's last evaluation by up to a scrape and an evaluation.
    assert poll(lambda: _evaluated_since(prometheus, asked + AHEAD_S) or None, timeout_s=30), "no rule evaluation"
    bracket = f"[{RANGE_S + math.ceil(time.time() - asked)}s:1s]"
    pairs = []
    for slo in load_specs().slos:
        expr = f"{_worst(slo)}({slo_expression(slo)})"
        pairs.append(
            SloPair(
                slo.name,
                slo.objective.kind,
                report["slos"][slo.name]["current"],
                _scalar(prometheus, f"min_over_time(({expr}){bracket})"),
                _scalar(prometheus, f"max_over_time(({expr}){bracket})"),
                expr,
            )
        )
    return report, pairs


def test_the_services_slo_values_agree_with_prometheus_on_the_same_data_within_the_stated_tolerance(
    contention: ContentionRun,
) -> None:
    assert {pair.name for pair in contention.slo_pairs} == set(contention.slo_report["slos"])
    print("\n/slo vs Prometheus during the load:\n" + "\n".join(pair.line() for pair in contention.slo_pairs))
    measured = [pair for pair in contention.slo_pairs if pair.service is not None]
    assert {pair.name for pair in measured} >= {"manifest_insert_p95_ms", "pool_utilization_percent"}
    assert [pair.line() for pair in contention.slo_pairs if not pair.agrees()] == []
