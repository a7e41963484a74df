"""OpenSLO objectives as native objectives (slos/openslo_objectives.py): empty alert policies, threshold metrics,
time slices, several objectives, calendar windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slos.loader import SpecError
from slos.models import TIER_NAMES, RatioObjective, TimeslicesObjective
from slos.openslo import parse_documents


def slo_document(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "service": "checkout",
        "indicator": {
            "metadata": {"name": "checkout-errors"},
            "spec": {
                "ratioMetric": {
                    "counter": True,
                    "good": {"metricSource": {"type": "Prometheus", "spec": {"query": 'http_total{code="2xx"}'}}},
                    "total": {"metricSource": {"type": "Prometheus", "spec": {"query": "http_total"}}},
                }
            },
        },
        "timeWindow": [{"duration": "28d", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"target": 0.99}],
    }
    base.update(spec)
    return {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "checkout-availability"}, "spec": base}


def threshold(document: dict[str, Any], query: str = "probe_duration_seconds") -> dict[str, Any]:
    source = {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}
    document["spec"]["indicator"]["spec"] = {"thresholdMetric": source}
    return document


@pytest.mark.parametrize("policies", [[], None], ids=["an empty list", "null"])
def test_alert_policies_given_as_an_empty_list_or_null_are_none_and_the_default_tiers_alert(policies: Any) -> None:
    (slo,) = parse_documents([slo_document(alertPolicies=policies)], Path("x.yaml")).slos
    assert slo.alert_policies == ()
    assert slo.burn_rate is not None and slo.burn_rate.tiers.enabled == TIER_NAMES


def test_a_threshold_metric_with_occurrences_counts_each_evaluation_as_an_event() -> None:
    document = threshold(slo_document(objectives=[{"target": 0.99, "op": "lte", "value": 0.25}]))
    (slo,) = parse_documents([document], Path("x.yaml")).slos
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective) and objective.threshold is not None
    assert (objective.slice, objective.slice_target) == (None, None)
    assert (objective.threshold.query, objective.threshold.op, objective.threshold.threshold) == (
        "probe_duration_seconds",
        "<=",
        0.25,
    )


def test_a_threshold_metric_with_timeslices_decides_each_slice_by_its_good_evaluations() -> None:
    objective_spec = {"target": 0.99, "op": "lt", "value": 5, "timeSliceTarget": 0.95, "timeSliceWindow": "1m"}
    document = threshold(slo_document(budgetingMethod="Timeslices", objectives=[objective_spec]))
    (slo,) = parse_documents([document], Path("x.yaml")).slos
    assert isinstance(slo.objective, TimeslicesObjective)
    assert (slo.objective.slice, slo.objective.slice_target) == ("1m", 0.95)


def test_a_ratio_metric_with_occurrences_stays_a_ratio_objective() -> None:
    (slo,) = parse_documents([slo_document()], Path("x.yaml")).slos
    assert isinstance(slo.objective, RatioObjective)


def test_several_objectives_become_one_slo_each_named_by_its_display_name() -> None:
    objectives = [{"displayName": "Internal goal", "target": 0.995}, {"displayName": "SLA", "target": 0.99}]
    first, second = parse_documents([slo_document(objectives=objectives)], Path("x.yaml")).slos
    assert (first.name, second.name) == ("checkout_availability_internal_goal", "checkout_availability_sla")
    assert first.burn_rate is not None and second.burn_rate is not None
    assert first.burn_rate.name == "CheckoutAvailabilityInternalGoalBudgetBurn"
    assert second.burn_rate.absent_alert == "CheckoutAvailabilitySlaBudgetBurnMetricsAbsent"
    assert [slo.objective.target for slo in (first, second)] == [0.995, 0.99]  # type: ignore[union-attr]


def test_objectives_whose_display_names_repeat_are_named_by_position() -> None:
    objectives = [{"displayName": "Goal", "target": 0.995}, {"displayName": "goal", "target": 0.99}, {"target": 0.9}]
    names = [slo.name for slo in parse_documents([slo_document(objectives=objectives)], Path("x.yaml")).slos]
    assert names == [f"checkout_availability_objective_{index}" for index in range(3)]


def test_a_problem_in_the_second_objective_names_that_objective() -> None:
    objectives = [{"target": 0.99}, {"target": 0.99, "timeSliceWindow": "1m"}]
    with pytest.raises(SpecError) as caught:
        parse_documents([slo_document(objectives=objectives)], Path("x.yaml"))
    assert [p.field for p in caught.value.problems] == ["documents[0].spec.objectives[1].timeSliceWindow"]


def test_a_calendar_window_with_timeslices_becomes_the_objectives_calendar() -> None:
    window = {"duration": "1w", "isRolling": False, "calendar": {"startTime": "2024-01-01 00:00:00"}}
    objective = {"target": 0.99, "timeSliceTarget": 0.9, "timeSliceWindow": "1m"}
    document = slo_document(timeWindow=[window], budgetingMethod="Timeslices", objectives=[objective])
    (slo,) = parse_documents([document], Path("x.yaml")).slos
    assert isinstance(slo.objective, TimeslicesObjective) and slo.objective.calendar is not None
    assert (slo.objective.calendar.time_zone, slo.objective.period) == ("UTC", "7d")
