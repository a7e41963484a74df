"""Generated promtool cases of an SLO's input sanity alert (generators.sanity), in the fine file.

- broken (pyrra#448): the counted events grow 1 % faster than the total (good events for a good/total SLO, so the
  error ratio is -0.01; bad events for a bad/total one, 1.01): the ticket fires once the ratio has stayed out of
  [0, 1] for the alert's `for:`, with its labels and annotations, and resolves once the repaired input brings the
  5m ratio back into the range;
- silent beside it: a healthy namespace, one whose every event is bad (an error ratio of exactly 1 is a real
  outage, not a broken input) and an idle one (0/0 records no ratio at all).

Events that are series of the total's own metric are part of the total: no series takes their ratio out of [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from generators import promql
from generators.alerts import Alert
from generators.burn_tests import Events, Reading, Untestable, events_of
from generators.cases import Case, Check, Context, clock
from generators.rules import SHORTEST_WINDOW
from generators.synthetic import Prediction, Series, Variant, agreed
from generators.unittests import timeline_checks
from slos.models import SCOPE_LABELS, SLO, RatioObjective, duration_seconds

OUTSIDE = 0.01  # the broken input's counted events outgrow the total by this share
PER_TICK = 100.0  # events per tick


def _in_namespace(series: Sequence[Series], namespace: str) -> tuple[Series, ...]:
    return tuple(replace(s, labels={**s.labels, "namespace": namespace}) for s in series)


def sanity_cases(ctx: Context, slo: SLO, rule: Alert) -> tuple[Case, ...]:
    """The cases of the SLO's sanity alert; Untestable when no series can break its inputs."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective)
    events: Events = events_of(ctx, slo)
    if any(role == "other" for _, role in events.streams):
        raise Untestable("its events are series of the total's own metric: no input takes the ratio out of [0, 1]")
    window = SHORTEST_WINDOW
    reading = Reading(events, ctx.tick, 1, 1.0, {window: duration_seconds(ctx.profile.window(window))})
    hold = duration_seconds(rule.for_ or "0s")
    broken_ticks = math.ceil(hold / ctx.tick) + 3
    ticks = broken_ticks + math.ceil(reading.windows[window] / ctx.tick) + 3
    # bad events (counted as bad) or good ones (total minus bad) 1 % over the total
    outside = (1 + OUTSIDE) * PER_TICK if events.counts_bad else -OUTSIDE * PER_TICK
    broken = events.series([PER_TICK] * ticks, [outside] * broken_ticks + [0.0] * (ticks - broken_ticks))

    def predict(at: int) -> Prediction | None:
        def evaluate(variant: Variant) -> Prediction | None:
            ratio = reading.error_ratio(broken, at, window, variant)
            return None if ratio is None else Prediction(ratio < 0 or ratio > 1, (ratio,))

        return agreed(evaluate, f"{rule.alert} at {clock(at * ctx.tick)}")

    scope = events.streams[0][0]
    out = {"slo": slo.name, **{label: scope[label] for label in SCOPE_LABELS if label in scope}}
    checks, fires, resolves = timeline_checks(rule, [predict(at) for at in range(ticks + 1)], hold, ctx.tick, out)
    ratio = -OUTSIDE if not events.counts_bad else 1 + OUTSIDE
    counted = "bad" if events.counts_bad else "good"
    quiet = _quiet(ctx, events, reading, rule, ticks, window)
    return (
        Case(
            f"{rule.alert} fires at {clock(fires)} when the {counted} events grow {OUTSIDE:.0%} faster than the total "
            f"(an error ratio of {ratio:g}), resolves at {clock(resolves)} after the input is repaired at "
            f"{clock(broken_ticks * ctx.tick)}",
            broken,
            checks,
            (rule.alert,),
        ),
        quiet,
    )


def _quiet(ctx: Context, events: Events, reading: Reading, rule: Alert, ticks: int, window: str) -> Case:
    scenarios: Mapping[str, tuple[float, float]] = {
        "healthy": (PER_TICK, PER_TICK / 10),
        "all-bad": (PER_TICK, PER_TICK),
        "idle": (0.0, 0.0),
    }
    series: tuple[Series, ...] = ()
    for namespace, (total, bad) in scenarios.items():
        own = events.series([total] * ticks, [bad] * ticks)
        for at in range(1, ticks + 1):
            for variant in (0, 3):
                ratio = reading.error_ratio(own, at, window, variant)
                if ratio is not None and (ratio < 0 or ratio > 1):
                    raise promql.GeneratorError(f"{rule.alert}: the {namespace} input reads {ratio:g}")
        series += _in_namespace(own, namespace)
    return Case(
        f"{rule.alert} stays silent on a healthy input, on one whose every event is bad (an error ratio of 1) and "
        "on an idle one (0/0)",
        series,
        tuple(Check(at * ctx.tick, rule.alert, ()) for at in (ticks // 2, ticks)),
        (rule.alert,),
    )
