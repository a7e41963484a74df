"""Generated promtool tests of the error-budget SLOs: one case per burn-rate window pair, a healthy case, and the
absent-metrics alert.

Counters start at zero, so every window's error ratio equals the ratio of the traffic so far. The case of a pair
burns between its factor and the next higher one (for 30 days: 1.7x, 4.2x, 9.3x, and 16-18x above the 14.4x page),
so exactly the pairs below that burn rate fire, at the first evaluation that has two samples; after at most ten
ticks the errors drop to half the sustainable rate (less for periods whose lowest factor is under 1) and the case
checks the evaluation at which the pair resolves. The healthy case burns at that lower rate throughout. Queries that
are `{{.window}}` templates cannot be synthesized: their SLOs are reported as untested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import promql_parser

from generators import naming, promql
from generators.alerts import Alert, pair_labels
from generators.promql import GeneratorError
from generators.synthetic import (
    Matcher,
    Prediction,
    Series,
    Variant,
    agreed,
    counter,
    divide,
    matches,
    satisfy,
    sum_rate,
    violate,
)
from generators.unittests import Case, Check, Context, clock, expected, timeline_checks
from slos.models import SLO, EventSelector, LatencyBudgetObjective, RatioObjective, duration_seconds
from slos.windows import WindowPair, window_pairs

_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _op(op: promql_parser.MatchOp) -> str:
    return next(text for candidate, text in _OPS if candidate == op)


# Errors last at most this many ticks: promtool evaluates every rule at every tick, so long cases are slow, and the
# first two evaluations already prove the factor and the labels.
MAX_BAD_TICKS = 10


class Untestable(Exception):
    """The SLO's series cannot be synthesized (a template query, or matchers no simple value satisfies)."""


@dataclass(frozen=True)
class Events:
    """How to turn (total, bad) events per tick into series, and how the SLI reads them back."""

    streams: tuple[tuple[dict[str, str], str], ...]  # (labels, role): role is "event", "other" or "total"
    event: tuple[Matcher, ...]  # the good or bad selector (latency: the threshold bucket)
    total: tuple[Matcher, ...]
    counts_bad: bool  # the event selector counts bad events (else good ones)

    def series(self, totals: Sequence[float], bads: Sequence[float], missing: int = 0) -> tuple[Series, ...]:
        made = []
        for labels, role in self.streams:
            events = list(bads) if self.counts_bad else [t - b for t, b in zip(totals, bads, strict=True)]
            increments = {"event": events, "other": [t - e for t, e in zip(totals, events, strict=True)]}
            values = counter(increments.get(role, list(totals)))
            made.append(Series(labels, (None,) * missing + values[missing:]))
        return tuple(made)


def _matchers(selection: EventSelector) -> tuple[Matcher, ...]:
    if selection.metric is not None:
        return (("__name__", "=", selection.metric), *((k, "=", v) for k, v in sorted(selection.matchers.items())))
    assert selection.query is not None
    if promql.templated(selection.query):
        raise Untestable("its queries are {{.window}} templates, which the generator cannot synthesize series for")
    expr = promql_parser.parse(selection.query)
    assert isinstance(expr, promql_parser.VectorSelector)
    found: list[Matcher] = [("__name__", "=", expr.name)] if expr.name else []
    return (*found, *((m.name, _op(m.op), m.value) for m in expr.matchers.matchers))


def _name(matchers: Sequence[Matcher]) -> str:
    return next((value for label, op, value in matchers if label == "__name__" and op == "="), "")


