"""Generated promtool cases of a threshold SLO's `min_events` floor (the rule: `generators.alerts.threshold_floored`).

The fine cases of a threshold alert (`generators.unittests`) carry its events too, at least `BUSY` floors per scrape,
so every window of two scrapes reaches the floor and it never delays them; their predictions hold the floor as the
rule does (`floored`). Each floored alert has one more case that straddles the floor, checked a window and two
scrapes after the start: namespaces with a violated objective from the start, whose events arrive at once on
counters that read 0 the scrape before, so every rate variant of `generators.synthetic` reads exactly the events
that arrived (`increase` does not extrapolate towards a counter's zero, Prometheus's `durationToZero`, nor past a
sample on the evaluation). Half a window and a scrape before the check, the floor's events arrive in one namespace
(active) and one event fewer in another (silent); a gauge's counters alone, each with the floor's events (active)
and one fewer (silent), the others without series; and per counter, half the floor a scrape past the window and half
with the others (silent). A floor of `>` rather than `>=`, one event higher or lower, no floor, a count that leaves
out a counter or reads a missing one as other than 0, or a counted window halved or doubled each move a namespace
to the other side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from generators import promql
from generators.alerts import Alert
from generators.cases import Case, Context, ExprCheck, clock
from generators.synthetic import VARIANTS, Prediction, Series, Variant, counter, firing_times, increase
from slos.models import SLO, GaugeObjective, QuantileObjective, duration_seconds

BUSY = 2.0  # events per scrape of the fine cases, in floors


def event_floor(ctx: Context, slo: SLO) -> float | None:
    """The floor as the rule compares it (the literal `promql.number` writes), None without `min_events`."""
    if not slo.min_events:
        return None
    return float(promql.number(ctx.profile.events(slo.min_events)))


def events_per_tick(ctx: Context, slo: SLO, usual: float) -> float:
    """Events per scrape of the fine cases: `usual`, or `BUSY` floors where that is more."""
    floor = event_floor(ctx, slo)
    return usual if floor is None else max(usual, BUSY * floor)


def event_window(ctx: Context, slo: SLO) -> float:
    """Seconds of the window the floor counts over: the quantile's, or the gauge's `events.window`."""
    objective = slo.objective
    if isinstance(objective, QuantileObjective):
        return duration_seconds(ctx.profile.window(objective.window))
    assert isinstance(objective, GaugeObjective) and objective.events is not None
    return duration_seconds(ctx.profile.window(objective.events.window))


def split(ctx: Context, slo: SLO, increments: Sequence[float]) -> list[Sequence[float] | None]:
    """Events per scrape shared among the counters: each but the first takes one of every scrape that has enough,
    the first the rest, so a count that leaves one out falls short."""
    objective = slo.objective
    counters = len(objective.events.counters) if isinstance(objective, GaugeObjective) and objective.events else 1
    others = counters - 1
    shares: list[list[float]] = [[] for _ in range(counters)]
    for total in increments:
        one = 1.0 if total >= counters and sum([total - others, *[1.0] * others]) == total else 0.0
        for index, share in enumerate([total - others * one, *[one] * others]):
            shares[index].append(share)
    return list(shares)


def gauge_event_series(
    ctx: Context, slo: SLO, labels: Mapping[str, str], per_counter: Sequence[Sequence[float] | None]
) -> tuple[Series, ...]:
    """A floored gauge's event counters (none without a floor) with `per_counter` events per scrape (None: the
    counter has no series), carrying the gauge's labels that its floor is matched on."""
    objective = slo.objective
    if event_floor(ctx, slo) is None or not isinstance(objective, GaugeObjective) or objective.events is None:
        return ()
    scope = {label: labels[label] for label in promql.threshold_grouping(objective) if label in labels}
    return tuple(
        Series({**ctx.base_labels(c.metric or "", c.matchers), **scope, "__name__": c.metric or ""}, counter(events))
        for c, events in zip(objective.events.counters, per_counter, strict=True)
        if events is not None
    )


def window_events(events: Sequence[Series], tick: float, at: int, window: float, variant: Variant) -> float | None:
    """The summed `increase` of the event counters, None when none has two samples in the window."""
    counts = [increase(series.values, tick, at, window, variant) for series in events]
    present = [count for count in counts if count is not None]
    return sum(present) if present else None


