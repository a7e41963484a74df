"""What the SLO report shows of one budgeted SLO, read back from the recording rules the bundle renders.

Per SLO: the error budget remaining over the report's range, the burn rate over the long window of each burn-rate
alert pair (with the factor that pages or tickets), the objective Prometheus records, and a status that says in words
what the numbers mean: the budget is spent, an alert pair burns over its factor on both windows right now, or neither.
"""

from __future__ import annotations

from dataclasses import dataclass

from slos.models import SLO, LatencyBudgetObjective, RatioObjective
from slos.records import BUDGET_REMAINING_RECORD, OBJECTIVE_RECORD, SLO_LABEL, burn_rate_record
from slos.report_prometheus import PrometheusReader, Series, TimeRange, selector
from slos.windows import WindowPair, enabled_pairs, window_pairs

NO_DATA = "no data"


@dataclass(frozen=True)
class BurnWindow:
    """The burn rate of one alert pair's long window; `short` is its short window, read for the status."""

    pair: WindowPair
    long: tuple[Series, ...]
    short: tuple[Series, ...]

    @property
    def firing(self) -> bool:
        """Whether both windows burn over the pair's factor at the last point (the pair's alert condition)."""
        return _over(self.long, self.pair) and _over(self.short, self.pair)


@dataclass(frozen=True)
class SloReport:
    """One SLO's chart and headline, as read from Prometheus."""

    name: str
    target: float  # the spec's objective, 0.999
    period: str
    recorded_target: float | None  # the objective Prometheus records, None when it records none
    budget_remaining: tuple[Series, ...]
    burns: tuple[BurnWindow, ...]

    @property
    def has_data(self) -> bool:
        return any(series.points for series in self.budget_remaining) or any(
            series.points for burn in self.burns for series in burn.long
        )

    @property
    def budget_left(self) -> float | None:
        """The lowest latest budget remaining over the SLO's series (the worst job), None without data."""
        latest = [series.points[-1][1] for series in self.budget_remaining if series.points]
        return min(latest) if latest else None

    @property
    def status(self) -> str:
        """`no data`, `budget exhausted`, `burning (page_fast)`, or `healthy`."""
        if not self.has_data:
            return NO_DATA
        left = self.budget_left
        if left is not None and left <= 0:
            return "budget exhausted"
        burning = [burn.pair.name for burn in self.burns if burn.firing]
        if burning:
            return f"burning ({', '.join(burning)})"
        return "healthy"


def _over(series: tuple[Series, ...], pair: WindowPair) -> bool:
    return any(item.points and item.points[-1][1] > pair.factor for item in series)


def report_pairs(slo: SLO) -> tuple[WindowPair, ...]:
    """The SLO's enabled alert pairs, or every pair of its period when it pages on none."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    return enabled_pairs(slo) or window_pairs(objective.period)


def read_slo(reader: PrometheusReader, slo: SLO, span: TimeRange) -> SloReport:
    """Query every record the report shows of `slo` over `span` (one range query per record)."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    own = {SLO_LABEL: slo.name}
    recorded = [s.points[-1][1] for s in reader.query_range(selector(OBJECTIVE_RECORD, own), span) if s.points]
    burns = tuple(
        BurnWindow(
            pair,
            reader.query_range(selector(burn_rate_record(pair.long), own), span),
            reader.query_range(selector(burn_rate_record(pair.short), own), span),
        )
        for pair in report_pairs(slo)
    )
    return SloReport(
        name=slo.name,
        target=objective.target,
        period=objective.period,
        recorded_target=recorded[0] if recorded else None,
        budget_remaining=reader.query_range(selector(BUDGET_REMAINING_RECORD, own), span),
        burns=burns,
    )
