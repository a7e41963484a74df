"""The rendered rules, read back: the guide's alerts by name and meaning, labels and annotations on every alert,
recording rules for every dashboard query, and only catalog metrics or recorded series in any expression."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from featurestore import metrics
from generators import naming
from generators.__main__ import DEFAULT_OUT
from generators.profile import PRODUCTION
from generators.rules import rule_groups
from slos import load_specs
from slos.models import Severity
from tests.generators.promql_names import selectors

RULES = DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml"


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alerts() -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["alert"], r["labels"].get("long_window", "")): r for r in rules() if "alert" in r}


def test_the_guides_three_alerts_keep_their_names_and_meaning() -> None:
    by_name = alerts()
    floors = {slo.name: slo.min_events for slo in load_specs().slos}
    insert = by_name[("FeatureStoreManifestInsertLatencyHigh", "")]
    assert insert["expr"] == (
        "histogram_quantile(0.95, sum by (namespace, job, le) (rate(manifest_insert_latency_ms_bucket[5m]))) >= 5"
        " and on (namespace, job) sum by (namespace, job) (increase(manifest_insert_latency_ms_count[5m]))"
        f" >= {floors['manifest_insert_p95_ms']}"
    )
    assert (insert["for"], insert["labels"]["severity"], insert["labels"]["slo"]) == (
        "10m",
        "warning",
        "manifest_insert_latency",
    )
    hit = by_name[("FeatureStoreHitRatioLow", "")]
    assert hit["expr"].startswith("featurestore_hit_ratio < 0.95 and on (namespace, job, instance) ")
    assert hit["expr"].endswith(f" >= {floors['hit_ratio_percent']}")
    assert (hit["for"], hit["labels"]["severity"]) == ("15m", "warning")
    assert hit["annotations"]["description"] == "Current ratio: {{ $value | humanizePercentage }}"
    pool = by_name[("PostgreSQLPoolExhausted", "")]
    assert pool["expr"] == "pg_manifest_pool_max_utilization_ratio >= 1"  # the busiest process's pool, all lent out
    assert (pool["for"], pool["labels"]["severity"]) == ("1m", "critical")


def test_a_threshold_alerts_event_floor_counts_its_own_events_on_its_own_labels() -> None:
    by_name = alerts()
    hit = by_name[("FeatureStoreHitRatioLow", "")]["expr"]
    floor = hit.split(" and on (namespace, job, instance) ", 1)[1]
    # the lookups: hits and misses, each counted as 0 where only the other has series, per pod as the gauge
    for counter in (metrics.HITS.name, metrics.MISSES.name):
        assert f"sum by (namespace, job, instance) (increase({counter}[5m]))" in floor
    assert floor.count(" or 0 * ") == 2
    for slo in load_specs().slos:
        for alert in slo.alerts if slo.min_events else ():
            assert by_name[(alert.name, "")]["expr"].endswith(f" >= {slo.min_events}"), alert.name


def test_every_alert_has_a_summary_a_description_a_runbook_and_a_known_severity() -> None:
    base = load_specs().specs[0].spec.runbook_base_url
    for (name, _), rule in alerts().items():
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["annotations"]["runbook_url"] == f"{base}/{name}.md"
        assert rule["labels"]["severity"] in {s.value for s in Severity}


def test_every_rendered_expression_parses_and_reads_only_catalog_metrics_or_recorded_series() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    samples = {name for spec in metrics.CATALOG for name in spec.sample_names}
    samples.add("up")  # Prometheus's own per-target series, read by the target-down alert
    for rule in rules():
        unknown = [name for name in selectors(rule["expr"]) if name not in samples | recorded]
        assert unknown == [], rule["expr"]


def test_every_quantile_and_rate_the_dashboards_query_is_recorded() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    wanted = {naming.quantile_record(m, q, w, by) for m, q, w, by in naming.DASHBOARD_QUANTILES}
    wanted |= {naming.rate_record(m, w, by) for m, w, by in naming.DASHBOARD_RATES}
    wanted.add(naming.gauge_ratio_record(metrics.POOL_ACTIVE.name, metrics.POOL_TOTAL.name))
    assert wanted - recorded == set()


@pytest.mark.parametrize("slo", ["http_availability_percent", "manifest_insert_under_5ms_percent"])
def test_a_budgeted_slo_records_every_window_and_alerts_per_window_pair(slo: str) -> None:
    records = {(r["record"], r["labels"]["slo"]) for r in rules() if "record" in r and "slo" in r.get("labels", {})}
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    for window in windows:
        assert (naming.sli_error_record(window), slo) in records
        assert (naming.burn_rate_record(window), slo) in records
    for name in (naming.OBJECTIVE_RECORD, naming.ERROR_BUDGET_RECORD, naming.BUDGET_REMAINING_RECORD):
        assert (name, slo) in records
    burns = [r for r in rules() if "alert" in r and f'slo="{slo}"' in r["expr"]]
    assert [(r["labels"]["long_window"], r["labels"]["short_window"], r["labels"]["severity"]) for r in burns] == [
        ("1h", "5m", "critical"),
        ("6h", "30m", "critical"),
        ("1d", "2h", "warning"),
        ("3d", "6h", "warning"),
    ]


def test_latency_budget_good_events_match_the_exporters_le_and_prometheus_3s() -> None:
    (ratio,) = [r for r in rules() if r.get("record") == "slo:sli_error:ratio_rate5m" and "manifest" in r["expr"]]
    assert 'le=~"5(\\\\.0)?"' in ratio["expr"]


def test_each_slo_is_one_group_with_its_records_before_its_alerts() -> None:
    spec = load_specs().specs[0].spec
    for group in rule_groups(spec, PRODUCTION, dashboards=False):
        kinds = ["alert" if hasattr(rule, "alert") else "record" for rule in group.rules]
        assert kinds == sorted(kinds, reverse=True), group.name
