"""Generated promtool tests of the error-budget SLOs.

Fine cases (every 30s, a few minutes to an hour of series): a healthy case; for every window pair, a steady burn 1 %
over its factor (fires) and 1 % under it (silent), which pins the factor and the error budget; a burst from the
start that stops, whose resolution pins the short window; one namespace burning beside a healthy one (the alert names
the burning namespace only); the budget records the dashboard reads (remaining 1 with no errors, 0 when the burn
spends exactly the budget); a latency budget without its threshold bucket (no page, the absent alert fires); the
absent-metrics alert. Per condition of the SLO's alert policies: a steady burn 1 % over its threshold fires once its
`alert_after` has passed (not one evaluation before), 1 % under stays silent.

Long cases (`<spec>_windows_test.yml`: series every 150s, evaluated every 15m, up to days of series): for every pair, a
healthy stretch as long as its long window, then a burst that fires only once the long window holds enough of it and
resolves once the short window is clear of it, so each window of the pair is told apart from its neighbours; likewise
per policy condition whose lookback window is at most 3d.

Counters start at zero. Every check is made at an evaluation where every rate variant of `generators.synthetic`
(Prometheus 2 and the left-open ranges of Prometheus 3) agrees on whether the alert fires, and asserts `ALERTS`
rather than annotations, so float noise cannot fail it. Queries that are `{{.window}}` templates cannot be
synthesized: their SLOs are reported as untested.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import promql_parser

from generators import naming, promql
from generators.alerts import Alert, pair_labels
from generators.cases import Case, Check, Context, ExprCheck, clock
from generators.rules import SHORTEST_WINDOW, from_records, slo_windows
from generators.synthetic import (
    VARIANTS,
    Matcher,
    Prediction,
    Series,
    Variant,
    counter,
    divide,
    firing_times,
    matches,
    range_start,
    satisfy,
    sum_rate,
    violate,
)
from generators.unittests import timeline_checks
from slos.models import (
    SCOPE_LABELS,
    SLO,
    BurnCondition,
    EventSelector,
    LatencyBudgetObjective,
    RatioObjective,
    duration_seconds,
)
from slos.windows import WindowPair, enabled_pairs, sli_windows

_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _op(op: promql_parser.MatchOp) -> str:
    return next(text for candidate, text in _OPS if candidate == op)


class Untestable(Exception):
    """The SLO's series cannot be synthesized (a template query, or matchers no simple value satisfies)."""


@dataclass(frozen=True)
class Events:
    """How to turn (total, bad) events per tick into series, and how the SLI reads them back."""

    streams: tuple[tuple[dict[str, str], str], ...]  # (labels, role): role is "event", "other" or "total"
    event: tuple[Matcher, ...]  # the good or bad selector (latency: the threshold bucket)
    total: tuple[Matcher, ...]
    counts_bad: bool  # the event selector counts bad events (else good ones)
    latency: bool = False  # a latency budget: good events are a bucket, never defaulted to zero

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
    return selector_matchers(expr)


def selector_matchers(expr: promql_parser.VectorSelector) -> tuple[Matcher, ...]:
    """A parsed selector's matchers, its metric name first where it has one."""
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
        # the +Inf bucket too, so a rule that drops its `le` matcher reads more than the threshold's bucket
        every = {**base, "__name__": f"{objective.metric}_bucket", "le": "+Inf"}
        good: tuple[Matcher, ...] = (("__name__", "=", bucket["__name__"]), ("le", "=", bucket["le"]))
        total: tuple[Matcher, ...] = (("__name__", "=", count["__name__"]),)
        return Events(((bucket, "event"), (every, "total"), (count, "total")), good, total, False, latency=True)
    assert isinstance(objective, RatioObjective)
    selection = objective.bad or objective.good
    if selection is None or objective.total is None:
        raise Untestable("a raw error ratio is a {{.window}} template: the generator cannot synthesize series for it")
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


LONG_SCRAPE = "150s"  # series interval of the long cases (production windows; the profile scales them)
LONG_EVALUATION = "15m"  # evaluation interval of the long-case file
STRADDLE = 0.01  # steady burns this far over and under a factor


