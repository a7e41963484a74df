"""The cost table of docs/slo-specs.md's "Period SLIs": per budgeted SLO of the shipped spec, what its period rule
stores and reads over one period, per namespace and job, beside Sloth's average of the 5m ratios.

With E = period / evaluation interval (the evaluations of one period): the period rule here reads its two 5m event
records back (2E samples an evaluation), which are 2 series more than Sloth's rules store (2E samples over the
period); Sloth's reads its 5m ratio twice (`sum_over_time` and `count_over_time`: 2E samples), a series its alerts
record anyway. A raw error ratio here counts no events: its period averages the 5m ratios as Sloth's does.
"""

from __future__ import annotations

from generators.profile import PRODUCTION, Profile
from generators.rules import event_recordings
from slos.loader import load_specs
from slos.models import SLO, LatencyBudgetObjective, RatioObjective, duration_seconds

_HEADER = (
    "| SLO | period rule | series beyond the 5m ratio | samples stored over the period | samples read per evaluation "
    "| samples read over the period |\n|---|---|---:|---:|---:|---:|\n"
)


def _row(slo: SLO, rule: str, series: int, evaluations: int) -> str:
    reads = 2 * evaluations
    return f"| `{slo.name}` | {rule} | {series} | {series * evaluations:,} | {reads:,} | {reads * evaluations:,} |\n"


def period_cost_table(slos: tuple[SLO, ...] | None = None, profile: Profile = PRODUCTION) -> str:
    """One pair of rows (here, Sloth) per budgeted SLO."""
    rows = []
    for slo in load_specs().slos if slos is None else slos:
        if not isinstance(slo.objective, RatioObjective | LatencyBudgetObjective):
            continue
        period = slo.objective.period
        evaluations = round(duration_seconds(period) / duration_seconds(profile.evaluation_interval))
        events = len(event_recordings(slo, profile))
        ours = "bad events / events (`sum_over_time` of the two 5m event records)" if events else "5m ratios averaged"
        rows.append(_row(slo, f"here: {ours}", events, evaluations))
        rows.append(_row(slo, "Sloth: 5m ratios averaged (`sum_over_time / count_over_time`)", 0, evaluations))
    return _HEADER + "".join(rows)
