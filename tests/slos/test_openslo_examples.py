"""The four SLOs of the OpenSLO repository's examples/ (in ../shared/reference/openslo-examples, read as the
reference README allows: their `type: Any` sources replaced here by Prometheus queries) compile into rules that
promtool accepts, and the generated promtool cases of their time-slice SLOs pass. What cannot be honoured is refused
with its field: the calendar example's window of `1m` (one minute, where its comment means a month)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generators.profile import PRODUCTION
from generators.render import render
from slos.loader import SpecError, load_specs
from slos.models import TimeslicesObjective
from slos.openslo import parse_documents
from tests.conftest import REPO, require_tool, unavailable

# `../shared/reference` beside the checkout, or beside a folder of worktrees above it
EXAMPLES = next(
    (found for parent in REPO.parents if (found := parent / "shared" / "reference" / "openslo-examples").is_dir()),
    REPO.parent / "shared" / "reference" / "openslo-examples",
)
QUERIES = {
    "thresholdMetric": "histogram_quantile(0.99, sum by (le) (rate(search_latency_ms_bucket[{{.window}}])))",
    "good": 'http_requests_total{code=~"2.."}',
    "total": "http_requests_total",
}
OCCURRENCES = "budgeting-method_occurences-slo"
RATIO_TIMESLICES = "budgeting-method_ratio-timeslices"
CALENDAR_MONTH = "budgeting-method_timeslices-slo"
CALENDAR_WEEK = "treat-low-traffic-as-equally-important_timeslices-slo"


def reference(name: str) -> Path:
    path = EXAMPLES / f"{name}.yaml"
    if not path.is_file():
        unavailable(f"OpenSLO's examples are not at {EXAMPLES} (see /work/shared/reference/README.md)")
    return path


def with_prometheus(document: dict[str, Any]) -> dict[str, Any]:
    """The example with each `type: Any` metric source replaced by a Prometheus query."""
    sli = document["spec"]["indicator"]["spec"]
    if "thresholdMetric" in sli:
        sli["thresholdMetric"]["metricSource"] = {"type": "Prometheus", "spec": {"query": QUERIES["thresholdMetric"]}}
        return document
    sli["ratioMetric"]["counter"] = True
    for role in ("good", "bad", "total"):
        if role in sli["ratioMetric"]:
            sli["ratioMetric"][role]["metricSource"] = {"type": "Prometheus", "spec": {"query": QUERIES[role]}}
    return document


def documents(name: str, month: bool = False) -> list[Any]:
    """The example's documents on Prometheus; `month`: its `1m` calendar window read as the month its comment means."""
    found = [with_prometheus(doc) for doc in yaml.safe_load_all(reference(name).read_text()) if doc]
    if month:
        for doc in found:
            doc["spec"]["timeWindow"][0]["duration"] = "1M"
    return found


def test_the_threshold_example_becomes_one_event_per_evaluation_under_500() -> None:
    (slo,) = parse_documents(documents(OCCURRENCES), Path("x.yaml")).slos
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective) and objective.threshold is not None
    assert (objective.slice, objective.threshold.op, objective.threshold.threshold) == (None, "<", 500)
    assert (objective.target, objective.period, slo.alert_policies) == (0.99, "2w", ())


def test_the_ratio_timeslices_example_averages_one_minute_slices() -> None:
    (slo,) = parse_documents(documents(RATIO_TIMESLICES), Path("x.yaml")).slos
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    assert (objective.slice, objective.slice_target, objective.good is not None) == ("1m", None, True)


def test_the_calendar_example_of_one_minute_is_refused_naming_its_duration() -> None:
    with pytest.raises(SpecError) as caught:
        parse_documents(documents(CALENDAR_MONTH), Path("x.yaml"))
    assert [(p.field, p.reason) for p in caught.value.problems] == [
        ("documents[0].spec.timeWindow[0].duration", "a calendar window is 1w or 1M, not '1m' (`1m` is one minute; "
         "a month is `1M`)"),
    ]  # fmt: skip


def test_the_calendar_example_read_as_a_month_has_one_slo_per_objective() -> None:
    internal, sla = parse_documents(documents(CALENDAR_MONTH, month=True), Path("x.yaml")).slos
    assert (internal.name, sla.name) == ("service_availability_internal_objective", "service_availability_sla")
    assert internal.burn_rate is not None and sla.burn_rate is not None
    assert (internal.burn_rate.name, sla.burn_rate.name) == (
        "ServiceAvailabilityInternalObjectiveBudgetBurn",
        "ServiceAvailabilitySlaBudgetBurn",
    )
    assert isinstance(internal.objective, TimeslicesObjective) and isinstance(sla.objective, TimeslicesObjective)
    assert (internal.objective.target, sla.objective.target) == (0.995, 0.99)
    calendar = internal.objective.calendar
    assert calendar is not None and (calendar.duration, calendar.start, calendar.time_zone) == (
        "1M",
        "2022-01-01 12:00:00",
        "America/New_York",
    )
    assert internal.objective.period == "30d"


def test_the_weekly_calendar_example_keeps_its_slice_target_and_week() -> None:
    (slo,) = parse_documents(documents(CALENDAR_WEEK), Path("x.yaml")).slos
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective) and objective.calendar is not None
    assert (objective.target, objective.slice_target, objective.calendar.duration, objective.period) == (
        0.9995,
        0.95,
        "1w",
        "7d",
    )


@pytest.mark.promtool
def test_the_examples_rules_pass_promtool_check_and_their_generated_cases_pass(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in (OCCURRENCES, RATIO_TIMESLICES, CALENDAR_MONTH, CALENDAR_WEEK):
        (specs / f"{name}.yaml").write_text(yaml.safe_dump_all(documents(name, month=name == CALENDAR_MONTH)))
    out = tmp_path / "out"
    # the monthly calendar reads 31 days back, past the 30d retention rendered for by default
    for path, text in render(load_specs(specs), PRODUCTION, "test", retention="31d").items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
    rules = sorted((out / "prometheus" / "rules").glob("*.yml"))
    assert len(rules) == 4
    checked = subprocess.run([promtool, "check", "rules", *map(str, rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(path.name for path in (out / "prometheus" / "tests").glob("*.yml"))
    assert sum(name.endswith("_timeslices_test.yml") for name in tests) == 4
    assert sum(name.endswith("_timeslice_tiers_test.yml") for name in tests) == 4  # the slower tiers' burn cases
    ran = subprocess.run(
        [promtool, "test", "rules", *tests], cwd=out / "prometheus" / "tests", capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