@dataclass(frozen=True)
class Reading:
    """How the rules read the synthetic series: samples every `step` seconds, evaluated every `every` samples."""

    events: Events
    step: float
    every: int
    budget: float
    windows: dict[str, float]  # production window name -> profile window seconds
    min_events: float = 0.0  # the SLO's floor of events per long window, in the profile

    def events_count(self, series: Sequence[Series], at: int, window: str, variant: Variant) -> float | None:
        """The total events over `window`: its rate times its seconds, as `increase` extrapolates."""
        seconds = self.windows[window]
        total = sum_rate(series, self.events.total, self.step, at, seconds, variant)
        return None if total is None else total * seconds

    def short_events(self, series: Sequence[Series], at: int, variant: Variant) -> tuple[float, float] | None:
        """(bad, total) events of the 5m event records at sample `at`: no record without traffic samples, nor where a
        latency budget's bucket is missing."""
        seconds = self.windows[SHORTEST_WINDOW]
        total = sum_rate(series, self.events.total, self.step, at, seconds, variant)
        if total is None:
            return None
        event = sum_rate(series, self.events.event, self.step, at, seconds, variant)
        if event is None and self.events.latency:
            return None
        if self.events.counts_bad:
            return (event or 0.0) * seconds, total * seconds
        return (total - (event or 0.0)) * seconds, total * seconds

    def recorded_ratio(self, series: Sequence[Series], at: int, window: str, variant: Variant) -> float | None:
        """The 5m event records at every evaluation in range: bad summed over total summed."""
        first = range_start(at, self.step, self.windows[window], variant)
        evaluations = [t for t in range(first, at + 1) if t % self.every == 0]
        recorded = [self.short_events(series, t, variant) for t in evaluations]
        present = [r for r in recorded if r is not None]
        bad, counted = math.fsum(b for b, _ in present), math.fsum(t for _, t in present)
        return bad / counted if counted > 0 else None

    def error_ratio(self, series: Sequence[Series], at: int, window: str, variant: Variant) -> float | None:
        if from_records(window):
            return self.recorded_ratio(series, at, window, variant)
        seconds = self.windows[window]
        total = sum_rate(series, self.events.total, self.step, at, seconds, variant)
        if total is None or total <= 0:
            return None
        event = sum_rate(series, self.events.event, self.step, at, seconds, variant)
        if event is None and not self.events.counts_bad and self.events.latency:
            return None  # a latency budget's missing bucket: no value, the absent alert speaks
        share = divide(event or 0.0, total)
        return share if self.events.counts_bad else 1 - share

    def burn(self, series: Sequence[Series], at: int, window: str, variant: Variant) -> float | None:
        ratio = self.error_ratio(series, at, window, variant)
        return None if ratio is None else divide(ratio, self.budget)

    def firing(self, series: Sequence[Series], at: int, pair: WindowPair) -> bool | None:
        """Whether the pair's alert fires at sample `at`; None when the rate variants disagree."""
        factor = float(promql.number(pair.factor))
        states = set()
        for variant in VARIANTS:
            long, short = self.burn(series, at, pair.long, variant), self.burn(series, at, pair.short, variant)
            burning = long is not None and short is not None and long > factor and short > factor
            if burning and self.min_events:
                count = self.events_count(series, at, pair.long, variant)
                burning = count is not None and count >= self.min_events
            states.add(burning)
        return states.pop() if len(states) == 1 else None


def alerts_selector(name: str, labels: Mapping[str, str] | None = None) -> str:
    """`ALERTS{alertname="…", alertstate="firing", …}`: what the rule evaluation wrote, without its annotations."""
    parts = {"alertname": name, "alertstate": "firing", **(labels or {})}
    return "ALERTS{" + ", ".join(f"{key}={promql.string(value)}" for key, value in sorted(parts.items())) + "}"


def firing_sample(rule: Alert, out: Mapping[str, str]) -> tuple[dict[str, str], float]:
    labels = {**out, **rule.labels, "__name__": "ALERTS", "alertname": rule.alert, "alertstate": "firing"}
    return labels, 1.0


def transition_checks(states: Sequence[bool | None]) -> list[tuple[int, bool]]:
    """(evaluation, firing) around every change of an agreed state: the last agreed evaluation before it and the
    first after, skipping the evaluations where Prometheus versions would disagree."""
    agreed = [(index, state) for index, state in enumerate(states) if state is not None]
    picked: dict[int, bool] = {}
    for (before, was), (after, now) in itertools.pairwise(agreed):
        if was != now:
            picked[before], picked[after] = was, now
    return sorted(picked.items())


