from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import slos.models
from slos import SpecError, load_file, load_specs
from slos.models import SLO, Op, SpecFile, duration_seconds


def docstring_example() -> str:
    doc = slos.models.__doc__ or ""
    match = re.search(r"```yaml\n(.*?)```", doc, re.S)
    assert match is not None
    return match.group(1)


def test_the_docstring_example_parses() -> None:
    spec = SpecFile.model_validate(yaml.safe_load(docstring_example()))
    assert spec.muting(spec.slos[2]) == ("weekly-db-maintenance",)
    assert [slo.name for slo in spec.slos] == [
        "manifest_insert_p95_ms",
        "hit_ratio_percent",
        "http_availability_percent",
    ]


def test_the_shipped_spec_states_every_threshold_of_the_guide() -> None:
    by_name = {slo.name: slo for slo in load_specs().slos}
    assert {name: (slo.status_op, slo.status_threshold) for name, slo in by_name.items()} == {
        "manifest_insert_p95_ms": (Op.LT, 5.0),
        "manifest_insert_p99_ms": (Op.LT, 25.0),
        "advisory_lock_wait_p95_ms": (Op.LT, 10.0),
        "manifest_read_p95_ms": (Op.LT, 2.0),
        "hit_ratio_percent": (Op.GE, 95.0),
        "pool_utilization_percent": (Op.LT, 80.0),
        "health_status": (Op.EQ, 1.0),
        "http_availability_percent": (Op.GE, 99.9),
        "manifest_insert_under_5ms_percent": (Op.GE, 95.0),
        "busiest_pool_utilization_percent": (Op.LT, 100.0),
    }


@pytest.mark.parametrize(
    ("op", "value", "threshold", "holds"),
    [(Op.LT, 4.9, 5, True), (Op.LT, 5, 5, False), (Op.GE, 95, 95, True), (Op.EQ, 0, 1, False), (Op.GT, 2, 1, True)],
)
def test_an_op_holds_exactly_when_its_comparison_does(op: Op, value: float, threshold: float, holds: bool) -> None:
    assert op.holds(value, threshold) is holds


def test_durations_convert_to_seconds() -> None:
    assert [duration_seconds(text) for text in ("30s", "5m", "1h", "30d")] == [30, 300, 3600, 2592000]


def test_a_budgeted_slo_refuses_threshold_alerts() -> None:
    with pytest.raises(ValueError, match="alerted by `burn_rate`"):
        SLO.model_validate(
            {
                "name": "availability",
                "description": "x",
                "objective": {"kind": "ratio", "target": 0.99, "bad": {"query": "a"}, "total": {"query": "b"}},
                "alerts": [{"name": "A", "for": "1m", "severity": "info", "summary": "s", "description": "d"}],
            }
        )


def test_an_unknown_field_names_the_file_and_the_field(tmp_path: Path) -> None:
    text = docstring_example().replace("quantile: 0.95,", "quantile: 0.95, treshold_typo: 1,")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_file(path)
    assert f"{path}: slos[manifest_insert_p95_ms].objective.treshold_typo: Extra inputs are not permitted" in str(
        caught.value
    )


def test_a_spec_error_names_the_slo_by_its_name_or_by_its_index_when_it_has_none(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(docstring_example().replace("threshold: 5,", "threshold: five,"))
    with pytest.raises(SpecError) as caught:
        load_file(path)
    assert f"{path}: slos[manifest_insert_p95_ms].objective.threshold: Input should be a valid number" in str(
        caught.value
    )
    path.write_text(docstring_example().replace("name: manifest_insert_p95_ms", "name: ''"))
    with pytest.raises(SpecError) as caught:
        load_file(path)
    assert f"{path}: slos[0].name: " in str(caught.value)
