"""SLO status: each SLO of the specs evaluated over the trailing window, with the spec's own threshold and operator.

The thresholds come from the same models the generators render the rules from (`SLO.status_threshold`,
`SLO.compliant`), so `/slo` and the alerts cannot disagree on a number. Current values per objective kind:

- quantile: histogram_quantile over the bucket increases of the window, in the histogram's unit (ms);
- gauge: the latest value, aggregated by `aggregate` per `by` group, divided by `divide_by`, times `scale`;
- ratio: good (or total - bad) over total events in the window, in percent;
- latency_budget: events at or under the threshold bucket over all events in the window, in percent.

With grouping (`by`), `current` is the worst group, the one an alert would fire on. When the window holds no data
(no events, no series, a zero denominator), `current` is null, `no_data` is true and `compliant` is null: an SLO
without data is neither met nor broken (the rules do not fire on an empty vector either), so it never makes the whole
compliant. An SLO with `min_events` whose window holds fewer events than that reads `insufficient_data`: its
`current` is shown, `compliant` is null, as its alerts stay silent below the same floor (one request that failed out
of three is not a broken 99.9 % objective, one cold insert is not a broken p95). The events are a ratio's total, a
histogram's `_count` (quantile, latency_budget), or the sum of a gauge's `events` counters (the hit ratio's hits and
misses). `overall_compliant` is true only when every SLO has enough data
and is met, false as soon as one with enough data is broken, else null; `overall_status` names the case: compliant,
violated, partial_data, insufficient_data (no SLO has enough data, some have a little) or no_data.

An SLO whose budget is spent by events (ratio, latency_budget) also reports `period`: its bad events over its events
as the counters hold them since the process started (a Window from an empty snapshot: every counter from zero), the
same formula as the rules' period SLI (the period's bad events over its events, never an average of short-window
ratios), and the error budget left at that ratio. The process holds its own lifetime, not the period: `since` says
so, and Prometheus's `slo:sli_error:ratio_rate<period>` is the figure over the period itself.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.window import Group, Snapshot, Window
from slos.models import (
    SLO,
    EventSelector,
    GaugeObjective,
    LatencyBudgetObjective,
    Op,
    QuantileObjective,
    RatioObjective,
)

_DIGITS = 6


@dataclass(frozen=True)
class SloStatus:
    """One SLO's line in GET /slo."""

    slo: SLO
    current: float | None
    note: str | None = None
    events: float | None = None  # events in the window, counted for an SLO with `min_events`

    @property
    def no_data(self) -> bool:
        return self.current is None

    @property
    def insufficient_data(self) -> bool:
        """Fewer events in the window than the spec's `min_events`: too little traffic to judge the objective."""
        floor = self.slo.min_events
        return not self.no_data and floor is not None and self.events is not None and self.events < floor

    @property
    def judged(self) -> bool:
        return not self.no_data and not self.insufficient_data

    @property
    def compliant(self) -> bool | None:
        """Whether the objective is met; None without (enough) data: neither met nor broken."""
        return self.slo.compliant(self.current) if self.judged and self.current is not None else None

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "threshold": self.slo.status_threshold,
            "current": None if self.current is None else round(self.current, _DIGITS),
            "compliant": self.compliant,
            "op": str(self.slo.status_op),
            "kind": self.slo.objective.kind,
            "no_data": self.no_data,
            "insufficient_data": self.insufficient_data,
        }
        if self.slo.min_events is not None:
            line["min_events"] = self.slo.min_events
            line["events"] = None if self.events is None else round(self.events, 3)
        if self.note:
            line["note"] = self.note
        return line


def worst(values: Sequence[float], op: Op, threshold: float) -> float:
    """The value an alert would fire on: the largest under `<`, the smallest under `>`, a violating one under `==`."""
    if op in (Op.LT, Op.LE):
        return max(values)
    if op in (Op.GT, Op.GE):
        return min(values)
    violating = [value for value in values if not op.holds(value, threshold)]
    return (violating or list(values))[0]