def _burn_levels(factors: Sequence[float], budget: float, times: float = 2) -> dict[float, float]:
    """A burst level per factor: `times` it, or halfway to an all-errors ratio when that is lower."""
    return {factor: min(times * factor, (factor + 1 / budget) / 2) for factor in factors}


def _case(name: str, series: Sequence[Series], *, proves: Sequence[str] = (), checks: Sequence[Check] = (),
          exprs: Sequence[ExprCheck] = (), file: str = "fine") -> Case:  # fmt: skip
    return Case(name, tuple(series), tuple(checks), tuple(proves), tuple(exprs), file=file)


def _alert_checks(rule: Alert, labels: Mapping[str, str], out: Mapping[str, str], picked: Iterable[tuple[int, bool]],
                  step: float) -> tuple[ExprCheck, ...]:  # fmt: skip
    """At each (sample, firing) picked, `ALERTS` of the rule's alert with `labels` holds its sample or nothing."""
    query = alerts_selector(rule.alert, labels)
    return tuple(ExprCheck(at * step, query, (firing_sample(rule, out),) if on else ()) for at, on in picked)


def _fire_and_resolve(states: Sequence[bool | None], every: int, what: str) -> tuple[list[tuple[int, bool]], int, int]:
    """A burst's checks from its agreed state per evaluation, as (sample, firing), with the samples where it first
    fires and then resolves."""
    picked = [(j * every, state) for j, state in transition_checks(states)]
    if not any(state for _, state in picked) or all(state for _, state in picked[1:]):
        raise promql.GeneratorError(f"{what} burst does not fire and resolve")
    fires = next(at for at, state in picked if state)
    return picked, fires, next(at for at, state in picked if not state and at > fires)


def _rounded(expr: str) -> str:
    return f"round({expr}, 0.001)"


def _round(value: float) -> float:
    """round(value, 0.001) as Prometheus computes it."""
    return math.floor(value * 1000 + 0.5) / 1000


def _burn_check(seconds: float, slo: str, window: str, *samples: tuple[Mapping[str, str], float]) -> ExprCheck:
    """The SLO's burn-rate record over `window`, rounded to 0.001, reads `samples` at `seconds`."""
    return ExprCheck(seconds, _rounded(naming.burn_rate_record(window) + promql.slo_selector(slo)), samples)


def _agreed_burn(reading: Reading, series: Sequence[Series], at: int, window: str) -> float | None:
    """The burn rate over `window` at sample `at`, rounded as the check does, when every rate variant reads it alike."""
    values = {reading.burn(series, at, window, variant) for variant in VARIANTS}
    rounded = {None if value is None else _round(value) for value in values}
    return rounded.pop() if len(rounded) == 1 else None


def _budget(objective: RatioObjective | LatencyBudgetObjective) -> tuple[float, float]:
    """The error budget, and events per tick enough that a burn 1 % over a factor is a whole number of bad events."""
    budget = float(promql.number(promql.error_budget(objective.target)))
    return budget, 10.0 ** max(6, math.ceil(math.log10(1000 / budget)))


def _out(slo: SLO, events: Events) -> dict[str, str]:
    """The labels the SLO's records and alerts carry: its name and the scope of its series."""
    scope = events.streams[0][0]
    return {naming.SLO_LABEL: slo.name, **{label: scope[label] for label in SCOPE_LABELS if label in scope}}


def _policy_labels(rule: Alert) -> dict[str, str]:
    return {key: rule.labels[key] for key in (naming.POLICY_LABEL, naming.TIER_LABEL)}


def _condition_timelines(reading: Reading, series: Sequence[Series], condition: BurnCondition, hold: float,
                         samples: Sequence[int], interval: float) -> list[list[bool]]:  # fmt: skip
    """Per rate variant, whether the condition's alert fires at each of `samples` (`interval` seconds apart)."""
    threshold, timelines = float(promql.number(condition.threshold)), []
    for variant in VARIANTS:
        rates = [reading.burn(series, at, condition.lookback_window, variant) for at in samples]
        above = [r is not None and (r >= threshold if condition.op == "gte" else r > threshold) for r in rates]
        timelines.append(firing_times(above, hold, interval))
    return timelines


