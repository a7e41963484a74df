"""The generated promtool test file of one spec: every alert's cases, and the alerts that could not be synthesized."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generators.burn_tests import (
    LONG_EVALUATION,
    LONG_SCRAPE,
    Untestable,
    absent_case,
    burn_cases,
    together_case,
)
from generators.probes import probe_cases
from generators.profile import Profile
from generators.promql import string
from generators.rules import Group, dashboard_group
from generators.unittests import Case, Context, clock, threshold_cases
from slos.models import SpecFile


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
        try:
            cases.extend(burn_cases(ctx, slo, rules))
            cases.append(absent_case(ctx, slo, by_name[slo.burn_rate.absent_alert]))
        except Untestable as exc:
            untested += [(slo.burn_rate.name, str(exc)), (slo.burn_rate.absent_alert, str(exc))]
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


def _case(case: Case, interval: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": case.name,
        "interval": interval,
        "input_series": [series.data() for series in case.series],
    }
    if case.checks:
        data["alert_rule_test"] = [
            {
                "eval_time": clock(check.seconds),
                "alertname": check.alertname,
                "exp_alerts": [alert.data() for alert in check.alerts],
            }
            for check in case.checks
        ]
    if case.exprs:
        data["promql_expr_test"] = [
            {
                "expr": check.expr,
                "eval_time": clock(check.seconds),
                "exp_samples": [{"labels": _labels(labels), "value": value} for labels, value in check.samples],
            }
            for check in case.exprs
        ]
    return data


def test_file(plan: Plan, rule_file: str, profile: Profile) -> dict[str, Any]:
    """promtool's test file of the fine cases; `rule_file` is relative to the test file."""
    return {
        "rule_files": [rule_file],
        "evaluation_interval": profile.evaluation_interval,
        "tests": [_case(case, profile.scrape_interval) for case in plan.cases if not case.long],
    }


def long_test_file(plan: Plan, rule_file: str, profile: Profile) -> dict[str, Any] | None:
    """promtool's test file of the long cases (hours to days of series, evaluated every 5m), or None without any."""
    cases = [case for case in plan.cases if case.long]
    if not cases:
        return None
    return {
        "rule_files": [rule_file],
        "evaluation_interval": profile.window(LONG_EVALUATION),
        "tests": [_case(case, profile.window(LONG_SCRAPE)) for case in cases],
    }