def events_of(ctx: Context, slo: SLO) -> Events:
    objective = slo.objective
    if isinstance(objective, LatencyBudgetObjective):
        base = ctx.base_labels(objective.metric, objective.matchers)
        bucket = {**base, "__name__": f"{objective.metric}_bucket", "le": repr(float(objective.threshold))}
        count = {**base, "__name__": f"{objective.metric}_count"}
        good: tuple[Matcher, ...] = (("__name__", "=", bucket["__name__"]), ("le", "=", bucket["le"]))
        return Events(((bucket, "event"), (count, "total")), good, (("__name__", "=", count["__name__"]),), False)
    assert isinstance(objective, RatioObjective)
    selection = objective.bad or objective.good
    assert selection is not None
    event, total = _matchers(selection), _matchers(objective.total)
    base = ctx.base_labels(_name(total), {})
    total_labels = satisfy(total, base)
    if total_labels is None:
        raise Untestable("no simple label values satisfy its total selector")
    if _name(event) == _name(total):
        event_labels = satisfy((*event, *total), base)
        other = violate(event, event_labels, total) if event_labels is not None else None
        if event_labels is None or other is None:
            raise Untestable("no simple label values separate its events from the rest of the total")
        streams: tuple[tuple[dict[str, str], str], ...] = ((event_labels, "event"), (other, "other"))
    else:
        event_labels = satisfy(event, ctx.base_labels(_name(event), {}))
        if event_labels is None or matches(event_labels, total):
            raise Untestable("no simple label values satisfy its event selector")
        streams = ((event_labels, "event"), (total_labels, "total"))
    return Events(streams, event, total, objective.bad is not None)


@dataclass(frozen=True)
class Reading:
    """How the rules read the synthetic series: windows in seconds, literals as Prometheus parses them."""

    events: Events
    tick: float
    budget: float
    windows: dict[str, float]  # production window name -> profile window seconds

    def error_ratio(self, series: Sequence[Series], at: int, window: str, variant: Variant) -> float | None:
        seconds = self.windows[window]
        total = sum_rate(series, self.events.total, self.tick, at, seconds, variant)
        if total is None:
            return None
        event = sum_rate(series, self.events.event, self.tick, at, seconds, variant) or 0.0
        share = divide(event, total)
        return share if self.events.counts_bad else 1 - share

    def burn(self, series: Sequence[Series], at: int, window: str, variant: Variant) -> float | None:
        ratio = self.error_ratio(series, at, window, variant)
        return None if ratio is None else divide(ratio, self.budget)

    def pair(self, series: Sequence[Series], at: int, pair: WindowPair) -> Prediction | None:
        factor = float(promql.number(pair.factor))

        def evaluate(variant: Variant) -> Prediction | None:
            long, short = self.burn(series, at, pair.long, variant), self.burn(series, at, pair.short, variant)
            if long is None or short is None:
                return None
            return Prediction(long > factor and short > factor, (long,))

        return agreed(evaluate, f"the {pair.long}/{pair.short} burn rate at tick {at}")


def _burn_levels(factors: Sequence[float], budget: float) -> list[float]:
    """A burn rate between each factor and the next higher one (the top one: halfway to an all-errors ratio)."""
    ordered = sorted(factors)
    levels = []
    for index, factor in enumerate(ordered):
        ceiling = ordered[index + 1] if index + 1 < len(ordered) else min(factor * 1.5, (factor + 1 / budget) / 2)
        levels.append(float(f"{math.sqrt(factor * ceiling):.2g}"))
    return levels


def burn_cases(ctx: Context, slo: SLO, rules: dict[str, Alert]) -> tuple[Case, ...]:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective) and slo.burn_rate is not None
    name = slo.burn_rate.name
    pairs = window_pairs(objective.period)
    budget = promql.error_budget(objective.target)
    events = events_of(ctx, slo)
    windows = {w: duration_seconds(ctx.profile.window(w)) for p in pairs for w in (p.long, p.short)}
    reading = Reading(events, ctx.tick, float(promql.number(budget)), windows)
    per_tick = 10.0 ** max(4, math.ceil(math.log10(40 / budget)))
    healthy_burn = min(0.5, min(p.factor for p in pairs) / 2)
    healthy = round(healthy_burn * budget * per_tick)
    healthy_burn = healthy / per_tick / budget
    alerts = {(p.long, p.short): next(r for r in rules.values() if r.alert == name and _is(r, p)) for p in pairs}
    out = {naming.SLO_LABEL: slo.name}

    def firing_at(series: Sequence[Series], at: int) -> tuple[tuple[WindowPair, Prediction], ...]:
        found = []
        for p in pairs:
            prediction = reading.pair(series, at, p)
            if prediction is not None and prediction.active:
                found.append((p, prediction))
        return tuple(found)

    def check(series: Sequence[Series], at: int) -> Check:
        shown = [expected(alerts[(p.long, p.short)], prediction, out) for p, prediction in firing_at(series, at)]
        if any(alert is None for alert in shown):
            raise GeneratorError(f"{name}: the annotations at tick {at} cannot be predicted exactly")
        exact = [alert for alert in shown if alert is not None]
        return Check(at * ctx.tick, name, tuple(sorted(exact, key=lambda e: sorted(e.labels.items()))))

    cases = []
    quiet_ticks = 10
    quiet = events.series([per_tick] * quiet_ticks, [healthy] * quiet_ticks)
    silent = (check(quiet, 1), check(quiet, quiet_ticks))
    if any(c.alerts for c in silent):
        raise promql.GeneratorError(f"{name}: burning at {healthy_burn:g}x fires an alert")
    cases.append(Case(f"{name} stays silent burning {healthy_burn:.3g}x the error budget", quiet, silent, (name,)))
    levels = dict(
        zip(sorted(pairs, key=lambda p: p.factor), _burn_levels([p.factor for p in pairs], budget), strict=True)
    )
    for p in pairs:
        cases.append(_pair_case(p, levels[p], reading, events, per_tick, healthy, name, firing_at, check, ctx))
    return tuple(cases)