@dataclass(frozen=True)
class Plan:
    """Everything the cases of one SLO share."""

    name: str
    rules: dict[tuple[str, str], Alert]
    events: Events
    budget: float
    per_tick: float
    out: dict[str, str]
    pairs: tuple[WindowPair, ...]
    conditions: tuple[tuple[Alert, BurnCondition], ...]  # the SLO's alert policies' conditions, compiled
    target: float
    period: str

    @property
    def slo(self) -> str:
        return self.out[naming.SLO_LABEL]

    def case(self, name: str, series: Sequence[Series], *, checks: Sequence[Check] = (),
             exprs: Sequence[ExprCheck] = (), file: str = "fine") -> Case:  # fmt: skip
        """A case that proves this SLO's burn-rate alert."""
        return _case(name, series, proves=(self.name,), checks=checks, exprs=exprs, file=file)

    def pair_checks(self, pair: WindowPair, picked: Iterable[tuple[int, bool]], step: float,
                    out: Mapping[str, str] | None = None) -> tuple[ExprCheck, ...]:  # fmt: skip
        """The pair's alert at each (sample, firing) picked."""
        rule = self.rules[(pair.long, pair.short)]
        return _alert_checks(rule, pair_labels(pair), self.out if out is None else out, picked, step)

    def bad(self, burn: float) -> float:
        return round(burn * self.budget * self.per_tick)

    def steady(self, ticks: int, bad: float) -> tuple[Series, ...]:
        return self.events.series([self.per_tick] * ticks, [bad] * ticks)

    def burst(self, ticks: int, healthy: int, length: int, level: float) -> tuple[Series, ...]:
        """`ticks` of traffic: `healthy` without errors, `length` burning at `level`, then none again."""
        bads = [0.0] * healthy + [self.bad(level)] * length
        return self.events.series([self.per_tick] * ticks, bads + [0.0] * (ticks - len(bads)))


def burn_plan(ctx: Context, slo: SLO, rules: dict[str, Alert]) -> Plan:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective) and slo.burn_rate is not None
    name = slo.burn_rate.name
    pairs = enabled_pairs(slo)
    budget, per_tick = _budget(objective)
    events = events_of(ctx, slo)
    compiled = {
        (r.labels[naming.POLICY_LABEL], r.labels[naming.TIER_LABEL]): r
        for r in rules.values()
        if r.alert == name and naming.POLICY_LABEL in r.labels
    }
    return Plan(
        name=name,
        rules={(p.long, p.short): next(r for r in rules.values() if r.alert == name and _is(r, p)) for p in pairs},
        events=events,
        budget=budget,
        per_tick=per_tick,
        out=_out(slo, events),
        pairs=pairs,
        conditions=tuple(
            (compiled[(policy.name, condition.name)], condition)
            for policy in ctx.spec.policies(slo)
            for condition in policy.conditions
        ),
        target=objective.target,
        period=objective.period,
    )


def burn_cases(ctx: Context, slo: SLO, rules: dict[str, Alert]) -> tuple[Case, ...]:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    plan = burn_plan(ctx, slo, rules)
    windows = {w: duration_seconds(ctx.profile.window(w)) for w in {SHORTEST_WINDOW, *slo_windows(ctx.spec, slo)}}
    floor = ctx.profile.events(slo.min_events or 0)
    fine = Reading(plan.events, ctx.tick, 1, plan.budget, windows, floor)
    step = duration_seconds(ctx.profile.window(LONG_SCRAPE))
    every = round(duration_seconds(ctx.profile.window(LONG_EVALUATION)) / step)
    coarse = Reading(plan.events, step, every, plan.budget, windows, floor)
    cases = [_healthy(ctx, plan, fine), *_straddles(ctx, plan, fine), *_condition_straddles(ctx, plan, fine)]
    if plan.pairs:
        cases.append(_namespaces(ctx, plan, fine))
    cases.append(_budget_values(ctx, plan))
    cases += _bursts(ctx, plan, fine, coarse)
    for rule, condition in plan.conditions:
        if not from_records(condition.lookback_window):  # a lookback past 3d would need weeks of series
            small = windows[condition.lookback_window] <= duration_seconds(ctx.profile.window("30m"))
            cases.append(_condition_burst(plan, fine if small else coarse, rule, condition))
    if isinstance(objective, LatencyBudgetObjective):
        cases.append(_missing_bucket(ctx, plan, slo, rules))
    cases.append(window_ratios_case(plan, coarse))
    return tuple(cases)


