from __future__ import annotations

import pytest

from slos.templating import TemplateError, go_float, humanize, humanize_percentage, labels_used, render


@pytest.mark.parametrize(
    ("value", "text"),
    [(9.75, "9.75"), (100.0, "100"), (0.475, "0.475"), (7.499999999999998, "7.499999999999998"), (1e-05, "1e-05"),
     (123456.0, "123456"), (1234567.0, "1.234567e+06"), (-2.5, "-2.5"), (float("nan"), "NaN"), (float("inf"), "+Inf")],
)  # fmt: skip
def test_values_print_as_gos_fmt_prints_a_float64(value: float, text: str) -> None:
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(1000.0, "1k"), (14.4, "14.4"), (2.0000000000000004, "2"), (0.5, "500m"), (1.5e6, "1.5M")]
)
def test_humanize_keeps_four_digits_and_an_si_prefix(value: float, text: str) -> None:
    assert humanize(value) == text


def test_humanize_percentage_multiplies_by_100() -> None:
    assert [humanize_percentage(v) for v in (0.93, 0.5, 0.95)] == ["93%", "50%", "95%"]


def test_an_annotation_renders_its_value_and_labels() -> None:
    text = "{{ $labels.component }}: {{ $value }} ({{$value | humanizePercentage}})"
    assert render(text, 0.25, {"component": "duckdb"}) == "duckdb: 0.25 (25%)"
    assert labels_used(text) == ("component",)


@pytest.mark.parametrize("text", ["{{ .Value }}", '{{ printf "%.1f" $value }}', "{{ $value ", "x }}"])
def test_template_syntax_outside_the_supported_part_is_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        labels_used(text)
