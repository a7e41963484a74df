"""Rules of time-slice SLOs (generators/timeslices.py, generators/calendar.py): each slice decided once, long windows
averaged, a calendar period starting where the spec says, in PromQL as in the Python model the cases predict with."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from generators import naming, timeslice_tests
from generators.calendar import period_start
from generators.cases import Context, clock
from generators.profile import PRODUCTION
from generators.render import render, retention_problems
from generators.rules import rule_groups
from generators.synthetic import VARIANTS
from generators.timeslice_tests import period_start as predicted_start
from slos.loader import LoadedSpec, SpecSet, load_specs
from slos.locations import SloLocation
from slos.models import Calendar, SpecFile, duration_seconds
from tests.conftest import require_tool

NEW_YORK_MONTH = Calendar(duration="1M", start="2022-01-01 12:00:00", time_zone="America/New_York")
BERLIN_WEEK = Calendar(duration="1w", start="2024-01-01 06:30:00", time_zone="Europe/Berlin")


def spec(objective: dict[str, Any]) -> SpecFile:
    return SpecFile.model_validate(
        {
            "version": "featurestore/v1",
            "service": "checkout",
            "runbook_base_url": "https://example.com/runbooks",
            "slos": [
                {
                    "name": "checkout_minutes",
                    "description": "Good checkout minutes",
                    "objective": {"kind": "timeslices", "target": 0.99, **objective},
                    "burn_rate": {"name": "CheckoutMinutesBudgetBurn", "summary": "Budget burning"},
                }
            ],
        }
    )


EVENTS = {"good": {"query": 'http_total{code="2xx"}'}, "total": {"query": "http_total"}}


def records(objective: dict[str, Any]) -> dict[str, str]:
    (group,) = rule_groups(spec(objective), PRODUCTION, dashboards=False)
    return {rule.record: rule.expr for rule in group.rules if hasattr(rule, "record")}  # type: ignore[attr-defined]


def timeslice_cases(tmp_path: Path, objective: dict[str, Any]) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """A spec of one time-slice SLO rendered into `tmp_path`: the names of its `_timeslices_test.yml` cases, and
    promtool's run of that file."""
    promtool = require_tool("promtool")
    document = spec(objective).model_dump(mode="json", by_alias=True, exclude_none=True)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "checkout.yaml").write_text(yaml.safe_dump(document))
    for path, text in render(load_specs(specs), PRODUCTION, "test").items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    tests = tmp_path / "prometheus" / "tests"
    names = [case["name"] for case in yaml.safe_load((tests / "checkout_timeslices_test.yml").read_text())["tests"]]
    ran = subprocess.run([promtool, "test", "rules", "checkout_timeslices_test.yml"], cwd=tests, capture_output=True,
                         text=True)  # fmt: skip
    return names, ran


def seconds(moment: str) -> int:
    return int(datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp())


def test_a_slice_is_good_when_its_good_fraction_reaches_the_slice_target() -> None:
    found = records({"slice": "1m", "slice_target": 0.95, "period": "28d", **EVENTS})
    assert found[naming.TIMESLICE_GOOD_RECORD].endswith(">= bool 0.95")
    assert "[1m]" in found[naming.TIMESLICE_GOOD_RECORD]


def test_ratio_timeslices_keep_each_slices_good_fraction() -> None:
    found = records({"slice": "1m", "period": "28d", **EVENTS})
    assert "bool" not in found[naming.TIMESLICE_GOOD_RECORD]


def test_alert_windows_step_through_the_slices_and_the_period_averages_the_5m_ratios() -> None:
    found = records({"slice": "1m", "slice_target": 0.95, "period": "28d", **EVENTS})
    assert found[naming.sli_error_record("1h")] == (
        f'1 - avg_over_time({naming.TIMESLICE_GOOD_RECORD}{{slo="checkout_minutes"}}[1h:1m])'
    )
    assert found[naming.sli_error_record("28d")] == (
        f'avg_over_time({naming.sli_error_record("5m")}{{slo="checkout_minutes"}}[28d])'
    )
    assert naming.sli_error_record("28d") in found[naming.BUDGET_REMAINING_RECORD]


def test_a_threshold_without_slices_reads_every_evaluations_verdict() -> None:
    found = records({"threshold": {"query": "probe_duration_seconds", "op": "<", "threshold": 0.5}, "period": "28d"})
    assert found[naming.THRESHOLD_GOOD_RECORD] == "((probe_duration_seconds) == (probe_duration_seconds)) < bool 0.5"
    assert found[naming.sli_error_record("5m")] == (
        f'1 - avg_over_time({naming.THRESHOLD_GOOD_RECORD}{{slo="checkout_minutes"}}[5m])'
    )
    assert naming.TIMESLICE_GOOD_RECORD not in found