def _bursts(ctx: Context, plan: Plan, fine: Reading, coarse: Reading) -> list[Case]:
    """Per pair, a burst from the start (short windows only; with every window's burn-rate record where the rate
    variants agree) and a faster one after a healthy stretch: it reaches the long window's factor sooner, shorter
    series, while the long window's neighbours (half and twice as long) still fire at other evaluations."""
    levels = _burn_levels([p.factor for p in plan.pairs], plan.budget)
    fast = _burn_levels([p.factor for p in plan.pairs], plan.budget, times=4)
    cases = []
    for pair in plan.pairs:
        if fine.windows[pair.short] <= duration_seconds(ctx.profile.window("30m")):
            burst = _burst(plan, fine, pair, levels[pair.factor], healthy_ticks=0)
            cases.append(replace(burst, exprs=(*burst.exprs, *_record_checks(fine, plan, burst))))
        cases.append(_burst(plan, coarse, pair, fast[pair.factor], healthy_ticks=None))
    return cases


def _healthy(ctx: Context, plan: Plan, reading: Reading) -> Case:
    thresholds = [p.factor for p in plan.pairs] + [condition.threshold for _, condition in plan.conditions]
    burn = min(0.5, min(thresholds) / 2)
    ticks = 10
    series = plan.steady(ticks, plan.bad(burn))
    for at in (1, ticks):
        if any(reading.firing(series, at, p) is not False for p in plan.pairs):
            raise promql.GeneratorError(f"{plan.name}: burning at {burn:g}x fires an alert")
    checks = [Check(at * ctx.tick, plan.name, ()) for at in (1, ticks)]
    return plan.case(f"{plan.name} stays silent burning {burn:.3g}x the error budget", series, checks=checks)


def _straddles(ctx: Context, plan: Plan, reading: Reading) -> list[Case]:
    """A steady burn just over and just under each factor: every window reads the same ratio."""
    cases = []
    ticks = 3
    for pair in plan.pairs:
        for sign, verb in ((1, "fires"), (-1, "stays silent")):
            burn = pair.factor * (1 + sign * STRADDLE)
            series = plan.steady(ticks, plan.bad(burn))
            if any(reading.firing(series, at, pair) is not (sign > 0) for at in range(1, ticks + 1)):
                raise promql.GeneratorError(f"{plan.name}: a steady {burn:g}x does not straddle {pair.factor:g}")
            cases.append(
                plan.case(
                    f"{plan.name} {pair.long}/{pair.short} {verb} at a steady {burn:.4g}x ({pair.factor:g}x "
                    f"{'+' if sign > 0 else '-'} {STRADDLE:.0%})",
                    series,
                    exprs=plan.pair_checks(pair, [(at, sign > 0) for at in (1, ticks)], ctx.tick),
                )
            )
    return cases


def _condition_straddles(ctx: Context, plan: Plan, reading: Reading) -> list[Case]:
    """Per alert policy condition, a steady burn just over its threshold fires once `alert_after` has passed since
    the first rate (pending until then), and just under it stays silent."""
    cases = []
    for rule, condition in plan.conditions:
        hold = duration_seconds(rule.for_ or "0s")
        ticks = math.ceil(hold / ctx.tick) + 3
        for sign, verb in ((1, "fires"), (-1, "stays silent")):
            burn = float(promql.number(condition.threshold)) * (1 + sign * STRADDLE)
            series = plan.steady(ticks, plan.bad(burn))
            states = {tuple(t) for t in _condition_timelines(reading, series, condition, hold, range(ticks + 1),
                                                             ctx.tick)}  # fmt: skip
            if len(states) != 1:
                raise promql.GeneratorError(f"{plan.name}: {condition.name} differs between Prometheus versions")
            firing = states.pop()
            if any(firing) is not (sign > 0):
                raise promql.GeneratorError(f"{plan.name}: a steady {burn:g}x does not straddle {condition.name}")
            if sign > 0:
                fires = firing.index(True)
                picked = [(fires - 1, False), (fires, True), (ticks, True)]
                when = f"by {clock(fires * ctx.tick)}, not before"
            else:
                picked, when = [(1, False), (ticks, False)], f"through {clock(ticks * ctx.tick)}"
            cases.append(
                plan.case(
                    f"{plan.name} policy {rule.labels[naming.POLICY_LABEL]} condition {condition.name} (burn rate "
                    f"over {condition.lookback_window} {'>=' if condition.op == 'gte' else '>'} "
                    f"{condition.threshold:g} for {condition.alert_after}) {verb} at a steady {burn:.4g}x {when}",
                    series,
                    exprs=_alert_checks(rule, _policy_labels(rule), plan.out, picked, ctx.tick),
                )
            )
    return cases


