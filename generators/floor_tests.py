"""Generated promtool cases of an SLO's `min_events` floor, one per window pair, in a file of their own: series every
150s, as the long cases, evaluated hourly (`FLOOR_EVALUATION`), since only the last evaluation is checked and a 3d
window's case evaluates every rule of the spec at every step.

Two namespaces burn alike, far over every factor, at steady rates: one's long window holds 1 % more events than the
floor, the other's 1 % fewer. The pair's alert must fire for the first alone. A floor 2 % higher or lower, a window
half or twice as long (the series run 5 % longer than the window, so twice the window holds more), or a count
matched on other labels than the burn records' each change which namespace fires.

Counts are multiples of 2^-20, so the counters add up exactly and promtool's series notation stays one run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from generators import promql
from generators.alerts import Alert, pair_labels
from generators.burn_tests import (
    LONG_SCRAPE,
    Reading,
    alerts_selector,
    events_of,
    firing_sample,
)
from generators.cases import Case, Context, ExprCheck, clock
from generators.synthetic import Series
from slos.models import SCOPE_LABELS, SLO, LatencyBudgetObjective, RatioObjective, duration_seconds
from slos.windows import enabled_pairs

FLOOR_EVALUATION = "1h"
STRADDLE = 0.01  # the two namespaces' long windows hold this share more and fewer events than the floor
LONGER = 1.05  # the series run this many long windows (plus an evaluation): twice the window holds more
_EXACT = 2.0**20


def _exact(value: float) -> float:
    return round(value * _EXACT) / _EXACT


def floor_cases(ctx: Context, slo: SLO, rules: Mapping[str, Alert]) -> tuple[Case, ...]:
    """The floor's cases of every enabled tier (none without `min_events`); Untestable as `burn_cases`."""
    objective = slo.objective
    if not slo.min_events or slo.burn_rate is None:
        return ()
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    events = events_of(ctx, slo)
    pairs = enabled_pairs(slo)
    budget = float(promql.number(promql.error_budget(objective.target)))
    floor = ctx.profile.events(slo.min_events)
    step = duration_seconds(ctx.profile.window(LONG_SCRAPE))
    every = round(duration_seconds(ctx.profile.window(FLOOR_EVALUATION)) / step)
    names = {w for p in pairs for w in (p.long, p.short)}
    windows = {w: duration_seconds(ctx.profile.window(w)) for w in names}
    reading = Reading(events, step, every, budget, windows, floor)
    top = max(p.factor for p in pairs)
    share = min(2 * top, (top + 1 / budget) / 2) * budget  # the error ratio: far over every factor, under 1
    scope = events.streams[0][0]
    out = {"slo": slo.name, **{label: scope[label] for label in SCOPE_LABELS if label in scope}}
    cases = []
    for pair in pairs:
        rule = next(
            r for r in rules.values() if r.alert == slo.burn_rate.name and r.labels.items() >= pair_labels(pair).items()
        )
        per_window = windows[pair.long] / step
        ticks = math.ceil(per_window * LONGER) + every
        ticks += -ticks % every
        series: tuple[Series, ...] = ()
        firing: list[tuple[dict[str, str], float]] = []
        for namespace, sign in (("over", 1), ("under", -1)):
            total = _exact(floor * (1 + sign * STRADDLE) / per_window)
            own = events.series([total] * ticks, [_exact(total * share)] * ticks)
            if reading.firing(own, ticks, pair) is not (sign > 0):
                raise promql.GeneratorError(f"{rule.alert}: the {namespace} namespace does not straddle the floor")
            series += tuple(replace(s, labels={**s.labels, "namespace": namespace}) for s in own)
            if sign > 0:
                firing.append(firing_sample(rule, {**out, "namespace": namespace}))
        cases.append(
            Case(
                f"{rule.alert} {pair.long}/{pair.short} ({pair.tier}): burning {share / budget:.3g}x, fires where the "
                f"{pair.long} window holds {STRADDLE:.0%} more than the {floor:g} events of min_events, stays silent "
                f"where it holds {STRADDLE:.0%} fewer (at {clock(ticks * step)})",
                series,
                (),
                (rule.alert,),
                (ExprCheck(ticks * step, alerts_selector(rule.alert, pair_labels(pair)), tuple(firing)),),
                file="floors",
            )
        )
    return tuple(cases)
