"""The Grafana files: the guide's panels with its thresholds, queries that parse and name only catalog metrics or
recording rules, budget rows that follow the spec, and byte-stable output. promtool evaluates the hotspot tables'
queries on synthetic series, since their correctness (symbols on one side only, NaN rows) is not visible in the text."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as sdk_dashboard

import slos.models
from featurestore import metrics
from generators import grafana, naming, rules
from generators.alerts import Recording
from generators.grafana import featurestore
from generators.profile import PRODUCTION
from slos.loader import SpecSet, load_specs
from slos.models import GaugeObjective, QuantileObjective
from tests.conftest import require_tool

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_VARIABLES = {"$job": ".*", "${job}": ".*", "$instance": ".*", "$__rate_interval": "5m", "$__interval": "1m"}


@pytest.fixture(scope="module")
def specs() -> SpecSet:
    return load_specs()


@pytest.fixture(scope="module")
def files(specs: SpecSet) -> dict[str, str]:
    return grafana.dashboard_files(specs)


@pytest.fixture(scope="module")
def dashboard(files: dict[str, str]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(files[grafana.DASHBOARD_PATH])
    return loaded


def content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in dashboard["panels"] if p["title"] == title]
    assert len(found) == 1, f"{len(found)} panels titled {title!r}"
    return found[0]


def exprs(panel: dict[str, Any]) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


def substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr}"
    return expr


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(substituted(expr)),
        lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    return found


def selected(expr: str) -> list[tuple[str, str]]:
    """(metric name, matchers as written) of every selector, e.g. ('x', '{job=~".*",backend="duckdb"}')."""
    return [(str(node.name), str(node.matchers)) for node in selectors(expr)]


def recording_rules(specs: SpecSet) -> set[str]:
    """Every series the rules generator records for these specs."""
    return {
        rule.record
        for loaded in specs.specs
        for group in rules.rule_groups(loaded.spec, PRODUCTION, dashboards=True)
        for rule in group.rules
        if isinstance(rule, Recording)
    }


def test_the_files_are_the_dashboard_its_import_payload_and_the_provisioning_files(files: dict[str, str]) -> None:
    assert sorted(files) == [
        "grafana/dashboards/featurestore.json",
        "grafana/import/grafana_dashboard_featurestore.json",
        "grafana/provisioning/dashboards/featurestore.yaml",
        "grafana/provisioning/datasources/prometheus.yaml",
    ]


def test_two_renders_of_the_same_specs_are_byte_identical(specs: SpecSet, files: dict[str, str]) -> None:
    again = grafana.dashboard_files(load_specs())
    assert again == files
    for path, text in files.items():
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        if path.endswith(".json"):
            assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n", path


def test_the_dashboard_has_a_stable_uid_a_current_schema_and_unique_panel_ids(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "featurestore-overview"
    assert dashboard["schemaVersion"] == 39
    assert dashboard["title"] == "FeatureStore Monitoring"
    assert dashboard["tags"] == ["featurestore", "generated", "slo"]
    assert dashboard["refresh"] == "30s"
    assert dashboard["id"] is None
    ids = [p["id"] for p in dashboard["panels"]]
    assert ids == list(range(1, len(ids) + 1))
    assert "slos/specs/featurestore.yaml" in dashboard["description"]


def test_panels_use_the_shapes_of_schema_39_that_grafana_would_not_migrate_to(dashboard: dict[str, Any]) -> None:
    """Grafana runs no migration on a dashboard at its current schema: the JSON must already be in the v38/v37 form."""
    panels = content_panels(dashboard)
    tables = [p["fieldConfig"]["defaults"]["custom"].get("cellOptions") for p in panels if p["type"] == "table"]
    assert tables == [{"type": "auto"}, {"type": "auto"}]
    legends = [p["options"]["legend"].get("showLegend") for p in panels if p["type"] == "timeseries"]
    assert legends and set(legends) == {True}
    stat_colours = [p["fieldConfig"]["defaults"]["color"] for p in panels if p["type"] == "stat"]
    assert stat_colours and all(colour == {"mode": "thresholds"} for colour in stat_colours)


def nulls(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in nulls(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [found for index, item in enumerate(node) for found in nulls(item, f"{path}[{index}]")]
    return [path] if node is None else []


@pytest.mark.parametrize("path", [grafana.DASHBOARD_PATH, grafana.IMPORT_PATH])
def test_the_dashboard_loads_in_grafanas_own_model_without_legacy_keys_or_nulls(
    files: dict[str, str], path: str
) -> None:
    """grafana-foundation-sdk (Grafana's maintained schema, generated from its CUE) reads every panel as written."""
    register_default_plugins()
    data = json.loads(files[path])
    dashboard = data.get("dashboard", data)
    assert not set(grafana.LEGACY_KEYS) & set(dashboard)
    # null only where Grafana means it: the base step of a threshold list, and the id the import API creates
    assert {re.sub(r"\[\d+\]", "[]", found) for found in nulls(dashboard)} == {
        ".id",
        ".panels[].fieldConfig.defaults.thresholds.steps[].value",
        ".panels[].fieldConfig.overrides[].properties[].value.steps[].value",
    }
    model = sdk_dashboard.Dashboard.from_json(dashboard)
    again = json.loads(json.dumps(model, cls=JSONEncoder))

    def summary(panel: dict[str, Any]) -> tuple[Any, ...]:
        targets = [(t["expr"], t.get("legendFormat"), t["datasource"]) for t in panel.get("targets", [])]
        return panel["type"], panel["title"], panel["gridPos"], panel.get("fieldConfig"), targets

    assert [summary(p) for p in again["panels"]] == [summary(p) for p in dashboard["panels"]]
    assert again["uid"] == dashboard["uid"] and again["templating"]["list"]


def test_every_panel_and_target_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["datasource"] == DATASOURCE_REF
    offenders = [
        p["title"]
        for p in content_panels(dashboard)
        if p["datasource"] != DATASOURCE_REF or any(t["datasource"] != DATASOURCE_REF for t in p["targets"])
    ]
    assert offenders == []


def test_every_panel_has_a_description_and_at_least_one_query(dashboard: dict[str, Any]) -> None:
    assert [p["title"] for p in content_panels(dashboard) if not p["description"]] == []  # a row has none in Grafana
    assert [p["title"] for p in content_panels(dashboard) if not p["targets"]] == []


def test_every_query_parses_once_grafana_variables_are_substituted(dashboard: dict[str, Any]) -> None:
    failures = {}
    queries = [(p["title"], expr) for p in content_panels(dashboard) for expr in exprs(p)]
    queries += [("variable " + v["name"], v["query"]) for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for title, expr in queries:
        expr = re.sub(r"^label_values\((\w+(?:\{[^}]*\})?), \w+\)$", r"\1", expr)
        try:
            promql_parser.parse(substituted(expr))
        except ValueError as exc:
            failures[title] = f"{expr}: {exc}"
    assert failures == {}


def test_every_metric_a_panel_reads_is_in_the_catalog_or_recorded_by_the_generated_rules(
    specs: SpecSet, dashboard: dict[str, Any]
) -> None:
    known = recording_rules(specs)
    unknown = {
        name
        for p in content_panels(dashboard)
        for expr in exprs(p)
        for name, _ in selected(expr)
        if name not in known and metrics.find(name) is None
    }
    assert unknown == set()


def test_every_record_naming_lists_for_the_dashboards_is_on_a_panel(dashboard: dict[str, Any]) -> None:
    wanted = {naming.quantile_record(m, q, w, by) for m, q, w, by in naming.DASHBOARD_QUANTILES}
    wanted |= {naming.rate_record(m, w, by) for m, w, by in naming.DASHBOARD_RATES}
    queried = {name for p in content_panels(dashboard) for expr in exprs(p) for name, _ in selected(expr)}
    assert wanted - queried == set()


def test_every_query_filters_by_job_except_the_per_slo_records(dashboard: dict[str, Any]) -> None:
    unfiltered = {
        (name, matchers)
        for p in content_panels(dashboard)
        for expr in exprs(p)
        for name, matchers in selected(expr)
        if 'job=~".*"' not in matchers and not name.startswith("slo:")
    }
    assert unfiltered == set()


def steps_of(panel: dict[str, Any]) -> list[tuple[str, float | None]]:
    return [(step["color"], step["value"]) for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


GUIDE_PANELS = [
    # red from the p95 SLO on: the p99 SLO (25 ms) is another one (a defect an audit of rendered/ found)
    ("Manifest Insert Latency (P95)", "stat", "ms", [("green", None), ("red", 5.0)]),
    ("Latency Comparison Over Time", "timeseries", "ms", [("green", None), ("yellow", 5.0), ("red", 25.0)]),
    ("Advisory Lock Wait Time", "timeseries", "ms", [("green", None), ("red", 10.0)]),
    ("Hit Ratio", "stat", "percentunit", [("red", None), ("yellow", 0.90), ("green", 0.95)]),
    ("Connection Pool Utilization", "timeseries", "short", [("green", None)]),
    ("Top Symbols by Activity", "table", "", [("green", None)]),
]


@pytest.mark.parametrize(("title", "kind", "unit", "expected"), GUIDE_PANELS, ids=[row[0] for row in GUIDE_PANELS])
def test_the_guide_panel_has_its_type_unit_thresholds_and_colours(
    dashboard: dict[str, Any], title: str, kind: str, unit: str, expected: list[tuple[str, float | None]]
) -> None:
    found = panel(dashboard, title)
    assert (found["type"], found["fieldConfig"]["defaults"]["unit"], steps_of(found)) == (kind, unit, expected)


def test_the_insert_p95_stat_reads_the_slo_recording_rule(dashboard: dict[str, Any]) -> None:
    found = panel(dashboard, "Manifest Insert Latency (P95)")
    assert selected(exprs(found)[0]) == [("job:manifest_insert_latency_ms:p95_5m", '{job=~".*"}')]
    assert found["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
    assert found["fieldConfig"]["defaults"]["color"] == {"mode": "thresholds"}


def test_the_latency_comparison_plots_postgresql_p50_p95_p99_against_duckdb_p95(dashboard: dict[str, Any]) -> None:
    found = panel(dashboard, "Latency Comparison Over Time")
    assert [selected(expr) for expr in exprs(found)] == [
        [(f"job_backend:manifest_insert_latency_ms:{q}_5m", f'{{job=~".*",backend="{backend}"}}')]
        for q, backend in (("p50", "postgresql"), ("p95", "postgresql"), ("p99", "postgresql"), ("p95", "duckdb"))
    ]
    assert found["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "dashed"}


def test_the_lock_wait_panel_plots_p50_p95_p99(dashboard: dict[str, Any]) -> None:
    names = [selected(expr)[0][0] for expr in exprs(panel(dashboard, "Advisory Lock Wait Time"))]
    assert names == [f"job:advisory_lock_wait_time_ms:{q}_5m" for q in ("p50", "p95", "p99")]


def test_the_hit_ratio_has_a_time_series_with_its_95_percent_line(dashboard: dict[str, Any]) -> None:
    found = panel(dashboard, "Hit Ratio vs 95 % SLO")
    assert exprs(found) == exprs(panel(dashboard, "Hit Ratio"))
    assert ("green", 0.95) in steps_of(found)
    assert found["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "dashed"}


def test_the_pool_panel_plots_total_and_active_with_utilization_on_a_percent_axis(dashboard: dict[str, Any]) -> None:
    found = panel(dashboard, "Connection Pool Utilization")
    names = [selected(expr)[0][0] for expr in exprs(found)]
    assert names == [
        "pg_manifest_pool_connections_total",
        "pg_manifest_pool_connections_active",
        "pg_manifest_pool_requests_waiting",
        naming.gauge_ratio_record("pg_manifest_pool_connections_active", "pg_manifest_pool_connections_total"),
    ]
    (override,) = found["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byFrameRefID", "options": "D"}
    properties = {prop["id"]: prop["value"] for prop in override["properties"]}
    assert properties["unit"] == "percentunit"
    assert [(s["color"], s["value"]) for s in properties["thresholds"]["steps"]] == [("green", None), ("red", 0.80)]


def test_the_hotspot_tables_are_instant_topk_queries(dashboard: dict[str, Any]) -> None:
    for title in ("Top Symbols by Activity", "Lock Contention by Symbol"):
        found = panel(dashboard, title)
        assert all(t["instant"] and t["format"] == "table" for t in found["targets"]), title
        assert "topk(10, " in exprs(found)[0], title
    lock = {name for name, _ in selected(exprs(panel(dashboard, "Lock Contention by Symbol"))[0])}
    assert lock == {naming.quantile_record("advisory_lock_wait_time_ms", 0.95, "5m", ("symbol",))}


def test_the_guide_thresholds_are_the_specs(specs: SpecSet) -> None:
    by_name = {slo.name: slo for slo in specs.slos}

    def threshold(name: str) -> float:
        objective = by_name[name].objective
        assert isinstance(objective, QuantileObjective | GaugeObjective)
        return objective.threshold / (objective.scale if isinstance(objective, GaugeObjective) else 1)

    limits = featurestore.Limits.of(specs.slos)
    assert [step["value"] for step in limits.insert_p95_steps[1:]] == [threshold("manifest_insert_p95_ms")]
    assert [step["value"] for step in limits.insert_lines[1:]] == [
        threshold("manifest_insert_p95_ms"),
        threshold("manifest_insert_p99_ms"),
    ]
    assert limits.lock_wait_steps[1]["value"] == threshold("advisory_lock_wait_p95_ms")
    assert limits.read_p95_steps[1]["value"] == threshold("manifest_read_p95_ms")
    assert limits.hit_ratio_steps[2]["value"] == threshold("hit_ratio_percent")
    assert limits.pool_utilization_steps[1]["value"] == threshold("pool_utilization_percent")


def test_every_threshold_list_starts_at_a_null_base_and_rises(dashboard: dict[str, Any]) -> None:
    lists = [p["fieldConfig"]["defaults"]["thresholds"]["steps"] for p in content_panels(dashboard)]
    lists += [
        prop["value"]["steps"]
        for p in content_panels(dashboard)
        for override in p["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "thresholds"
    ]
    for steps in lists:
        values = [step["value"] for step in steps]
        assert values[0] is None and values[1:] == sorted(values[1:]), steps  # never grafanalib's string "null"


def budget_panels(dashboard: dict[str, Any], slo: str) -> tuple[list[str], list[str]]:
    """(expressions of the budget-remaining panels, of the burn-rate panels) that select `slo`."""
    remaining, burn = [], []
    for p in content_panels(dashboard):
        for expr in exprs(p):
            for name, matchers in selected(expr):
                if f'slo="{slo}"' not in matchers:
                    continue
                if name == naming.BUDGET_REMAINING_RECORD:
                    remaining.append(p["title"])
                elif name.startswith("slo:burn_rate:"):
                    burn.append(name)
    return remaining, burn


def test_every_budgeted_slo_has_budget_remaining_and_burn_rates_for_every_alert_window(
    specs: SpecSet, dashboard: dict[str, Any]
) -> None:
    budgeted = [slo.name for slo in specs.slos if slo.budgeted]
    assert budgeted == ["http_availability_percent", "manifest_insert_under_5ms_percent"]
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]  # the alert windows and the period
    for name in budgeted:
        remaining, burn = budget_panels(dashboard, name)
        assert remaining == [f"{name}: error budget remaining"]
        assert burn == [naming.burn_rate_record(window) for window in windows]


def test_the_burn_rate_lines_are_the_workbook_factors_for_a_30_day_period(dashboard: dict[str, Any]) -> None:
    found = panel(dashboard, "http_availability_percent: burn rate")
    assert steps_of(found) == [("green", None), ("yellow", 1.0), ("orange", 3.0), ("red", 6.0), ("dark-red", 14.4)]


def test_the_budget_rows_follow_the_specs_budgeted_slos(tmp_path: Path) -> None:
    doc = re.search(r"```yaml\n(.*?)```", slos.models.__doc__ or "", re.S)
    assert doc is not None
    (tmp_path / "example.yaml").write_text(doc.group(1), encoding="utf-8")
    example = json.loads(grafana.dashboard_files(load_specs(tmp_path))[grafana.DASHBOARD_PATH])
    rows = [p["title"] for p in example["panels"] if p["type"] == "row" and p["title"].startswith("Error budget")]
    assert rows == ["Error budget: http_availability_percent"]
    assert budget_panels(example, "manifest_insert_under_5ms_percent") == ([], [])
    assert "example.yaml" in example["description"]


def test_panels_sit_inside_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard["panels"]:
        pos = p["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, p["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


def test_the_import_payload_wraps_the_same_dashboard_for_the_guides_curl(files: dict[str, str]) -> None:
    payload = json.loads(files[grafana.IMPORT_PATH])
    assert payload["dashboard"] == json.loads(files[grafana.DASHBOARD_PATH])
    assert payload["overwrite"] is True
    assert payload["dashboard"]["id"] is None  # /api/dashboards/db creates or, by uid, overwrites


def test_the_provisioning_files_point_grafana_at_prometheus_and_the_dashboards_folder(files: dict[str, str]) -> None:
    datasource_text = files[grafana.DATASOURCE_PATH]
    provider_text = files[grafana.PROVIDER_PATH]
    assert datasource_text.startswith("# Generated from slos/specs/featurestore.yaml by `make render`")
    (datasource,) = yaml.safe_load(datasource_text)["datasources"]
    assert (datasource["type"], datasource["url"], datasource["isDefault"]) == (
        "prometheus",
        "http://prometheus:9090",
        True,
    )
    (provider,) = yaml.safe_load(provider_text)["providers"]
    assert (provider["type"], provider["options"]["path"]) == ("file", grafana.DASHBOARDS_MOUNT)
    assert f"rendered/grafana/dashboards at {grafana.DASHBOARDS_MOUNT}" in provider_text


# promtool evaluates the hotspot queries on recorded series fed in directly: (series, value), eval at 2m.
HOTSPOT_SERIES = [
    *((f'job_symbol:featurestore_hits:rate5m{{job="fs",symbol="S{i:02}"}}', i + 1) for i in range(0, 12, 2)),
    *((f'job_symbol:featurestore_misses:rate5m{{job="fs",symbol="S{i:02}"}}', i + 1) for i in range(1, 12, 2)),
    ('job_symbol:featurestore_hits:rate5m{job="fs",symbol="BOTH"}', 100),
    ('job_symbol:featurestore_misses:rate5m{job="fs",symbol="BOTH"}', 50),
    ('job_symbol:manifest_insert_latency_ms_count:rate5m{job="fs",symbol="BOTH"}', 7),
    ('job_symbol:manifest_insert_latency_ms_count:rate5m{job="fs",symbol="S11"}', 1),
    ('job_symbol:manifest_insert_latency_ms_count:rate5m{job="fs",symbol="S00"}', 9),
    ('job_symbol:advisory_lock_wait_time_ms:p95_5m{job="fs",symbol="L1"}', 3),
    ('job_symbol:advisory_lock_wait_time_ms:p95_5m{job="fs",symbol="L2"}', "NaN"),
    ('job_symbol:advisory_lock_wait_time_ms:p95_5m{job="fs",symbol="L3"}', 8),
    ('job_symbol:advisory_lock_wait_time_ms:p95_5m{job="fs2",symbol="L3"}', 12),
]


@pytest.mark.promtool
def test_promtool_finds_the_hotspot_tables_count_one_sided_symbols_and_skip_nan(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    promtool = require_tool("promtool")
    activity = exprs(panel(dashboard, "Top Symbols by Activity"))
    (contention,) = exprs(panel(dashboard, "Lock Contention by Symbol"))
    busiest = {"BOTH": 150, **{f"S{i:02}": i + 1 for i in range(3, 12)}}  # S00-S02 are not in the top ten
    cases = [
        (activity[0], busiest),
        (activity[1], {"BOTH": 7, "S11": 1}),  # S00 inserts but is not a top symbol
        (contention, {"L1": 3, "L3": 12}),  # L2 took no lock (NaN); L3's worst job counts
    ]
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": " ".join([str(value)] * 4)} for series, value in HOTSPOT_SERIES
                ],
                "promql_expr_test": [
                    {
                        "expr": substituted(expr),
                        "eval_time": "2m",
                        "exp_samples": [{"labels": f'{{symbol="{s}"}}', "value": v} for s, v in sorted(rows.items())],
                    }
                    for expr, rows in cases
                ],
            }
        ],
    }
    path = tmp_path / "hotspots_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_disabled_tier_draws_no_line_and_an_slo_without_burn_alerts_draws_none() -> None:
    """A line sits where an alert of the SLO fires: `capture_under_100ms_percent` disables page_slow."""
    case = load_specs(Path(__file__).parent / "cases" / "native_payments")
    example = json.loads(grafana.dashboard_files(case)[grafana.DASHBOARD_PATH])
    capture = panel(example, "capture_under_100ms_percent: burn rate")  # 28 days: 13.44, (5.6), 2.8, 0.9333
    assert steps_of(capture) == [("green", None), ("yellow", 0.9333), ("orange", 2.8), ("red", 13.44)]
    assert "page above 13.44x" in capture["description"]
    # An OpenSLO SLO alerted by its policy's conditions only: no tier, no line.
    checkout = load_specs(Path(__file__).parent / "cases" / "openslo_checkout")
    policy_only = panel(
        json.loads(grafana.dashboard_files(checkout)[grafana.DASHBOARD_PATH]), "checkout_availability: burn rate"
    )
    assert steps_of(policy_only) == [("green", None)]