def _condition_burst(plan: Plan, reading: Reading, rule: Alert, condition: BurnCondition) -> Case:
    """A healthy stretch as long as the lookback window, then a burst at twice the threshold: the condition fires once
    the lookback window holds enough of it and `alert_after` has passed, and resolves once enough has left it, so the
    lookback window is told apart from half or twice its length."""
    step, every = reading.step, reading.every
    lookback = reading.windows[condition.lookback_window]
    threshold = float(promql.number(condition.threshold))
    level = _burn_levels([threshold], plan.budget)[threshold]
    hold = duration_seconds(rule.for_ or "0s")
    healthy = round(lookback / step)
    burst = math.ceil(threshold / level * lookback / step) + math.ceil(hold / step) + 2 * every
    ticks = healthy + burst + round(lookback / step) + 3 * every
    ticks += -ticks % every
    series = plan.burst(ticks, healthy, burst, level)
    samples = [j * every for j in range(ticks // every + 1)]
    timelines = _condition_timelines(reading, series, condition, hold, samples, every * step)
    states = [col[0] if len(set(col)) == 1 else None for col in zip(*timelines, strict=True)]
    picked, fires, resolves = _fire_and_resolve(states, every, f"{plan.name}: the {condition.name}")
    return plan.case(
        f"{plan.name} policy {rule.labels[naming.POLICY_LABEL]} condition {condition.name}: a {level:.3g}x burst after "
        f"{clock(healthy * step)} without errors fires by {clock(fires * step)} once the {condition.lookback_window} "
        f"window holds enough of it and {condition.alert_after} have passed, resolves by {clock(resolves * step)}",
        series,
        exprs=_alert_checks(rule, _policy_labels(rule), plan.out, picked, step),
        file="fine" if every == 1 else "windows",
    )


def _namespaces(ctx: Context, plan: Plan, reading: Reading) -> Case:
    """Two namespaces run the same job: the one burning pages, named; the healthy one stays out of it."""
    pair = max(plan.pairs, key=lambda p: p.factor)
    ticks = 3
    burning = plan.steady(ticks, plan.bad(_burn_levels([pair.factor], plan.budget)[pair.factor]))
    if reading.firing(burning, ticks, pair) is not True:
        raise promql.GeneratorError(f"{plan.name}: the burning namespace does not fire")
    return plan.case(
        f"{plan.name} {pair.long}/{pair.short} fires for the burning namespace only, beside a healthy one",
        _in_namespace(burning, "payments") + _in_namespace(plan.steady(ticks, 0.0), "search"),
        exprs=plan.pair_checks(pair, [(ticks, True)], ctx.tick, {**plan.out, "namespace": "payments"}),
    )


def _in_namespace(series: Sequence[Series], namespace: str) -> tuple[Series, ...]:
    return tuple(replace(s, labels={**s.labels, "namespace": namespace}) for s in series)


def _uncounted(events: Events, series: Sequence[Series]) -> tuple[Series, ...]:
    """The series without those of the counted events (the good or bad selector, or the threshold bucket)."""
    return tuple(s for s, (_, role) in zip(series, events.streams, strict=True) if role != "event")


def _budget_values(ctx: Context, plan: Plan) -> Case:
    """What the dashboard's budget row reads, per namespace: remaining 1 without errors, 0 once the burn spends
    exactly the budget, every window's burn rate alike (steady series); a trickle of one event per tick still
    records, an idle namespace records nothing (no NaN); the objective and the budget as recorded."""
    ticks = 6
    scenarios = {
        "clean": (plan.per_tick, 0.0, 0.0),
        "spent": (plan.per_tick, plan.bad(1.0), 1.0),
        "trickle": (1.0, 0.0, 0.0),
        "idle": (0.0, 0.0, None),
    }
    series: tuple[Series, ...] = ()
    for namespace, (total, bad, _) in scenarios.items():
        series += _in_namespace(plan.events.series([total] * ticks, [bad] * ticks), namespace)
    # no series of the counted events at all: bad events never happened (0), a latency bucket is missing (no value:
    # the absent alert speaks), good events never happened (all bad)
    none_counted = 0.0 if plan.events.counts_bad else plan.per_tick  # bad events: none; good ones: none either
    series += _in_namespace(_uncounted(plan.events, plan.steady(ticks, none_counted)), "uncounted")
    if plan.events.counts_bad:
        scenarios["uncounted"] = (0.0, 0.0, 0.0)
    elif not plan.events.latency:
        scenarios["uncounted"] = (0.0, 0.0, 1 / plan.budget)
    own = {naming.SLO_LABEL: plan.slo}
    at = ticks * ctx.tick

    def per_namespace(value: Callable[[float], float]) -> tuple[tuple[dict[str, str], float], ...]:
        return tuple(
            ({**plan.out, **own, "namespace": namespace}, value(burn))
            for namespace, (_, _, burn) in sorted(scenarios.items())
            if burn is not None
        )

    remaining = naming.BUDGET_REMAINING_RECORD + promql.slo_selector(plan.slo)
    exprs = [ExprCheck(at, _rounded(remaining), per_namespace(lambda b: 1.0 - b))]
    exprs += [_burn_check(at, plan.slo, window, *per_namespace(lambda b: b)) for window in sli_windows(plan.period)]
    exprs += [
        ExprCheck(at, record + promql.slo_selector(plan.slo), (({**own, "__name__": record}, value),))
        for record, value in ((naming.OBJECTIVE_RECORD, plan.target), (naming.ERROR_BUDGET_RECORD, plan.budget))
    ]
    return _case(
        f"{plan.slo}: the budget remaining reads 1 without errors and 0 when the errors spend exactly the budget, "
        "every window's burn rate alike; a trickle of traffic records, an idle namespace records nothing, one without "
        "a series of its counted events reads as none counted",
        series,
        exprs=exprs,
    )


def _record_checks(reading: Reading, plan: Plan, case: Case) -> list[ExprCheck]:
    """At each of the case's checks, every window's burn-rate record where every rate variant rounds it alike."""
    checks = []
    for exp in case.exprs:
        for window in sli_windows(plan.period):
            value = _agreed_burn(reading, case.series, round(exp.seconds / reading.step), window)
            if value is not None:
                checks.append(_burn_check(exp.seconds, plan.slo, window, (plan.out, value)))
    return checks


def _burst(plan: Plan, reading: Reading, pair: WindowPair, level: float, healthy_ticks: int | None) -> Case:
    """`healthy_ticks` without errors (None: as long as the long window), then a burst at `level` until the long window
    has fired and the short one is full, then no errors again."""
    step, every = reading.step, reading.every
    long, short = reading.windows[pair.long], reading.windows[pair.short]
    healthy = round(long / step) if healthy_ticks is None else healthy_ticks
    if healthy_ticks is None:
        burst = math.ceil(pair.factor / level * long / step) + math.ceil(short / step) + 2 * every
    else:  # from the start every window reads the burst: long enough that the long window outlasts the short one
        burst = max(math.ceil(short / step), math.ceil(1.2 * pair.factor * short / (level - pair.factor) / step))
    ticks = healthy + burst + math.ceil(short / step) + 3 * every
    ticks += -ticks % every
    series = plan.burst(ticks, healthy, burst, level)
    states = [reading.firing(series, j * every, pair) for j in range(ticks // every + 1)]
    picked, fires, resolves = _fire_and_resolve(states, every, f"{plan.name}: the {pair.long}/{pair.short}")
    where = "from the start" if healthy == 0 else f"after {clock(healthy * step)} without errors"
    return plan.case(
        f"{plan.name} {pair.long}/{pair.short} ({pair.tier}, over {pair.factor:g}x): a {level:.3g}x burst {where} "
        f"fires by {clock(fires * step)}, resolves by {clock(resolves * step)} once the {pair.short} window is clear "
        "of it",
        series,
        exprs=plan.pair_checks(pair, picked, step),
        file="windows" if healthy_ticks is None else "fine",
    )


def _missing_bucket(ctx: Context, plan: Plan, slo: SLO, rules: dict[str, Alert]) -> Case:
    """The threshold bucket is not scraped: the count alone must not read as every request slow."""
    assert slo.burn_rate is not None
    absent_rule = next(r for r in rules.values() if r.alert == slo.burn_rate.absent_alert)
    ticks = math.ceil(duration_seconds(absent_rule.for_ or "0s") / ctx.tick) + 2
    at = ticks * ctx.tick
    return _case(
        f"{plan.name} stays silent and {absent_rule.alert} fires when the threshold bucket is missing",
        _uncounted(plan.events, plan.steady(ticks, 0.0)),
        proves=(plan.name, absent_rule.alert),
        exprs=(
            ExprCheck(at, alerts_selector(plan.name), ()),
            ExprCheck(at, alerts_selector(absent_rule.alert), (firing_sample(absent_rule, {}),)),
        ),
    )


def window_ratios_case(plan: Plan, reading: Reading) -> Case:
    """Every window's ratio reads exactly its window (the period's: `generators.period_tests`): the error ratio grows
    with the age of the events (0.5x the budget in the last 5 minutes, up to ~6x three days back), so half or twice a
    window, or another record, reads another ratio. Prometheus 3 leaves out the tick on a range's left edge: a raw
    window's edge tick has no traffic (and the 5m before a recorded window's edge), and the ratio only changes every
    other tick, at a 5m record's edge, so both versions read the same."""
    windows = [w for w in sli_windows(plan.period) if w != plan.period]
    ticks = {w: round(reading.windows[w] / reading.step) for w in windows}
    short = round(reading.windows[SHORTEST_WINDOW] / reading.step)
    at = reading.every * math.ceil((max(ticks.values()) + 2 * short) / reading.every + 1)
    idle = {at - ticks[w] + 1 for w in windows if not from_records(w)}
    idle |= {at - ticks[w] - k for w in windows if from_records(w) for k in range(short)}
    totals = [0.0 if tick in idle else plan.per_tick for tick in range(1, at + 1)]
    bads = [
        float(round(total * (1 + math.floor(math.log2((at - tick) // short + 1))) / 2 * plan.budget))
        for tick, total in zip(range(1, at + 1), totals, strict=True)
    ]
    series = plan.events.series(totals, bads)
    exprs = []
    for window in windows:
        value = _agreed_burn(reading, series, at, window)
        if value is None:
            raise promql.GeneratorError(f"{plan.name}: the {window} ratio differs between Prometheus versions")
        exprs.append(_burn_check(at * reading.step, plan.slo, window, (plan.out, value)))
    return _case(
        f"{plan.slo}: every window's burn rate reads exactly its window, errors growing with their age",
        series,
        exprs=exprs,
        file="windows",
    )


def together_case(ctx: Context, slos: Sequence[SLO]) -> Case | None:
    """Every budgeted SLO spending exactly its budget at once: each SLO's records (burn rates, budget remaining) read
    its own events only."""
    series: list[Series] = []
    exprs: list[ExprCheck] = []
    ticks = 3
    for slo in slos:
        objective = slo.objective
        if not isinstance(objective, RatioObjective | LatencyBudgetObjective):
            continue
        try:
            events = events_of(ctx, slo)
        except Untestable:
            continue
        budget, per_tick = _budget(objective)
        series += events.series([per_tick] * ticks, [round(budget * per_tick)] * ticks)
        labels = _out(slo, events)
        exprs += [_burn_check(ticks * ctx.tick, slo.name, w, (labels, 1.0)) for w in sli_windows(objective.period)]
        remaining = naming.BUDGET_REMAINING_RECORD + promql.slo_selector(slo.name)
        exprs.append(ExprCheck(ticks * ctx.tick, _rounded(remaining), ((labels, 0.0),)))
    names = {str(labels[naming.SLO_LABEL]) for check in exprs for labels, _ in check.samples}
    if len(names) < 2:
        return None
    return _case(
        f"{', '.join(sorted(names))} spend exactly their budgets at once: every SLO's burn rates and budget remaining "
        "read its own events",
        series,
        exprs=exprs,
    )


def _is(rule: Alert, pair: WindowPair) -> bool:
    return all(rule.labels.get(key) == value for key, value in pair_labels(pair).items())


def absent_case(ctx: Context, slo: SLO, rule: Alert) -> Case:
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
    return _case(
        f"{rule.alert} fires at {clock(fires)} while the total series is missing, resolves at {clock(resolves)} "
        "when it appears",
        series,
        checks=checks,
        proves=(rule.alert,),
    )