def _pair_case(pair: WindowPair, level: float, reading: Reading, events: Events, per_tick: float, healthy: float,
               name: str, firing_at: Any, check: Any, ctx: Context) -> Case:  # fmt: skip
    """Burn at `level` for one short window, then at the healthy rate; one more error per tick on each retry when an
    evaluation lands exactly on a factor (where float rounding, not the rule, would decide)."""
    bad_ticks = min(math.ceil(reading.windows[pair.short] / ctx.tick), MAX_BAD_TICKS)
    ticks = bad_ticks * 4 + 3
    for extra in range(5):
        bad = round(level * reading.budget * per_tick) + extra
        series = events.series([per_tick] * ticks, [bad] * bad_ticks + [healthy] * (ticks - bad_ticks))
        try:
            states = [any(q == pair for q, _ in firing_at(series, at)) for at in range(ticks + 1)]
            checks = None
            if states[1] and False in states[1:]:
                resolve = states.index(False, 1)
                checks = tuple(check(series, at) for at in sorted({0, 1, resolve - 1, resolve}))
        except GeneratorError:
            continue
        if checks is None:
            raise GeneratorError(f"{name}: the {pair.long}/{pair.short} case does not fire and resolve")
        series = tuple(Series(s.labels, s.values[: resolve + 2]) for s in series)
        burn = bad / per_tick / reading.budget
        return Case(
            f"{name} {pair.long}/{pair.short} ({pair.tier}, over {pair.factor:g}x) fires at {clock(ctx.tick)} "
            f"burning {burn:.3g}x, resolves at {clock(resolve * ctx.tick)} after the burn drops at "
            f"{clock(bad_ticks * ctx.tick)}",
            series,
            checks,
            (name,),
        )
    raise GeneratorError(f"{name}: every {pair.long}/{pair.short} case lands on a factor exactly")


def _is(rule: Alert, pair: WindowPair) -> bool:
    return all(rule.labels.get(key) == value for key, value in pair_labels(pair).items())


def absent_case(ctx: Context, slo: SLO, rule: Alert) -> Case:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    events = events_of(ctx, slo)
    hold = duration_seconds(rule.for_ or "0s")
    missing = math.ceil(hold / ctx.tick) + 2
    ticks = missing + 3
    series = events.series([10.0] * ticks, [0.0] * ticks, missing=missing)
    selector = events.total
    present = [any(s.values[at] is not None for s in series if matches(s.labels, selector)) for at in range(ticks + 1)]
    predictions = [None if p else Prediction(True, (1.0,)) for p in present]
    out = {label: value for label, op, value in selector if op == "=" and label != "__name__"}
    checks, fires, resolves = timeline_checks(rule, predictions, hold, ctx.tick, out)
    return Case(
        f"{rule.alert} fires at {clock(fires)} while the total series is missing, resolves at {clock(resolves)} "
        "when it appears",
        series,
        checks,
        (rule.alert,),
    )
