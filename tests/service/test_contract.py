"""The contract between the live service and rendered/: every metric, label and `le` bound that a rule, an alert or a
dashboard queries exists in a real scrape of the service after real traffic, every latency threshold of the specs is
a bucket boundary there, and /slo reports the specs' thresholds. A renamed metric or label in the catalog fails here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from featurestore.errors import LockTimeout
from featurestore.keys import advisory_key
from featurestore.metrics import CATALOG, MetricKind
from featurestore.settings import FeatureStoreSettings
from generators import pooler
from service.app import create_app
from slos.loader import load_specs
from slos.models import LatencyBudgetObjective, QuantileObjective
from tests.conftest import REPO, dsn_with_schema
from tests.service.conftest import API, LOOPBACK, service_of, service_settings, store_settings
from tests.service.promql_usage import LabelUse

# The pooler's rule reads PgBouncer's exporter, not this service's scrape (tests/generators/test_pooler.py covers it).
RULES = sorted(
    path
    for path in (REPO / "rendered" / "prometheus" / "rules").glob("*.yml")
    if path.name != Path(pooler.RULES_PATH).name
)
DASHBOARDS = sorted((REPO / "rendered" / "grafana" / "dashboards").glob("*.json"))
# Grafana substitutes these before the query reaches Prometheus.
GRAFANA_INTERVALS = re.compile(r"\$\{?__(rate_interval|interval|range)\}?")
GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\s*\)\s*$")
TEMPLATE_LABEL = re.compile(r"\$labels\.(\w+)")


def grafana_to_promql(expr: str) -> str:
    return GRAFANA_VARIABLE.sub("x", GRAFANA_INTERVALS.sub("5m", expr))


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str) -> Iterator[str]:
    """The service's exposition after traffic that touches every family: a load on PostgreSQL, cache hits, misses
    and a recompute, a lock timeout, health checks, SLO and performance reads, and a 404."""
    schema = f"contract_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        settings = store_settings(
            tmp_path_factory.mktemp("contract") / "cache",
            dsn_with_schema(pg_dsn, schema),
            lock_timeout_ms=200,
        )
        yield exercised_scrape(settings)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def exercised_scrape(settings: FeatureStoreSettings) -> str:
    with TestClient(create_app(service_settings(), settings), client=LOOPBACK) as client:
        load = client.post(f"{API}/test/load", json={"workers": 4, "duration_seconds": 1, "think_ms": 10})
        assert load.status_code == 200, load.text
        store = service_of(client).store.opened
        assert store is not None  # held: PostgreSQL is configured
        frame = pa.table({"close": [1.0, 2.0]})
        store.get_or_compute("AAPL", "returns", {"window": 5}, lambda: frame)  # miss
        store.get_or_compute("AAPL", "returns", {"window": 5}, lambda: frame)  # hit
        (entry,) = list(store.entries("AAPL"))
        (settings.resolved_cache_dir() / entry.path).unlink()
        store.get_or_compute("AAPL", "returns", {"window": 5}, lambda: frame)  # recomputed: missing
        dsn = settings.dsn()
        assert dsn is not None
        with psycopg.connect(dsn, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", [advisory_key("LOCKED")])
            with pytest.raises(LockTimeout):
                store.publish("LOCKED", "returns", {"window": 5}, frame)
        for path in ("health", "health/ready", "slo", "performance", "no-such-page"):
            client.get(f"{API}/{path}")
        return client.get(f"{API}/metrics").text


def exposed(scrape: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Label names per sample name, and the `le` values per `_bucket` sample name, as the scrape writes them."""
    labels: dict[str, set[str]] = {}
    bounds: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
            if sample.name.endswith("_bucket"):
                bounds.setdefault(sample.name, set()).add(sample.labels["le"])
    return labels, bounds


