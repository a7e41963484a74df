"""The generated promtool test file of one spec: every alert's cases, and the alerts that could not be synthesized."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generators import timeslice_tests
from generators.burn_tests import (
    LONG_EVALUATION,
    LONG_SCRAPE,
    Untestable,
    absent_case,
    burn_cases,
    together_case,
)
from generators.cases import Case, Check, Context, ExprCheck, clock
from generators.floor_tests import FLOOR_EVALUATION, floor_cases
from generators.period_tests import PERIOD_EVALUATION, PERIOD_SCRAPE, period_cases
from generators.probes import probe_cases
from generators.profile import Profile
from generators.promql import string
from generators.rules import Group, dashboard_group
from generators.sanity_tests import sanity_cases
from generators.timeslice_tests import absent_case as timeslice_absent_case
from generators.timeslice_tests import timeslice_cases
from generators.unittests import threshold_cases
from slos.models import SpecFile, TimeslicesObjective


@dataclass(frozen=True)
class Plan:
    cases: tuple[Case, ...]
    untested: tuple[tuple[str, str], ...]  # (alert name, reason)


def plan(spec: SpecFile, profile: Profile, groups: tuple[Group, ...]) -> Plan:
    ctx = Context(spec, profile)
    rules = {alert.alert + repr(sorted(alert.labels.items())): alert for group in groups for alert in group.alerts}
    by_name = {alert.alert: alert for alert in rules.values()}
    cases: list[Case] = []
    untested: list[tuple[str, str]] = []
    for slo in spec.slos:
        if slo.burn_rate is None:
            cases.extend(threshold_cases(ctx, slo, by_name))
            continue
        if isinstance(slo.objective, TimeslicesObjective):
            try:
                cases.extend(timeslice_cases(ctx, slo, rules))
            except Untestable as exc:
                untested.append((slo.burn_rate.name, str(exc)))
            absent = timeslice_absent_case(ctx, slo, by_name[slo.burn_rate.absent_alert])
            if absent is None:
                reason = "no `for:`, and the threshold query's inputs are not synthesized"
                untested.append((slo.burn_rate.absent_alert, reason))
            else:
                cases.append(absent)
            continue
        try:
            cases.extend(burn_cases(ctx, slo, rules))
            cases.extend(floor_cases(ctx, slo, rules))
            cases.extend(period_cases(ctx, slo, rules))
            cases.append(absent_case(ctx, slo, by_name[slo.burn_rate.absent_alert]))
        except Untestable as exc:
            untested += [(slo.burn_rate.name, str(exc)), (slo.burn_rate.absent_alert, str(exc))]
        if slo.sanity_alert is not None:
            try:
                cases.extend(sanity_cases(ctx, slo, by_name[slo.sanity_alert]))
            except Untestable as exc:
                untested.append((slo.sanity_alert, str(exc)))
    together = together_case(ctx, spec.slos)
    if together is not None:
        cases.append(together)
    dashboards = any(group.name == dashboard_group(spec) for group in groups)
    cases.extend(probe_cases(ctx, spec, by_name, dashboards=dashboards))
    return Plan(tuple(cases), tuple(untested))


def _labels(labels: Mapping[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ", ".join(f"{key}={string(value)}" for key, value in sorted(labels.items()) if key != "__name__")
    return f"{name}{{{rest}}}"


def _firing(check: Check) -> ExprCheck:
    """An alert check by its labels: the `ALERTS` series of the firing alerts."""
    query = "ALERTS{alertname=" + string(check.alertname) + ', alertstate="firing"}'
    samples = tuple(
        ({**alert.labels, "__name__": "ALERTS", "alertname": check.alertname, "alertstate": "firing"}, 1.0)
        for alert in check.alerts
    )
    return ExprCheck(check.seconds, query, samples)


def _case(case: Case, interval: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": case.name,
        "interval": interval,
        "input_series": [series.data() for series in case.series],
    }
    if any(not check.labels_only for check in case.checks):
        data["alert_rule_test"] = [
            {
                "eval_time": clock(check.seconds),
                "alertname": check.alertname,
                "exp_alerts": [alert.data() for alert in check.alerts],
            }
            for check in case.checks
            if not check.labels_only
        ]
    exprs = [*case.exprs, *(_firing(check) for check in case.checks if check.labels_only)]
    if exprs:
        data["promql_expr_test"] = [
            {
                "expr": check.expr,
                "eval_time": clock(check.seconds),
                "exp_samples": [{"labels": _labels(labels), "value": value} for labels, value in check.samples],
            }
            for check in exprs
        ]
    return data


@dataclass(frozen=True)
class TestFileKind:
    """One generated test file: its suffix, evaluation interval and series interval (production windows)."""

    suffix: str
    evaluation: str | None  # None: the profile's own
    scrape: str | None


# fine: every 30s, minutes of series; windows: hours to days, evaluated every 15m; period: 1.5 periods of series
# every 150s, evaluated every 6h;
# floors: up to days of series, evaluated hourly (generators.floor_tests).
FILES: dict[str, TestFileKind] = {
    "fine": TestFileKind("_test.yml", None, None),
    "windows": TestFileKind("_windows_test.yml", LONG_EVALUATION, LONG_SCRAPE),
    "period": TestFileKind("_period_test.yml", PERIOD_EVALUATION, PERIOD_SCRAPE),
    "floors": TestFileKind("_floors_test.yml", FLOOR_EVALUATION, LONG_SCRAPE),
    timeslice_tests.FILE: TestFileKind("_timeslices_test.yml", timeslice_tests.EVALUATION, timeslice_tests.SCRAPE),
    timeslice_tests.TIERS_FILE: TestFileKind(
        "_timeslice_tiers_test.yml", timeslice_tests.TIERS_EVALUATION, timeslice_tests.TIERS_SCRAPE
    ),
}


def test_files(plan: Plan, rule_file: str, profile: Profile) -> dict[str, dict[str, Any]]:
    """promtool's test files by suffix (`_test.yml` always, the others when they have cases); `rule_file` is
    relative to the test file."""
    files = {}
    for name, kind in FILES.items():
        cases = [case for case in plan.cases if case.file == name]
        if not cases and name != "fine":
            continue
        evaluation = profile.window(kind.evaluation) if kind.evaluation else profile.evaluation_interval
        scrape = profile.window(kind.scrape) if kind.scrape else profile.scrape_interval
        files[kind.suffix] = {
            "rule_files": [rule_file],
            "evaluation_interval": evaluation,
            "tests": [_case(case, case.interval or scrape) for case in cases],
        }
    return files
