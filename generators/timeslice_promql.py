"""PromQL of a time-slice SLO's SLI (`kind: timeslices`, see generators/timeslices.py for the records): the verdict of
a threshold query, the good fraction of a slice, the share of bad slices over a window, and what must exist for it to
be evaluated."""

from __future__ import annotations

from generators import naming, promql
from generators.profile import Profile
from slos.models import SLO, WINDOW_TEMPLATE, TimeslicesObjective

SHORTEST_WINDOW = "5m"


def objective_of(slo: SLO) -> TimeslicesObjective:
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    return objective


def threshold_query(objective: TimeslicesObjective, profile: Profile) -> str:
    """The threshold SLI's query, `{{.window}}` filled with the slice (or the shortest SLI window)."""
    assert objective.threshold is not None
    window = profile.window(objective.slice or SHORTEST_WINDOW)
    return f"({WINDOW_TEMPLATE.sub(window, objective.threshold.query)})"


def verdict(objective: TimeslicesObjective, profile: Profile) -> str:
    """1 while the threshold holds, 0 while it does not (`op bool`), per series of the query; nothing where the query
    is NaN (a quantile without traffic), which `op bool` would count as a bad event."""
    assert objective.threshold is not None
    sli = objective.threshold
    query = threshold_query(objective, profile)
    return promql.checked(f"({query} == {query}) {sli.op} bool {promql.number(sli.threshold)}")


def slice_good(slo: SLO, profile: Profile) -> str:
    """The good fraction of the slice that ends now, compared with the slice target when there is one."""
    objective = objective_of(slo)
    assert objective.slice is not None
    window = profile.window(objective.slice)
    if objective.threshold is not None:
        good = f"avg_over_time({naming.THRESHOLD_GOOD_RECORD}{promql.slo_selector(slo.name)}[{window}])"
    else:
        good = f"1 - ({promql.error_ratio(objective.events(), window)})"
    if objective.slice_target is None:
        return promql.checked(good)
    return promql.checked(f"({good}) >= bool {promql.number(objective.slice_target)}")


def error_ratio(slo: SLO, window: str, profile: Profile) -> str:
    """The share of bad slices (or bad evaluations) over `window` (in the profile)."""
    objective = objective_of(slo)
    selector = promql.slo_selector(slo.name)
    if objective.slice is None:
        return promql.checked(f"1 - avg_over_time({naming.THRESHOLD_GOOD_RECORD}{selector}[{window}])")
    step = profile.window(objective.slice)
    return promql.checked(f"1 - avg_over_time({naming.TIMESLICE_GOOD_RECORD}{selector}[{window}:{step}])")


def absent_selectors(slo: SLO, profile: Profile) -> tuple[str, ...]:
    """What must have series for the SLO to be evaluated: the threshold query, or the total events."""
    objective = objective_of(slo)
    if objective.threshold is not None:
        return (threshold_query(objective, profile),)
    return promql.absent_selectors(objective.events(), profile.window(SHORTEST_WINDOW))
