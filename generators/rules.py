"""Prometheus rule files: one per spec file, one group per SLO (its recording rules first, then its alerts, so an alert
reads the records of the same evaluation), plus the recording rules the dashboards query.

Recording rules follow `level:metric:operations` through `generators.naming`. A budgeted SLO records, labelled
`slo="<name>"` and kept per namespace and job, its error ratio and burn rate over every SLI window and its period,
its objective, its error budget and the budget remaining over the period.

Windows up to the longest alert window (3d) rate the raw counters; longer ones (the period) average the 5m ratios,
as sloth builds its period SLI: a raw `rate(…[30d])` reads every sample of every series each evaluation and is
silently cut short by a retention under the period (15d by default, 24h under prometheus-operator). The averaged
ratio still reads the period back, so `render` refuses a period longer than the retention the rules are rendered for.
The alert windows stay raw, as sloth's do (tests/slos/test_sloth_equivalence.py compares them with sloth's rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generators import naming, promql
from generators.alerts import Alert, Recording, slo_alerts, target_down_alert
from generators.profile import Profile
from generators.sanity import sanity_alerts
from generators.timeslices import timeslice_recordings
from slos.models import (
    SLO,
    GaugeObjective,
    LatencyBudgetObjective,
    QuantileObjective,
    RatioObjective,
    SpecFile,
    TimeslicesObjective,
    duration_seconds,
)
from slos.validate import CATALOG_SERVICE
from slos.windows import sli_windows

LONGEST_RAW_WINDOW = "3d"  # the longest alert window; the period, longer, is averaged
SHORTEST_WINDOW = "5m"  # the ratio longer windows average


def averaged(window: str) -> bool:
    """Whether the error ratio over `window` averages the 5m ratios rather than rating the raw counters."""
    return duration_seconds(window) > duration_seconds(LONGEST_RAW_WINDOW)


Rule = Alert | Recording


def slo_windows(spec: SpecFile, slo: SLO) -> tuple[str, ...]:
    """Every window a budgeted SLO records its error ratio and burn rate over: the SLI windows, its period, and the
    lookback windows of its alert policies' conditions, shortest first."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    lookbacks = {c.lookback_window for policy in spec.policies(slo) for c in policy.conditions}
    by_seconds = {duration_seconds(w): w for w in (*sorted(lookbacks), *sli_windows(objective.period))}
    return tuple(by_seconds[seconds] for seconds in sorted(by_seconds))


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Rule, ...]

    def data(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.data() for rule in self.rules]}

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, Alert))


def budget_recordings(spec: SpecFile, slo: SLO, profile: Profile) -> tuple[Recording, ...]:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    windows = slo_windows(spec, slo)
    budget = promql.number(promql.error_budget(objective.target))
    own = {naming.SLO_LABEL: slo.name}
    selector = promql.slo_selector(slo.name)
    short = naming.sli_error_record(SHORTEST_WINDOW)
    ratios = [
        Recording(
            naming.sli_error_record(window),
            promql.period_ratio(short, slo.name, profile.window(window))
            if averaged(window)
            else promql.error_ratio(objective, profile.window(window)),
            own,
        )
        for window in windows
    ]
    burns = [
        Recording(
            naming.burn_rate_record(window),
            promql.checked(f"{naming.sli_error_record(window)}{selector} / {budget}"),
            own,
        )
        for window in windows
    ]
    period_ratio = naming.sli_error_record(objective.period)
    meta = [
        Recording(naming.OBJECTIVE_RECORD, promql.checked(f"vector({promql.number(objective.target)})"), own),
        Recording(naming.ERROR_BUDGET_RECORD, promql.checked(f"vector({budget})"), own),
        Recording(naming.BUDGET_REMAINING_RECORD, promql.checked(f"1 - {period_ratio}{selector} / {budget}"), own),
    ]
    return (*ratios, *burns, *meta)


def slo_group(spec: SpecFile, slo: SLO, profile: Profile) -> Group:
    if isinstance(slo.objective, TimeslicesObjective):
        records = timeslice_recordings(spec, slo, profile)
    else:
        records = budget_recordings(spec, slo, profile) if slo.budgeted else ()
    return Group(
        f"{spec.service}.{slo.name}",
        (*records, *slo_alerts(spec, slo, profile), *sanity_alerts(spec, slo, profile, SHORTEST_WINDOW)),
    )


def dashboard_quantiles(spec: SpecFile) -> set[tuple[str, float, str, tuple[str, ...]]]:
    """(metric, quantile, window, by) of every quantile record: the dashboards' and the quantile SLOs'."""
    quantiles = set(naming.DASHBOARD_QUANTILES)
    for slo in spec.slos:
        objective = slo.objective
        if isinstance(objective, QuantileObjective) and not objective.matchers:
            quantiles.add((objective.metric, objective.quantile, objective.window, objective.by))
    return quantiles


def dashboard_ratios(spec: SpecFile) -> set[tuple[str, str]]:
    """(metric, divide_by) of every gauge ratio an SLO divides without aggregating."""
    return {
        (slo.objective.metric, slo.objective.divide_by)
        for slo in spec.slos
        if isinstance(slo.objective, GaugeObjective) and slo.objective.divide_by and not slo.objective.aggregate
    }


def dashboard_recordings(spec: SpecFile, profile: Profile) -> tuple[Recording, ...]:
    """Every quantile and ratio the dashboards and the SLOs use, once each, sorted by name."""
    quantiles = dashboard_quantiles(spec)
    ratios = dashboard_ratios(spec)
    records = [
        Recording(naming.quantile_record(m, q, w, by), promql.quantile(m, q, profile.window(w), by))
        for m, q, w, by in quantiles
    ]
    records += [
        Recording(naming.rate_record(m, w, by), promql.rate_sum(m, profile.window(w), by))
        for m, w, by in naming.DASHBOARD_RATES
    ]
    records += [Recording(naming.gauge_ratio_record(m, d), promql.gauge_ratio(m, d)) for m, d in ratios]
    by_name: dict[str, Recording] = {}
    for record in records:
        if by_name.setdefault(record.record, record) != record:
            raise promql.GeneratorError(f"two recording rules named {record.record}: {record.expr}")
    return tuple(by_name[name] for name in sorted(by_name))


def dashboard_group(spec: SpecFile) -> str:
    return f"{spec.service}.recording-rules"


def rule_groups(spec: SpecFile, profile: Profile, *, dashboards: bool) -> tuple[Group, ...]:
    groups = [slo_group(spec, slo, profile) for slo in spec.slos]
    if spec.target_down is not None:
        groups.insert(0, Group(f"{spec.service}.scrape", (target_down_alert(spec, spec.target_down, profile),)))
    if dashboards and spec.service == CATALOG_SERVICE:
        groups.insert(0, Group(dashboard_group(spec), dashboard_recordings(spec, profile)))
    return tuple(groups)


def rule_file(groups: tuple[Group, ...]) -> dict[str, Any]:
    return {"groups": [group.data() for group in groups]}
