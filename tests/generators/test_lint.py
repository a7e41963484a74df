"""Lint as tests: the alert and dashboard rules that mixtool's `lint` and grafana's dashboard-linter apply, checked on
rendered/ here since neither tool is packaged for this machine.

Alerts (monitoring-mixins style): CamelCase names within 63 characters, group names unique and short, a severity
the routes know, `summary` one capitalised sentence ending with a period, `description` templated with the labels or
the value it explains, a `runbook_url`; recording rules named `level:metric:operations`.
Dashboards: a datasource, a `job` and an `instance` variable; every panel on the datasource variable, with a unit;
every query filtered by `$job` (the per-SLO `slo:*` records by their `slo` label instead), raw per-pod series by
`$instance` too; raw series rated over `$__rate_interval`; no `maxDataPoints` cap (it sampled a 24h view every ~14
minutes, hiding the spikes the 5m rules alert on).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from featurestore import metrics
from generators.__main__ import DEFAULT_OUT
from slos.models import Severity

RULES = DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml"
DASHBOARD = DEFAULT_OUT / "grafana" / "dashboards" / "featurestore.json"
NAME_LIMIT = 63
_TEMPLATE = re.compile(r"\{\{[^}]*\$(labels|value)[^}]*\}\}")


def rules() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rules() for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def content_panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def test_alert_names_are_camel_case_within_the_limit() -> None:
    bad = {a["alert"] for a in alerts() if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", a["alert"])}
    bad |= {a["alert"] for a in alerts() if len(a["alert"]) > NAME_LIMIT}
    assert bad == set()


def test_rule_group_names_are_unique_lowercase_and_within_the_limit() -> None:
    names = [group["name"] for group in rules()]
    assert len(names) == len(set(names))
    assert [n for n in names if not re.fullmatch(r"[a-z0-9_.-]+", n) or len(n) > NAME_LIMIT] == []


def test_every_alert_has_a_severity_the_routes_know() -> None:
    known = {severity.value for severity in Severity}
    assert [a["alert"] for a in alerts() if a["labels"].get("severity") not in known] == []


def test_every_summary_is_one_capitalised_sentence_ending_with_a_period() -> None:
    bad = [
        a["annotations"].get("summary", "")
        for a in alerts()
        if not re.fullmatch(r"[A-Z][^\n]*\.", a["annotations"].get("summary", ""))
        or "{{" in a["annotations"]["summary"]
    ]
    assert bad == []


def test_every_description_is_templated_with_what_it_explains() -> None:
    """`absent()` keeps no labels and its value is always 1: its description names the missing series instead."""
    bad = [
        a["alert"]
        for a in alerts()
        if not _TEMPLATE.search(a["annotations"].get("description", "")) and not a["expr"].startswith("absent(")
    ]
    assert bad == []
    absent = [a for a in alerts() if a["expr"].startswith("absent(")]
    assert absent and all("has no series" in a["annotations"]["description"] for a in absent)


def test_every_alert_links_its_runbook() -> None:
    assert [
        a["alert"] for a in alerts() if not a["annotations"].get("runbook_url", "").endswith(f"/{a['alert']}.md")
    ] == []


def test_recording_rules_are_named_level_metric_operations() -> None:
    records = [rule["record"] for group in rules() for rule in group["rules"] if "record" in rule]
    assert records
    assert [r for r in records if not re.fullmatch(r"[a-z_]+:[a-z_0-9]+:[a-z_0-9]+", r)] == []


def test_the_dashboard_has_datasource_job_and_instance_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["multi"] and variables[name]["includeAll"]
    assert "$job" in variables["instance"]["query"]


def test_every_panel_reads_the_datasource_variable_and_sets_a_unit() -> None:
    missing = []
    for panel in content_panels():
        defaults = panel["fieldConfig"]["defaults"]
        units = [defaults.get("unit")] if panel["type"] != "table" else []
        units += [
            prop["value"] for o in panel["fieldConfig"]["overrides"] for prop in o["properties"] if prop["id"] == "unit"
        ]
        if not units or not all(units) or panel["datasource"]["uid"] != "${datasource}":
            missing.append(panel["title"])
    assert missing == []


def _targets() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in content_panels() for target in panel["targets"]]


def test_every_query_filters_by_job_or_by_slo() -> None:
    bad = [
        (title, expr)
        for title, expr in _targets()
        if '=~"$job"' not in expr and not re.search(r"\bslo:\w+:\w+\{slo=", expr)
    ]
    assert bad == []


PER_POD = (metrics.HIT_RATIO, metrics.HEALTH_STATUS, metrics.POOL_ACTIVE, metrics.POOL_TOTAL, metrics.POOL_WAITING)


def test_raw_per_pod_series_filter_by_instance() -> None:
    raw = [(t, e) for t, e in _targets() if any(re.search(rf"\b{m.name}\{{", e) for m in PER_POD)]
    assert raw
    assert [(t, e) for t, e in raw if '=~"$instance"' not in e] == []


def test_raw_series_are_rated_over_the_rate_interval() -> None:
    rated = [
        (t, m.group(0)) for t, e in _targets() for m in re.finditer(r"\b(?:i?rate|increase)\([^\[]*\[([^\]]+)\]", e)
    ]
    assert [(t, r) for t, r in rated if "$__rate_interval" not in r] == []


def test_no_panel_caps_its_data_points() -> None:
    """Defect 6: `maxDataPoints: 100` sampled a 24h view every ~14 minutes."""
    assert [p["title"] for p in dashboard()["panels"] if "maxDataPoints" in p] == []


@pytest.mark.parametrize("panel", ["Manifest Insert Latency (P95)"])
def test_a_stat_turns_red_at_its_own_slos_threshold(panel: str) -> None:
    """Defect 6: the p95 stat turned red only at 25 ms, the p99 SLO's threshold."""
    spec = yaml.safe_load((DEFAULT_OUT.parent / "slos" / "specs" / "featurestore.yaml").read_text())
    p95 = next(s for s in spec["slos"] if s["name"] == "manifest_insert_p95_ms")["objective"]["threshold"]
    found = next(p for p in content_panels() if p["title"] == panel)
    red = [step["value"] for step in found["fieldConfig"]["defaults"]["thresholds"]["steps"] if step["color"] == "red"]
    assert red == [p95]