def floored(
    prediction: Prediction | None, events: Sequence[Series], ctx: Context, slo: SLO, at: int
) -> Prediction | None:
    """`prediction`, active only in the rate variants whose window holds the floor's events (as is without one)."""
    floor = event_floor(ctx, slo)
    if floor is None or prediction is None:
        return prediction
    window = event_window(ctx, slo)
    states = []
    for variant in VARIANTS:
        count = window_events(events, ctx.tick, at, window, variant)
        states.append(prediction.active_in(variant) and count is not None and count >= floor)
    return Prediction(all(states), prediction.values, tuple(states))


Scenario = tuple[str, list[Sequence[float] | None], bool]  # (namespace, events per scrape per counter, active)


def _scenarios(ctx: Context, slo: SLO, floor: float, counters: int, at: int) -> list[Scenario]:
    """The namespaces of the floor's case, and whether the rule is active in each at `at`."""
    window = round(event_window(ctx, slo) / ctx.tick)
    recent, old = at - window // 2 - 1, at - window - 1  # half a window and a scrape ago; a scrape past the window

    def once(events: float, tick: int) -> list[float]:
        return [events if index == tick - 1 else 0.0 for index in range(at)]  # counter(): increments[k - 1] at k

    under = max(floor - 1, 0.0)
    found = [("at-floor", split(ctx, slo, once(floor, recent)), True)]
    found.append(("under-floor", split(ctx, slo, once(under, recent)), False))
    for index in range(counters):
        alone: list[Sequence[float] | None] = [None] * counters
        if counters > 1:
            found.append((f"only-{index}", [*alone[:index], once(floor, recent), *alone[index + 1 :]], True))
            found.append((f"only-{index}-under", [*alone[:index], once(under, recent), *alone[index + 1 :]], False))
        spread = [a + b for a, b in zip(once(floor / 2, old), once(floor / 2, recent), strict=True)]
        found.append((f"earlier-{index}", [*alone[:index], spread, *alone[index + 1 :]], False))
    return found


def straddle_case(
    ctx: Context,
    slo: SLO,
    rule: Alert,
    *,
    bad: Callable[[Sequence[Sequence[float] | None]], tuple[Series, ...]],
    predict: Callable[[tuple[Series, ...], int], Prediction | None],
    shown: Callable[[Mapping[str, str]], dict[str, str]],
    what: str,
) -> tuple[Case, ...]:
    """The floor's case (none without `min_events`): `bad(events)` are the series of a violated objective with those
    events per scrape per counter, `predict` evaluates the rule on them, `shown` gives an alert's labels from a
    series'."""
    floor = event_floor(ctx, slo)
    if floor is None:
        return ()
    objective = slo.objective
    counters = len(objective.events.counters) if isinstance(objective, GaugeObjective) and objective.events else 1
    window = round(event_window(ctx, slo) / ctx.tick)
    at = window + 2
    hold = duration_seconds(rule.for_ or "0s")
    series: tuple[Series, ...] = ()
    samples: list[tuple[dict[str, str], float]] = []
    for namespace, events, active in _scenarios(ctx, slo, floor, counters, at):
        own = tuple(replace(s, labels={**s.labels, "namespace": namespace}) for s in bad(events))
        predictions = [predict(own, index) for index in range(at + 1)]
        per_variant = [
            firing_times([p is not None and p.active_in(variant) for p in predictions], hold, ctx.tick)
            for variant in VARIANTS
        ]
        last = predictions[at]
        states = {
            (last is not None and last.active_in(v), firing[at])
            for v, firing in zip(VARIANTS, per_variant, strict=True)
        }
        if len(states) != 1 or next(iter(states))[0] is not active:
            raise promql.GeneratorError(f"{rule.alert}: the {namespace} namespace does not straddle the floor")
        series += own
        if active:
            state = "firing" if next(iter(states))[1] else "pending"
            labels = {**shown(own[0].labels), **rule.labels, "__name__": "ALERTS", "alertname": rule.alert}
            samples.append(({**labels, "alertstate": state}, 1.0))
    query = "ALERTS{alertname=" + promql.string(rule.alert) + "}"
    return (
        Case(
            f"{rule.alert} with {what}: active where the {clock(window * ctx.tick)} window holds the {floor:g} events "
            f"of min_events, silent where it holds {max(floor - 1, 0):g}, where half of them are older than the "
            f"window, or (a counter alone) where one counter falls short (checked at {clock(at * ctx.tick)})",
            series,
            (),
            (rule.alert,),
            (ExprCheck(at * ctx.tick, query, tuple(samples)),),
        ),
    )