def _grouped(
    series: Sequence[tuple[Mapping[str, str], float]], aggregate: str | None, by: Sequence[str]
) -> dict[Group, float]:
    if aggregate is None:
        return {tuple(f"{name}={text}" for name, text in sorted(labels.items())): value for labels, value in series}
    groups: dict[Group, list[float]] = {}
    for labels, value in series:
        groups.setdefault(tuple(labels.get(label, "") for label in by), []).append(value)
    return {group: _reduce(aggregate, values) for group, values in groups.items()}


def _reduce(aggregate: str, values: list[float]) -> float:
    if aggregate == "min":
        return min(values)
    if aggregate == "max":
        return max(values)
    total = float(sum(values))
    return total / len(values) if aggregate == "avg" else total


def _quantile(objective: QuantileObjective, window: Window) -> list[float]:
    per_group = window.quantiles(objective.quantile, objective.metric, objective.matchers, objective.by)
    return [value for _, value in sorted(per_group.items()) if value is not None]


def _gauge(objective: GaugeObjective, window: Window) -> list[float]:
    numerators = _grouped(window.gauges(objective.metric, objective.matchers), objective.aggregate, objective.by)
    if objective.divide_by is None:
        return [value * objective.scale for _, value in sorted(numerators.items())]
    denominators = _grouped(window.gauges(objective.divide_by, objective.matchers), objective.aggregate, objective.by)
    return [
        value / denominators[group] * objective.scale
        for group, value in sorted(numerators.items())
        if denominators.get(group)
    ]


def _events(selector: EventSelector, window: Window) -> float:
    if selector.metric is None:
        raise LookupError("a PromQL `query` selector cannot be evaluated in-process")
    return window.increase_total(selector.metric, selector.matchers)


def _ratio(objective: RatioObjective, window: Window) -> list[float]:
    if objective.total is None:
        raise LookupError("a raw `error_ratio_query` cannot be evaluated in-process")
    total = _events(objective.total, window)
    if total <= 0:
        return []
    if objective.good is not None:
        return [_events(objective.good, window) / total * 100.0]
    assert objective.bad is not None
    return [(1.0 - _events(objective.bad, window) / total) * 100.0]


def _latency_budget(objective: LatencyBudgetObjective, window: Window) -> list[float]:
    share = window.bucket_share(objective.metric, objective.threshold, objective.matchers)
    return [] if share is None else [share * 100.0]


def _event_count(slo: SLO, window: Window) -> float | None:
    """The events the objective counts in the window (what `min_events` is held against), None where it counts none."""
    objective = slo.objective
    if isinstance(objective, RatioObjective) and objective.total is not None:
        return _events(objective.total, window)
    if isinstance(objective, QuantileObjective | LatencyBudgetObjective):
        return window.increase_total(f"{objective.metric}_count", objective.matchers)
    if isinstance(objective, GaugeObjective) and objective.events is not None:
        return sum(_events(counter, window) for counter in objective.events.counters)
    return None


def evaluate(slo: SLO, window: Window) -> SloStatus:
    """The SLO's current value over the window, or no data (with a note when it cannot be computed at all)."""
    objective = slo.objective
    try:
        events = _event_count(slo, window) if slo.min_events is not None else None
        if isinstance(objective, QuantileObjective):
            values = _quantile(objective, window)
        elif isinstance(objective, GaugeObjective):
            values = _gauge(objective, window)
        elif isinstance(objective, RatioObjective):
            values = _ratio(objective, window)
        elif isinstance(objective, LatencyBudgetObjective):
            values = _latency_budget(objective, window)
        else:
            return SloStatus(slo, None, note="a time-slice SLO is evaluated by the Prometheus rules only")
    except (LookupError, ValueError) as exc:
        return SloStatus(slo, None, note=str(exc))
    # A NaN gauge (the hit ratio before the first lookup) is no data, as in Prometheus, where NaN compares false.
    values = [value for value in values if not math.isnan(value)]
    if not values:
        return SloStatus(slo, None)
    return SloStatus(slo, worst(values, slo.status_op, slo.status_threshold), events=events)


