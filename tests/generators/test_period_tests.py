"""The period SLI divides the period's events (generators/rules.py): its records, and its generated promtool case on
spiky traffic (generators/period_tests.py), which passes on the rendered rules and fails on sloth's averaged rule."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generators import naming
from generators.__main__ import DEFAULT_OUT
from tests.conftest import require_tool

RULES = DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml"
DASHBOARD = DEFAULT_OUT / "grafana" / "dashboards" / "featurestore.json"
PERIOD_TESTS = DEFAULT_OUT / "prometheus" / "tests" / "featurestore_period_test.yml"
BUDGETED = ("http_availability_percent", "manifest_insert_under_5ms_percent")
_PERIOD = re.compile(
    r"sum_over_time\(slo:sli_bad_events:increase5m(?P<slo>\{[^}]*\})\[(?P<w>\w+)\]\) / "
    r"\(sum_over_time\(slo:sli_events:increase5m\{[^}]*\}\[\w+\]\) > 0\)"
)


def records() -> dict[tuple[str, str], str]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return {
        (rule["record"], rule["labels"][naming.SLO_LABEL]): rule["expr"]
        for group in groups
        for rule in group["rules"]
        if "record" in rule and naming.SLO_LABEL in rule.get("labels", {})
    }


@pytest.mark.parametrize("slo", BUDGETED)
def test_the_period_ratio_sums_the_recorded_bad_events_over_the_recorded_total_events(slo: str) -> None:
    found = records()
    bad = found[(naming.sli_events_record(naming.BAD_EVENTS, "5m"), slo)]
    total = found[(naming.sli_events_record(naming.TOTAL_EVENTS, "5m"), slo)]
    assert "increase(" in bad and "[5m]" in bad and "increase(" in total and "[5m]" in total
    assert "rate(" not in bad.replace("increase(", "")
    period = found[(naming.sli_error_record("30d"), slo)]
    assert _PERIOD.fullmatch(period), period
    assert found[(naming.BUDGET_REMAINING_RECORD, slo)].startswith(f'1 - slo:sli_error:ratio_rate30d{{slo="{slo}"}}')


def test_a_latency_budget_counts_no_events_where_its_threshold_bucket_is_missing() -> None:
    found = records()
    slo = "manifest_insert_under_5ms_percent"
    total = found[(naming.sli_events_record(naming.TOTAL_EVENTS, "5m"), slo)]
    assert " and " in total and "_bucket" in total


def test_each_budgeted_slo_has_a_spiky_period_case_where_the_average_of_ratios_is_off_by_more_than_twice() -> None:
    cases = yaml.safe_load(PERIOD_TESTS.read_text())["tests"]
    figures = re.compile(r"its events \((?P<true>[\d.]+)x .*its 5m ratios \((?P<averaged>[\d.]+)x\)")
    by_slo = {case["name"].split(":")[0]: figures.search(case["name"]) for case in cases}
    assert set(by_slo) == set(BUDGETED)
    for match in by_slo.values():
        assert match is not None
        true, averaged = float(match["true"]), float(match["averaged"])
        assert averaged > 2 * true or averaged < true / 2


@pytest.mark.promtool
def test_the_spiky_period_case_fails_on_the_average_of_the_5m_ratios(tmp_path: Path) -> None:
    """The case is not vacuous: sloth's period SLI (the 5m ratios averaged) reads ~3.8x the events' ratio there."""
    out = tmp_path / "rendered"
    shutil.copytree(DEFAULT_OUT / "prometheus", out)
    rules = out / "rules" / "featurestore.yml"
    ratio = r"slo:sli_error:ratio_rate5m\g<slo>[\g<w>]"
    averaged = _PERIOD.sub(f"sum_over_time({ratio}) / count_over_time({ratio})", rules.read_text())
    assert averaged.count("count_over_time(") == len(BUDGETED)
    rules.write_text(averaged)
    tests = out / "tests" / PERIOD_TESTS.name
    result = subprocess.run(
        [require_tool("promtool"), "test", "rules", str(tests)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    for slo in BUDGETED:
        assert f'round(slo:sli_error:ratio_rate30d{{slo=\\"{slo}\\"}}' in output


@pytest.mark.parametrize("slo", BUDGETED)
def test_the_budget_panels_read_the_period_ratio_of_the_events(slo: str) -> None:
    """The budget-remaining stat and the period's burn-rate line select records computed from the period ratio."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for row in dashboard["panels"] for p in (row, *row.get("panels", ()))]
    queries = [t["expr"] for p in panels for t in p.get("targets", ()) if f'slo="{slo}"' in t.get("expr", "")]
    remaining = naming.BUDGET_REMAINING_RECORD
    assert f'{remaining}{{slo="{slo}"}}' in queries
    assert f'{naming.burn_rate_record("30d")}{{slo="{slo}"}}' in queries
    found = records()
    period = f'{naming.sli_error_record("30d")}{{slo="{slo}"}}'
    assert found[(remaining, slo)].startswith(f"1 - {period} / ")
    assert found[(naming.burn_rate_record("30d"), slo)].startswith(f"{period} / ")
    assert _PERIOD.fullmatch(found[(naming.sli_error_record("30d"), slo)])
