"""Recording rules of a time-slice SLO (`kind: timeslices`): each slice decided good or bad, the share of bad slices
over every SLI window and the period, and the records every budgeted SLO has, so the burn-rate alerts of
generators/alerts.py read them unchanged.

- Threshold SLI: `slo:sli_threshold_good:bool` is `(<query>) <op> bool <threshold>` at every evaluation: 1 good, 0 bad.
  Without `slice` each evaluation is one event (OpenSLO Occurrences of a threshold metric, pyrra's bool gauge, the
  `count_over_time` idea of pyrra#46): the error ratio over a window is `1 - avg_over_time(<verdicts>[window])`.
- Slices: `slo:sli_timeslice_good:ratio` is the slice's good fraction (the events' `1 - error ratio` over the slice, or
  the share of good evaluations in it), compared `>= bool <slice_target>` for OpenSLO Timeslices and kept as a
  fraction for RatioTimeslices (OpenSLO#159, PR #161). The error ratio over a window is
  `1 - avg_over_time(<slices>[window:<slice>])`: the subquery steps at the slice, aligned to multiples of it, so each
  slice counts once whatever the evaluation interval. A slice without events records nothing and counts for nothing.
- Calendar windows: the period's error ratio keeps the steps since the current period began (generators/calendar.py).
"""

from __future__ import annotations

from generators import calendar, naming, promql
from generators.alerts import Recording
from generators.profile import Profile
from generators.timeslice_promql import error_ratio, objective_of, slice_good, verdict
from slos.models import SLO, SpecFile, duration_seconds
from slos.windows import SLI_WINDOWS, sli_windows

# Up to the longest alert window the slices are read one by one; longer windows (the period) average the 5m ratios,
# as generators/rules.py does: a subquery stepping every slice over 30 days reads 43200 steps each evaluation.
LONGEST_SUBQUERY = "3d"
SHORTEST_WINDOW = "5m"


def averaged(window: str) -> bool:
    return duration_seconds(window) > duration_seconds(LONGEST_SUBQUERY)


def windows(spec: SpecFile, slo: SLO) -> tuple[str, ...]:
    """The SLI windows, the lookbacks of the SLO's policy conditions and (rolling) the period, shortest first."""
    objective = objective_of(slo)
    lookbacks = {c.lookback_window for policy in spec.policies(slo) for c in policy.conditions}
    every = sli_windows(objective.period) if objective.calendar is None else SLI_WINDOWS
    by_seconds = {duration_seconds(w): w for w in (*sorted(lookbacks), *every)}
    return tuple(by_seconds[seconds] for seconds in sorted(by_seconds))


def calendar_recordings(slo: SLO, profile: Profile) -> tuple[Recording, ...]:
    objective = objective_of(slo)
    assert objective.calendar is not None
    own = {naming.SLO_LABEL: slo.name}
    selector = promql.slo_selector(slo.name)
    # A window's ratios at steps of that window: each slice of the period once (generators/calendar.py).
    window = calendar.CALENDAR_STEP[objective.calendar.duration]
    ratios = f"{naming.sli_error_record(window)}{selector}"
    lookback = profile.window(calendar.CALENDAR_LOOKBACK[objective.calendar.duration])
    steps = calendar.in_period(ratios, f"{naming.CALENDAR_START_RECORD}{selector}", profile.window(window), lookback)
    return (
        Recording(naming.CALENDAR_START_RECORD, calendar.period_start(objective.calendar), own),
        Recording(naming.CALENDAR_ERROR_RECORD, promql.checked(f"avg_over_time({steps})"), own),
    )


def period_error_record(slo: SLO) -> str:
    """The record of the error ratio over the budget period: the calendar period's, or the rolling period's."""
    objective = objective_of(slo)
    return naming.CALENDAR_ERROR_RECORD if objective.calendar else naming.sli_error_record(objective.period)


def timeslice_recordings(spec: SpecFile, slo: SLO, profile: Profile) -> tuple[Recording, ...]:
    objective = objective_of(slo)
    own = {naming.SLO_LABEL: slo.name}
    selector = promql.slo_selector(slo.name)
    budget = promql.number(promql.error_budget(objective.target))
    sources: list[Recording] = []
    if objective.threshold is not None:
        sources.append(Recording(naming.THRESHOLD_GOOD_RECORD, verdict(objective, profile), own))
    if objective.slice is not None:
        sources.append(Recording(naming.TIMESLICE_GOOD_RECORD, slice_good(slo, profile), own))
    every = windows(spec, slo)
    short = f"{naming.sli_error_record(SHORTEST_WINDOW)}{selector}"
    ratios = [
        Recording(
            naming.sli_error_record(w),
            promql.checked(f"avg_over_time({short}[{profile.window(w)}])")
            if averaged(w)
            else error_ratio(slo, profile.window(w), profile),
            own,
        )
        for w in every
    ]
    burns = [
        Recording(naming.burn_rate_record(w), promql.checked(f"{naming.sli_error_record(w)}{selector} / {budget}"), own)
        for w in every
    ]
    period = calendar_recordings(slo, profile) if objective.calendar else ()
    meta = [
        Recording(naming.OBJECTIVE_RECORD, promql.checked(f"vector({promql.number(objective.target)})"), own),
        Recording(naming.ERROR_BUDGET_RECORD, promql.checked(f"vector({budget})"), own),
        Recording(
            naming.BUDGET_REMAINING_RECORD,
            promql.checked(f"1 - {period_error_record(slo)}{selector} / {budget}"),
            own,
        ),
    ]
    return (*sources, *ratios, *burns, *period, *meta)