PERIOD_SINCE = "process_start"  # what the `period` figures count: the process's counters, from zero


def since_start(window: Window) -> Window:
    """The counters' whole life: `now` against an empty snapshot, from which every counter counts from zero."""
    return Window(window.index, Snapshot(window.now.at, array("d")), window.now)


def bad_and_total(objective: RatioObjective | LatencyBudgetObjective, window: Window) -> tuple[float, float]:
    """The SLI's bad and total events in the window, as the rules' 5m event records count them."""
    if isinstance(objective, LatencyBudgetObjective):
        share = window.bucket_share(objective.metric, objective.threshold, objective.matchers)
        total = window.increase_total(f"{objective.metric}_count", objective.matchers)
        return (0.0, 0.0) if share is None else (total * (1.0 - share), total)
    if objective.total is None:
        raise LookupError("a raw `error_ratio_query` counts no events")
    total = _events(objective.total, window)
    if objective.bad is not None:
        return _events(objective.bad, window), total
    assert objective.good is not None
    return total - _events(objective.good, window), total


def counts_events(slo: SLO) -> bool:
    """Whether the SLO's budget is spent by events (ratio, latency_budget), so `/slo` reports its period figures."""
    return isinstance(slo.objective, RatioObjective | LatencyBudgetObjective)


def period_figures(slo: SLO, window: Window) -> dict[str, Any]:
    """A budgeted SLO's `period` line: bad events over events since the process started, and the budget left."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    line: dict[str, Any] = {"period": objective.period, "since": PERIOD_SINCE}
    try:
        bad, total = bad_and_total(objective, since_start(window))
    except (LookupError, ValueError) as exc:
        return {**line, "error_ratio": None, "budget_remaining": None, "note": str(exc)}
    budget = float(Decimal(1) - Decimal(repr(objective.target)))
    ratio = bad / total if total > 0 else None
    return {
        **line,
        "events": round(total, 3),
        "bad_events": round(bad, 3),
        "error_ratio": None if ratio is None else round(ratio, _DIGITS + 3),
        "budget_remaining": None if ratio is None else round(1.0 - ratio / budget, _DIGITS),
    }


COMPLIANT, VIOLATED, PARTIAL_DATA, NO_DATA = "compliant", "violated", "partial_data", "no_data"
INSUFFICIENT_DATA = "insufficient_data"


def overall(statuses: Sequence[SloStatus]) -> tuple[bool | None, str]:
    """`overall_compliant` and `overall_status` of a set of SLOs (see the module docstring)."""
    measured = [status for status in statuses if status.judged]
    if not measured:
        return None, INSUFFICIENT_DATA if any(status.insufficient_data for status in statuses) else NO_DATA
    if not all(status.compliant for status in measured):
        return False, VIOLATED
    if len(measured) < len(statuses):
        return None, PARTIAL_DATA
    return True, COMPLIANT


def report(slos: Sequence[SLO], window: Window, window_s: float) -> dict[str, Any]:
    """The body of GET /slo."""
    statuses = [evaluate(slo, window) for slo in slos]
    compliant, status_word = overall(statuses)
    return {
        "overall_compliant": compliant,
        "overall_status": status_word,
        "slos_without_data": sorted(status.slo.name for status in statuses if status.no_data),
        "slos_with_insufficient_data": sorted(status.slo.name for status in statuses if status.insufficient_data),
        "window_seconds": window_s,
        "measured_seconds": round(window.seconds, 3),
        "slos": {
            status.slo.name: status.to_json()
            | ({"period": period_figures(status.slo, window)} if counts_events(status.slo) else {})
            for status in statuses
        },
    }