def test_a_monthly_calendar_needs_a_retention_of_31_days(tmp_path: Path) -> None:
    calendar = {"duration": "1M", "start": "2024-01-01 00:00:00"}
    objective = {"slice": "1m", "slice_target": 0.95, "calendar": calendar, **EVENTS}
    location = SloLocation.native("slos[checkout_minutes]")
    loaded = LoadedSpec(tmp_path / "checkout.yaml", spec(objective), "native", (location,))
    (problem,) = retention_problems(SpecSet((loaded,)), PRODUCTION, "30d")
    assert "the period 31d is longer than the retention 30d" in problem.reason
    assert retention_problems(SpecSet((loaded,)), PRODUCTION, "31d") == []


def test_a_calendar_slo_spends_its_budget_since_the_period_start() -> None:
    calendar = {"duration": "1w", "start": "2024-01-01 06:30:00", "time_zone": "Europe/Berlin"}
    found = records({"slice": "1m", "slice_target": 0.95, "calendar": calendar, **EVENTS})
    assert naming.CALENDAR_START_RECORD in found
    assert found[naming.BUDGET_REMAINING_RECORD].startswith(f"1 - {naming.CALENDAR_ERROR_RECORD}")
    assert naming.sli_error_record("7d") not in found


@pytest.mark.parametrize(
    ("now", "began"),
    [
        ("2024-07-01T16:59:59", "2024-06-01T17:00:00"),  # noon in New York standard time, in summer too
        ("2024-07-01T17:00:00", "2024-07-01T17:00:00"),
        ("2024-03-01T16:59:59", "2024-02-01T17:00:00"),
        ("2024-03-20T00:00:00", "2024-03-01T17:00:00"),
        ("2025-01-15T00:00:00", "2025-01-01T17:00:00"),
    ],
)
def test_the_predicted_month_start_is_noon_new_york_standard_time_on_the_first(now: str, began: str) -> None:
    assert predicted_start(NEW_YORK_MONTH, seconds(now)) == seconds(began)


def test_the_predicted_week_start_is_monday_06_30_berlin_standard_time() -> None:
    assert predicted_start(BERLIN_WEEK, seconds("2024-08-14T12:00:00")) == seconds("2024-08-12T05:30:00")
    assert predicted_start(BERLIN_WEEK, seconds("2024-08-12T05:29:59")) == seconds("2024-08-05T05:30:00")


@pytest.mark.promtool
def test_the_promql_period_start_is_the_predicted_one_at_every_probe(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    moments = ["2024-01-01T16:59:59", "2024-02-29T23:00:00", "2024-03-01T17:00:00", "2024-07-01T16:59:59",
               "2024-11-03T07:00:00", "2024-12-31T23:59:59"]  # fmt: skip
    tests = []
    for calendar in (NEW_YORK_MONTH, BERLIN_WEEK):
        for moment in moments:
            at = seconds(moment)
            tests.append(
                {
                    "expr": period_start(calendar),
                    "eval_time": clock(at),
                    "exp_samples": [{"labels": "{}", "value": predicted_start(calendar, at)}],
                }
            )
    (tmp_path / "rules.yml").write_text("groups: []\n")
    test_file = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1000h",
        "tests": [{"interval": "1000h", "input_series": [], "promql_expr_test": tests}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_file))
    ran = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]


@pytest.mark.promtool
@pytest.mark.parametrize("op", ["<", ">="])
def test_the_generated_cases_of_a_gauge_threshold_pass_promtool(tmp_path: Path, op: str) -> None:
    gauge = {"query": 'kafka_request_time_ms{request="Produce", quantile="0.99"}', "op": op, "threshold": 100}
    names, ran = timeslice_cases(tmp_path, {"threshold": gauge, "slice": "1m", "slice_target": 0.9, "period": "7d"})
    assert any("an evaluation is good just on the good side of 100" in name for name in names)
    assert any("a slice of verdicts exactly at 0.9 good is good" in name for name in names)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]


@pytest.mark.promtool
def test_a_slice_target_of_100_percent_is_straddled_by_one_bad_event(tmp_path: Path) -> None:
    objective = {"slice": "1m", "slice_target": 1, "period": "7d", "bad": {"query": 'http_total{code="5xx"}'},
                 "total": {"query": "http_total"}}  # fmt: skip
    names, ran = timeslice_cases(tmp_path, objective)
    assert any("a slice is good just over its target" in name for name in names)
    assert any("without counted events it falls back to 1" in name for name in names)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]


