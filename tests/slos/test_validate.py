from __future__ import annotations

from pathlib import Path

import pytest

from slos import load_specs
from slos.loader import SpecError, SpecSet, load_file
from slos.models import TIER_NAMES
from slos.validate import Timing, output_labels, validate
from slos.windows import SRE_WORKBOOK_WINDOWS, burn_factor, enabled_pairs, sli_windows, window_pairs


def test_the_shipped_specs_validate_in_both_profiles() -> None:
    specs = load_specs()
    validate(specs)
    validate(specs, Timing(scrape_seconds=1, window_divisor=15))


def test_a_profile_whose_windows_are_too_short_for_its_scrape_interval_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        validate(load_specs(), Timing(scrape_seconds=30, window_divisor=15))
    fields = {problem.field for problem in caught.value.problems}
    assert "slos[manifest_insert_p95_ms].objective.window" in fields  # 5m / 15 = 20s < 4 scrapes of 30s
    assert "slos[http_availability_percent].objective.period" in fields  # the 5m burn-rate window shrinks alike


def test_burn_rate_factors_follow_the_workbook_for_30_days_and_scale_for_28() -> None:
    assert [(p.tier, p.long, p.short, p.factor) for p in window_pairs("30d")] == [
        ("page", "1h", "5m", 14.4),
        ("page", "6h", "30m", 6.0),
        ("ticket", "1d", "2h", 3.0),
        ("ticket", "3d", "6h", 1.0),
    ]
    assert [p.factor for p in window_pairs("28d")] == [13.44, 5.6, 2.8, 0.9333]
    assert burn_factor(SRE_WORKBOOK_WINDOWS[0], "7d") == 3.36


def test_each_tier_has_one_window_pair_fastest_first() -> None:
    assert tuple(p.name for p in window_pairs("30d")) == TIER_NAMES
    assert [p.factor for p in window_pairs("30d")] == sorted((p.factor for p in window_pairs("30d")), reverse=True)


LOW_TARGET = """
version: featurestore/v1
service: checkout
runbook_base_url: https://example.com/runbooks
slos:
  - name: availability
    description: 90 % of requests succeed
    objective: {kind: ratio, target: 0.9, bad: {metric: x_total, matchers: {code: "500"}}, total: {metric: x_total}}
    burn_rate: {name: CheckoutBudgetBurn, summary: burning, tiers: {page_fast: {enabled: ENABLED}}}
"""


def test_disabling_the_tier_that_can_never_fire_makes_a_low_objective_valid(tmp_path: Path) -> None:
    """pyrra#1507: a 90 % objective cannot meet the 14.4x page (an error ratio of 1.44); without that tier it can."""
    path = tmp_path / "spec.yaml"
    path.write_text(LOW_TARGET.replace("ENABLED", "true"))
    with pytest.raises(SpecError) as caught:
        validate(SpecSet((load_file(path),)))
    assert [p.field for p in caught.value.problems] == ["slos[availability].objective.target"]
    assert "disable the page_fast tier" in caught.value.problems[0].reason
    path.write_text(LOW_TARGET.replace("ENABLED", "false"))
    loaded = load_file(path)
    validate(SpecSet((loaded,)))
    assert [p.name for p in enabled_pairs(loaded.spec.slos[0])] == ["page_slow", "ticket_fast", "ticket_slow"]


def test_the_period_is_recorded_after_the_alert_windows_once() -> None:
    assert sli_windows("30d") == ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    assert sli_windows("3d") == ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def test_annotation_labels_are_those_the_expression_keeps() -> None:
    by_name = {slo.name: slo for slo in load_specs().slos}
    assert output_labels(by_name["manifest_insert_p95_ms"], catalog=True) == {"namespace", "job"}
    assert output_labels(by_name["health_status"], catalog=True) == {"namespace", "job", "instance", "component"}
    assert output_labels(by_name["hit_ratio_percent"], catalog=True) == {"__name__", "job", "instance"}
    assert output_labels(by_name["http_availability_percent"], catalog=True) == {"slo", "namespace", "job"}
