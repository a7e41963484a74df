from __future__ import annotations

import pytest

from slos import load_specs
from slos.loader import SpecError
from slos.validate import Timing, output_labels, validate
from slos.windows import SRE_WORKBOOK_WINDOWS, burn_factor, sli_windows, window_pairs


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


def test_the_period_is_recorded_after_the_alert_windows_once() -> None:
    assert sli_windows("30d") == ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    assert sli_windows("3d") == ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def test_annotation_labels_are_those_the_expression_keeps() -> None:
    by_name = {slo.name: slo for slo in load_specs().slos}
    assert output_labels(by_name["manifest_insert_p95_ms"], catalog=True) == {"namespace", "job"}
    assert output_labels(by_name["health_status"], catalog=True) == {"namespace", "job", "instance", "component"}
    assert output_labels(by_name["hit_ratio_percent"], catalog=True) == {"__name__", "job", "instance"}
    assert output_labels(by_name["http_availability_percent"], catalog=True) == {"slo", "namespace", "job"}
