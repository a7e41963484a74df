"""The generator's model of Prometheus (rate, histogram_quantile, promtool's series notation) on known values."""

from __future__ import annotations

import math
import re

import promql_parser
import pytest

from generators.promql import re2_literal
from generators.synthetic import (
    VARIANTS,
    Series,
    counter,
    encode,
    firing_times,
    histogram_quantile,
    rate,
    sample_value,
)


def test_series_are_encoded_in_promtools_expanding_notation() -> None:
    assert encode(counter([30.0] * 3 + [0.0] * 2)) == "0+30x3 90+0x1"
    assert encode((None, None, 1.0, 2.0)) == "_x2 1+1x1"
    assert encode((0.95,) * 4) == "0.95+0x3"


@pytest.mark.parametrize("variant", VARIANTS)
def test_rate_over_a_full_window_is_the_slope(variant: int) -> None:
    values = counter([30.0] * 20)  # 30 per 30s tick: 1/s
    # the left-open variants (2, 3) read one sample less and extrapolate to the 1 ms shorter range: float noise
    assert rate(values, 30, 20, 300, variant) == pytest.approx(1.0, rel=1e-12)
    assert rate(values, 30, 0, 300, variant) is None  # one sample is no rate


@pytest.mark.parametrize("variant", VARIANTS)
def test_rate_of_a_counter_starting_inside_the_window_does_not_extrapolate_below_zero(variant: int) -> None:
    window = 300 - (0.001 if variant & 2 else 0)
    assert rate(counter([30.0] * 2), 30, 2, 300, variant) == pytest.approx(60 / window)


def test_a_left_open_range_drops_the_sample_on_its_left_edge() -> None:
    values = counter([30.0] * 20)
    # [t - 5m, t] holds 11 samples (300 s sampled), (t - 5m, t] 10 (270 s sampled, extrapolated by one interval)
    assert rate(values, 30, 20, 300, 0) == 1.0
    assert rate(values, 30, 10, 300, 2) == pytest.approx(1.0, rel=1e-12)
    assert rate(counter([30.0] * 20), 30, 1, 30, 0) == 1.0  # two samples in [0s, 30s]
    assert rate(counter([30.0] * 20), 30, 1, 30, 2) is None  # one in (0s, 30s]


def test_histogram_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # Every observation in (5, 10]: p95 = 5 + 5 x 0.95 (the toolchain note measured 9.75 with promtool).
    assert histogram_quantile(0.95, [(5.0, 0.0), (10.0, 1.0), (math.inf, 1.0)]) == 9.75
    assert histogram_quantile(0.95, [(5.0, 1.0), (math.inf, 1.0)]) == 4.75
    assert math.isnan(histogram_quantile(0.95, [(5.0, 0.0), (math.inf, 0.0)]))


def test_an_alert_fires_once_its_expression_held_for_the_whole_for() -> None:
    assert firing_times([False, True, True, True, False], hold=60, step=30) == [False, False, False, True, False]


@pytest.mark.parametrize(("pattern", "value"), [("5..", "500"), ("2xx|3xx", "2xx"), ("GET", "GET")])
def test_a_label_value_is_synthesized_for_simple_regexes(pattern: str, value: str) -> None:
    assert sample_value(pattern) == value


@pytest.mark.parametrize("value", ['o"k', "back\\slash", '\\"', "line\nbreak", "5..|{x}"])
def test_a_synthetic_series_quotes_its_label_values_as_promql_reads_them(value: str) -> None:
    selector = Series({"__name__": "requests_total", "code": value}, (0.0,)).selector()
    parsed = promql_parser.parse(selector)
    assert [(m.name, m.value) for m in parsed.matchers.matchers] == [("code", value)]


@pytest.mark.parametrize("value", ["checkout (v2)", "search+", "a.b|c", "back\\slash", "[x]{1}^$*?"])
def test_a_label_value_escaped_for_re2_matches_itself_and_nothing_else(value: str) -> None:
    pattern = re2_literal(value)
    assert re.fullmatch(pattern, value)
    assert not re.fullmatch(pattern, value + value[-1])  # `search+` would match `searchh`
    assert not re.fullmatch(pattern, "x" * len(value))