def rules() -> list[dict[str, Any]]:
    found = []
    for path in RULES:
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []):
            for rule in group.get("rules", []):
                found.append({**rule, "file": path.name})
    return found


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every templating query of the dashboards."""

    def walk(node: Any, where: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            title = node.get("title", "")
            for target in node.get("targets", []) or []:
                if isinstance(target, dict) and target.get("expr"):
                    yield f"{where} / {title} / {target.get('refId', '?')}", target["expr"]
            for key, value in node.items():
                if key != "targets":
                    yield from walk(value, f"{where} / {title}" if title and key == "panels" else where)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, where)

    for path in DASHBOARDS:
        document = json.loads(path.read_text(encoding="utf-8"))
        dashboard = document.get("dashboard", document)
        yield from walk(dashboard.get("panels", []), path.name)
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else query
            if variable.get("type") == "query" and isinstance(text, str) and text:
                yield f"{path.name} / variable {variable.get('name')}", text


def label_use(scrape: str) -> LabelUse:
    """What the scrape exposes, plus the output labels of every recording rule whose own expression holds up (to a
    fixed point: records use records), so a query of a broken record fails as a query of a missing metric does."""
    labels, bounds = exposed(scrape)
    labels.setdefault("up", set())  # Prometheus writes `up` (with the target labels) for every target it scrapes
    use = LabelUse(labels, bounds)
    pending = [rule for rule in rules() if "record" in rule]
    while True:
        sound = [rule for rule in pending if not use.problems(rule["expr"])]
        if not sound:
            return use
        for rule in sound:
            use.add_record(rule["record"], use.outputs(rule["expr"]) | set(rule.get("labels", {})))
            pending.remove(rule)


def test_the_rendered_files_exist() -> None:
    assert RULES, "rendered/prometheus/rules/*.yml is missing: run `python -m generators`"
    assert DASHBOARDS, "rendered/grafana/dashboards/*.json is missing: run `python -m generators`"


@pytest.mark.postgres
def test_the_traffic_gives_every_labelled_family_of_the_catalog_a_series(scrape: str) -> None:
    labels, _ = exposed(scrape)
    for spec in CATALOG:
        if spec.labels:
            name = f"{spec.name}_count" if spec.kind is MetricKind.HISTOGRAM else spec.name
            assert name in labels, f"the contract traffic produced no {name} series"
            assert labels[name] >= set(spec.labels), name


@pytest.mark.postgres
def test_every_rule_and_alert_uses_only_exposed_metrics_labels_and_buckets(scrape: str) -> None:
    use = label_use(scrape)
    problems = {}
    for rule in rules():
        name = rule.get("record") or rule.get("alert")
        found = use.problems(rule["expr"])
        if "alert" in rule:
            available = use.outputs(rule["expr"]) | set(rule.get("labels", {}))
            for text in rule.get("annotations", {}).values():
                found += [f"annotation uses $labels.{label}" for label in TEMPLATE_LABEL.findall(text)
                          if label not in available]  # fmt: skip
        if found:
            problems[f"{rule['file']}: {name}"] = found
    assert rules(), "no rules found under rendered/prometheus/rules"
    assert problems == {}


@pytest.mark.postgres
def test_every_dashboard_query_uses_only_exposed_metrics_labels_and_buckets(scrape: str) -> None:
    use = label_use(scrape)
    queries = list(dashboard_queries())
    assert queries, "no dashboard queries found under rendered/grafana/dashboards"
    problems = {}
    for where, query in queries:
        match = LABEL_VALUES.match(query)
        if match:
            selector = match.group("selector") or "up"
            label = match.group("label")
            found = use.problems(grafana_to_promql(selector))
            if label not in use.outputs(grafana_to_promql(selector)):
                found.append(f"label_values: {selector} has no label {label!r}")
        else:
            found = use.problems(grafana_to_promql(query))
        if found:
            problems[where] = found
    assert problems == {}


@pytest.mark.postgres
def test_every_latency_threshold_of_the_specs_is_a_bucket_boundary_of_the_scrape(scrape: str) -> None:
    _, bounds = exposed(scrape)
    checked = []
    for slo in load_specs().slos:
        objective = slo.objective
        if isinstance(objective, QuantileObjective | LatencyBudgetObjective):
            le = str(float(objective.threshold))  # prometheus_client writes 5.0, never 5
            assert le in bounds.get(f"{objective.metric}_bucket", set()), (slo.name, le)
            checked.append(slo.name)
    assert checked


@pytest.mark.postgres
def test_slo_reports_the_specs_thresholds_after_the_same_traffic(pg_settings: FeatureStoreSettings) -> None:
    with TestClient(create_app(service_settings(), pg_settings), client=LOOPBACK) as client:
        client.post(f"{API}/test/load", json={"workers": 2, "duration_seconds": 1, "think_ms": 10})
        reported = client.get(f"{API}/slo").json()["slos"]
    assert {name: line["threshold"] for name, line in reported.items()} == {
        slo.name: slo.status_threshold for slo in load_specs().slos
    }


def test_the_label_check_catches_a_renamed_metric_label_and_bucket() -> None:
    use = LabelUse(
        {"manifest_insert_latency_ms_bucket": {"backend", "symbol", "le"}},
        {"manifest_insert_latency_ms_bucket": {"5.0"}},
    )
    good = 'histogram_quantile(0.95, sum by (le, job) (rate(manifest_insert_latency_ms_bucket{backend="duckdb"}[5m])))'
    assert use.problems(good) == []
    assert use.problems(good.replace("manifest_insert", "manifest_write")) != []
    assert use.problems(good.replace("backend=", "store=")) != []
    assert use.problems(good.replace("le, job", "le, shard")) != []
    assert use.problems('manifest_insert_latency_ms_bucket{le="5"}') != []
    assert use.problems('manifest_insert_latency_ms_bucket{le="5.0"}') == []
    assert use.problems('manifest_insert_latency_ms_bucket{le=~"5(\\\\.0)?"}') == []
    assert use.problems('manifest_insert_latency_ms_bucket{le=~"5"}') != []
    assert grafana_to_promql('rate(x{job=~"$job"}[$__rate_interval])') == 'rate(x{job=~"x"}[5m])'
