"""Prometheus rule files: one per spec file, one group per SLO (its recording rules first, then its alerts, so an alert
reads the records of the same evaluation), plus the recording rules the dashboards query.

Recording rules follow `level:metric:operations` through `generators.naming`. A budgeted SLO records, labelled
`slo="<name>"` and kept per namespace and job, its bad and total events over 5m, its error ratio and burn rate over
every SLI window and its period, its objective, its error budget and the budget remaining over the period.

Windows up to the longest alert window (3d) rate the raw counters, as sloth's do (tests/slos/test_sloth_equivalence.py
compares them with sloth's rules). A raw `rate(…[30d])` reads every sample of every series each evaluation and is
silently cut short by a retention under the period (15d by default, 24h under prometheus-operator), so the period
reads records back: the period's error ratio is the bad events it holds over its total events,

    sum_over_time(slo:sli_bad_events:increase5m[30d]) / (sum_over_time(slo:sli_events:increase5m[30d]) > 0)

and not sloth's average of the 5m ratios, which weighs a quiet night's 5 minutes like a peak's: one failed request
of ten at 3 am counts as much as 10,000 of 100,000. The event records are `increase(…[5m])`, that is rate * window,
at every evaluation (30s), not at an evaluation interval equal to the window: the windows overlap, so each event is
counted window / evaluation interval times (10), in the bad and the total sums alike, and the factor cancels in the
ratio. An interval equal to the window would need a group of its own, read a step late by the period, and `increase`
over back-to-back windows still extrapolates across their shared edges; overlapping windows of 10 scrapes weigh every
event alike, and `increase` extrapolates the bad and the total counters of the same scrapes alike. The ratio is exact
up to the 5m at either edge of the period (1/8640 of it), where events are in fewer of its windows. No traffic
records a total of 0 and the `> 0` keeps a period without events from dividing by zero: no sample, never a NaN. A raw
`error_ratio_query` counts no events: its period still averages its 5m ratios, as sloth's does. Either way the period
is read back, so `render` refuses a period longer than the retention the rules are rendered for.
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

LONGEST_RAW_WINDOW = "3d"  # the longest alert window; the period, longer, reads the records back
SHORTEST_WINDOW = "5m"  # the window of the event records (and of the ratio a raw error ratio's period averages)


def from_records(window: str) -> bool:
    """Whether the error ratio over `window` reads the 5m records back rather than rating the raw counters."""
    return duration_seconds(window) > duration_seconds(LONGEST_RAW_WINDOW)


def counts_events(objective: RatioObjective | LatencyBudgetObjective) -> bool:
    """Whether the SLI counts events (a raw `error_ratio_query` does not): its period divides them."""
    return isinstance(objective, LatencyBudgetObjective) or objective.total is not None


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


def event_recordings(slo: SLO, profile: Profile) -> tuple[Recording, ...]:
    """The SLO's bad and total events over the shortest window, which its period sums (none for a raw ratio)."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    if not counts_events(objective):
        return ()
    window = profile.window(SHORTEST_WINDOW)
    seconds = duration_seconds(window)
    made = {
        naming.BAD_EVENTS: promql.bad_events(objective, window, seconds),
        naming.TOTAL_EVENTS: promql.total_events(objective, window, seconds),
    }
    own = {naming.SLO_LABEL: slo.name}
    return tuple(Recording(naming.sli_events_record(k, SHORTEST_WINDOW), str(e), own) for k, e in made.items())


def long_ratio(slo: SLO, window: str) -> str:
    """The error ratio over a window past the longest raw one, read back from the SLO's 5m records."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    if not counts_events(objective):
        return promql.averaged_ratio(naming.sli_error_record(SHORTEST_WINDOW), slo.name, window)
    bad, total = (naming.sli_events_record(kind, SHORTEST_WINDOW) for kind in (naming.BAD_EVENTS, naming.TOTAL_EVENTS))
    return promql.period_ratio(bad, total, slo.name, window)


def budget_recordings(spec: SpecFile, slo: SLO, profile: Profile) -> tuple[Recording, ...]:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    windows = slo_windows(spec, slo)
    budget = promql.number(promql.error_budget(objective.target))
    own = {naming.SLO_LABEL: slo.name}
    selector = promql.slo_selector(slo.name)
    ratios = [
        Recording(
            naming.sli_error_record(window),
            long_ratio(slo, profile.window(window))
            if from_records(window)
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
    return (*event_recordings(slo, profile), *ratios, *burns, *meta)


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