def test_every_enabled_tier_gets_a_burn_case_the_slower_ones_in_the_tiers_file() -> None:
    """Each case checks the `ALERTS` of its own tier: the faster tiers' cases do not stand for the slower ones."""
    files = render(load_specs(Path(__file__).parents[1] / "promtool" / "specs"), PRODUCTION, "test")
    found = {}
    for suffix in ("timeslices", "timeslice_tiers"):
        for case in yaml.safe_load(files[f"prometheus/tests/checkout_{suffix}_test.yml"])["tests"]:
            tiers = {
                m for c in case.get("promql_expr_test", []) for m in re.findall(r'burnrate_tier="(\w+)"', c["expr"])
            }
            if tiers:
                found[(case["name"].split(":")[0], *tiers)] = suffix
    slos = ("checkout_good_slices", "checkout_fast_share")
    expected = {(slo, "page_fast"): "timeslices" for slo in slos}
    expected |= {(slo, tier): "timeslice_tiers" for slo in slos for tier in ("page_slow", "ticket_fast", "ticket_slow")}
    assert found == expected


def test_the_window_case_reads_a_halved_or_doubled_raw_window_outside_its_band() -> None:
    """Bands of age between the windows' halves and doubles: each window up to a third of the case reads a share of
    bad evaluations that its half and its double do not, under Prometheus 2 and 3; after the calm start, none."""
    gauge = {"query": 'kafka_request_time_ms{request="Produce", quantile="0.99"}', "op": "<", "threshold": 100}
    document = spec({"threshold": gauge, "period": "7d"})
    (slo,) = document.slos
    ctx = Context(document, PRODUCTION)
    case = timeslice_tests.window_case(ctx, slo)
    timeline = timeslice_tests.Timeline(case.series[0].values, 60.0, None)  # type: ignore[arg-type]
    now = duration_seconds(timeslice_tests.WINDOW_CASE)
    for window in (300.0, 1800.0, 3600.0, 7200.0):
        read = [timeline.error_ratio(now, window, v) or 0.0 for v in VARIANTS]
        low, high = min(read) - timeslice_tests.BAND, max(read) + timeslice_tests.BAND
        for other in (window / 2, window * 2):
            moved = [timeline.error_ratio(now, other, v) or 0.0 for v in VARIANTS]
            assert all(not low < r < high for r in moved), (window, other, read, moved)
        calm = [timeline.error_ratio(3600.0, window, v) for v in VARIANTS]
        assert calm == [0.0] * len(VARIANTS)


@pytest.mark.promtool
def test_a_histogram_quantile_threshold_gets_buckets_just_under_it_then_on_it_and_missing_for_its_absent_alert(
    tmp_path: Path,
) -> None:
    query = "histogram_quantile(0.99, sum by (le) (rate(search_latency_ms_bucket[{{.window}}])))"
    names, ran = timeslice_cases(tmp_path, {"threshold": {"query": query, "op": "<", "threshold": 500}, "period": "7d"})
    assert any("the histogram quantile just under 500 is good and on it is bad" in name for name in names)
    # rate[5m] reads the last two samples (21m, 22m) until 26m: absent from the 30m evaluation, firing 10m later
    absent = "CheckoutMinutesBudgetBurnMetricsAbsent fires at 40m once the threshold query's buckets have been missing"
    assert any(name.startswith(absent) for name in names), names
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]


def test_every_slo_of_the_mutation_spec_gets_its_budget_absent_period_and_short_window_cases() -> None:
    """An Untestable in one case drops every case of its SLO: the mutation harness's spec keeps them all."""
    files = render(load_specs(Path(__file__).parents[1] / "promtool" / "specs"), PRODUCTION, "test")
    names = [
        case["name"]
        for suffix in ("timeslices", "timeslice_tiers")
        for case in yaml.safe_load(files[f"prometheus/tests/checkout_{suffix}_test.yml"])["tests"]
    ]
    for slo, alert in (("checkout_good_slices", "CheckoutGoodSlices"), ("checkout_fast_share", "CheckoutFastShare")):
        assert f"{slo}: the error budget remains 1 % under it and is overspent 1 % over it" in names
        assert f"{slo}: the rolling period's ratio reads its own 7d, not half or twice it" in names
        assert any(name.startswith(f"{alert}BudgetBurnMetricsAbsent fires at 10m") for name in names)
        short = [name for name in names if name.startswith(f"{slo}: ") and "falls silent when its" in name]
        assert len(short) == 3  # the slower pairs
