"""The generated promtool test file of one spec: every alert's cases, and the alerts that could not be synthesized."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generators.burn_tests import Untestable, absent_case, burn_cases
from generators.profile import Profile
from generators.rules import Group
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
    return Plan(tuple(cases), tuple(untested))


def _case(case: Case, profile: Profile) -> dict[str, Any]:
    return {
        "name": case.name,
        "interval": profile.scrape_interval,
        "input_series": [series.data() for series in case.series],
        "alert_rule_test": [
            {
                "eval_time": clock(check.seconds),
                "alertname": check.alertname,
                "exp_alerts": [alert.data() for alert in check.alerts],
            }
            for check in case.checks
        ],
    }


def test_file(plan: Plan, rule_file: str, profile: Profile) -> dict[str, Any]:
    """promtool's test file; `rule_file` is relative to the test file."""
    return {
        "rule_files": [rule_file],
        "evaluation_interval": profile.evaluation_interval,
        "tests": [_case(case, profile) for case in plan.cases],
    }
