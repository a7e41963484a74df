"""Generated promtool unit tests: for every alert, series on which it stays silent, fires at the predicted evaluation
(not one earlier) and resolves after recovery, with its exact labels and annotations.

Threshold alerts: a healthy case, and a case that is bad from the start and recovers. A quantile's observations sit
in the bucket just above the threshold (bad) or at it (healthy), so the p95 is `threshold + (next - threshold) x
0.95` when bad; `rate` needs two samples, so `for: 10m` at a 30s interval fires at 10m30s. An SLO's `min_events`
adds its events to the series and a case that straddles the floor (`generators.threshold_floor_tests`). Burn-rate and
absent alerts: `generators.burn_tests`. Times and values come from `generators.synthetic`, which evaluates the series as
Prometheus does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from featurestore import metrics
from generators import promql, threshold_floor_tests
from generators.alerts import Alert, threshold
from generators.cases import Case, Check, Context, Expected, clock
from generators.synthetic import (
    VARIANTS,
    Prediction,
    Series,
    Variant,
    agreed,
    counter,
    firing_times,
    histogram_quantile,
    rate,
)
from slos import templating
from slos.models import (
    POD_LABELS,
    SLO,
    GaugeObjective,
    Op,
    QuantileObjective,
    ThresholdAlert,
    duration_seconds,
)

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    "!=": lambda a, b: a != b,
    "==": lambda a, b: a == b,
}


def expected(rule: Alert, prediction: Prediction, sample_labels: Mapping[str, str]) -> Expected | None:
    """The alert promtool must see (sample labels overridden by the rule's, annotations expanded), or None when the
    annotations would render differently for the rate variants."""
    labels = {key: val for key, val in sample_labels.items() if key != "__name__"}
    labels.update(rule.labels)
    renders = {
        tuple(templating.render(text, value, sample_labels) for text in rule.annotations.values())
        for value in prediction.values
    }
    if len(renders) != 1:
        return None
    return Expected(labels, dict(zip(rule.annotations, renders.pop(), strict=True)))


def timeline_checks(rule: Alert, predictions: Sequence[Prediction | None], hold: float, step: float,
                    sample_labels: Mapping[str, str]) -> tuple[tuple[Check, ...], float, float]:  # fmt: skip
    """Checks at the last evaluation before the alert fires and the first at which it fires, at the last firing one
    whose value is predictable exactly, and at the first after it resolves; and the times it fires and resolves.

    Only evaluations where every rate variant (Prometheus 2 and 3 ranges) agrees are checked: an evaluation on a
    window boundary, where they differ by one sample, is skipped."""
    per_variant = [
        firing_times([p is not None and p.active_in(variant) for p in predictions], hold, step) for variant in VARIANTS
    ]
    agreed: list[bool | None] = [col[0] if len(set(col)) == 1 else None for col in zip(*per_variant, strict=True)]
    if True not in agreed:
        raise promql.GeneratorError(f"{rule.alert}: the bad series never make it fire")
    fire = agreed.index(True)
    if False not in agreed[fire:]:
        raise promql.GeneratorError(f"{rule.alert}: the recovery never resolves it")
    resolve = agreed.index(False, fire)
    before = [i for i in range(fire) if agreed[i] is False]
    if not before:
        raise promql.GeneratorError(f"{rule.alert}: no evaluation before it fires where every variant agrees")
    shown = {
        i: expected(rule, p, sample_labels)
        for i in range(fire, resolve)
        if agreed[i] is True and (p := predictions[i]) is not None
    }
    exact = sorted(i for i, alert in shown.items() if alert is not None)
    if not exact:
        raise promql.GeneratorError(f"{rule.alert}: its annotations when it fires cannot be predicted exactly")
    checks = [Check(before[-1] * step, rule.alert, ())]
    last_on = max(i for i in range(fire, resolve) if agreed[i] is True)
    if last_on > exact[-1]:  # still firing just before it resolves, annotations unpredictable: the labels alone
        checks.append(Check(last_on * step, rule.alert, (shown[exact[-1]],), labels_only=True))  # type: ignore[arg-type]
    checks += [Check(index * step, rule.alert, (shown[index],)) for index in sorted({exact[0], exact[-1]})]  # type: ignore[arg-type]
    checks.append(Check(resolve * step, rule.alert, ()))
    return tuple(checks), fire * step, resolve * step


def _violates(op: str, value: float, limit: float) -> bool:
    return not math.isnan(value) and COMPARE[op](value, limit)


def _bound(upper: float, bounds: Sequence[float]) -> str:
    index = bounds.index(upper)
    return f"{bounds[index - 1] if index else 0:g}, {upper:g}"


@dataclass(frozen=True)
class _Histogram:
    """A quantile SLO's observations as cumulative bucket series (and a count series when it has an event floor), and
    its alert's prediction at an evaluation, as Prometheus 2 and 3 would evaluate them."""

    ctx: Context
    slo: SLO
    rule: Alert
    objective: QuantileObjective
    bounds: tuple[float, ...]
    labels: dict[str, str]
    limit: float

    @cached_property
    def floored(self) -> bool:
        return threshold_floor_tests.event_floor(self.ctx, self.slo) is not None

    @cached_property
    def window(self) -> float:
        """The quantile's rate window in seconds, on the profile."""
        return duration_seconds(self.ctx.profile.window(self.objective.window))

    def series(self, phases: Sequence[float], increments: Sequence[float] | None = None) -> tuple[Series, ...]:
        """Per tick, every observation at `phases[i]` (a rate of 1/s unless `increments` says how many)."""
        per_tick = threshold_floor_tests.events_per_tick(self.ctx, self.slo, self.ctx.tick)
        observed = increments if increments is not None else [per_tick] * len(phases)
        name = self.objective.metric
        buckets = tuple(
            Series(
                {**self.labels, "__name__": f"{name}_bucket", "le": "+Inf" if math.isinf(b) else repr(b)},
                counter([n if phase <= b else 0.0 for phase, n in zip(phases, observed, strict=True)]),
            )
            for b in self.bounds
        )
        count = Series({**self.labels, "__name__": f"{name}_count"}, buckets[-1].values)
        return (*buckets, count) if self.floored else buckets

    def predict(self, series: tuple[Series, ...], index: int) -> Prediction | None:
        literal = float(promql.number(self.limit))

        def evaluate(variant: Variant) -> Prediction | None:
            rates = [
                (b, rate(s.values, self.ctx.tick, index, self.window, variant))
                for b, s in zip(self.bounds, series, strict=False)
            ]
            if any(r is None for _, r in rates):
                return None
            value = histogram_quantile(self.objective.quantile, [(b, r) for b, r in rates if r is not None])
            return Prediction(_violates(self.objective.op.violated, value, literal), (value,))

        made = agreed(evaluate, f"{self.rule.alert} at {clock(index * self.ctx.tick)}")
        return threshold_floor_tests.floored(made, series[len(self.bounds) :], self.ctx, self.slo, index)


def quantile_cases(ctx: Context, slo: SLO, alert: ThresholdAlert, rule: Alert) -> tuple[Case, ...]:
    objective = slo.objective
    assert isinstance(objective, QuantileObjective)
    limit = threshold(alert, slo)
    family = metrics.find(objective.metric) if ctx.catalog else None
    bounds = (*sorted({*(family.buckets if family else (limit / 2, limit, limit * 2)), limit}), math.inf)
    at = bounds.index(limit)
    bad, healthy = (bounds[at + 1], bounds[at]) if objective.op in (Op.LT, Op.LE) else (bounds[at], bounds[at + 1])
    labels = ctx.base_labels(objective.metric, objective.matchers, objective.by)
    stream = _Histogram(ctx, slo, rule, objective, bounds, labels, limit)
    window = stream.window
    hold = duration_seconds(rule.for_ or "0s")
    out_labels = {"job": labels["job"], **{label: labels[label] for label in objective.by}}
    ticks_to_fire = math.ceil((hold + window) / ctx.tick) + 2
    bad_phases = [bad] * ticks_to_fire + [healthy] * (math.ceil(window / ctx.tick) + 3)
    bad_series = stream.series(bad_phases)
    predictions = [stream.predict(bad_series, index) for index in range(len(bad_phases) + 1)]
    checks, fires, resolves = timeline_checks(rule, predictions, hold, ctx.tick, out_labels)
    healthy_series = stream.series([healthy] * len(bad_phases))
    quiet = [stream.predict(healthy_series, index) for index in range(len(bad_phases) + 1)]
    if any(p is not None and p.active for p in quiet):
        raise promql.GeneratorError(f"{rule.alert}: the healthy series violate the threshold")
    what = f"p{objective.quantile * 100:g} of {objective.metric}"
    recovered = ticks_to_fire * ctx.tick
    straddle = threshold_floor_tests.straddle_case(
        ctx,
        slo,
        rule,
        bad=lambda events: stream.series([bad] * len(events[0] or ()), events[0]),
        predict=stream.predict,
        shown=lambda series: {label: series[label] for label in ("namespace", *out_labels)},
        what=f"every observation in ({_bound(bad, bounds)}]",
    )
    return (
        _silent_then_firing(
            rule,
            silent=f"{rule.alert} stays silent while every observation is at most {healthy:g}",
            healthy=healthy_series,
            silent_at=(fires, len(bad_phases) * ctx.tick),
            firing=f"{rule.alert} fires at {clock(fires)} with every observation in ({_bound(bad, bounds)}] ({what} "
            f"{objective.op.violated} {limit:g} from the first rate), resolves at {clock(resolves)} after the "
            f"observations return at {clock(recovered)}",
            bad=bad_series,
            checks=checks,
        )
        + straddle
    )


def _silent_then_firing(
    rule: Alert,
    *,
    silent: str,
    healthy: tuple[Series, ...],
    silent_at: tuple[float, float],
    firing: str,
    bad: tuple[Series, ...],
    checks: tuple[Check, ...],
) -> tuple[Case, ...]:
    """A threshold alert's two cases: silent on the healthy series (checked at `silent_at`), firing on the bad ones."""
    return (
        Case(silent, healthy, tuple(Check(at, rule.alert, ()) for at in silent_at), (rule.alert,)),
        Case(firing, bad, checks, (rule.alert,)),
    )


def _gauge_values(op: Op, limit: float) -> tuple[float, float]:
    """(healthy, bad) values for a gauge objective: each on the boundary where the op is strict."""
    lower = limit / 2 if limit > 0 else limit - 1
    higher = limit * 1.5 if limit > 0 else limit + 1
    return {
        Op.LT: (lower, limit),
        Op.LE: (limit, higher),
        Op.GT: (higher, limit),
        Op.GE: (limit, lower),
        Op.EQ: (limit, limit - 1),
    }[op]


@dataclass(frozen=True)
class _Gauge:
    """A gauge SLO's series (the gauge, its divisor if any, then its event counters when it has an event floor), and
    its alert's prediction at an evaluation."""

    ctx: Context
    slo: SLO
    objective: GaugeObjective
    labels: dict[str, str]
    limit: float

    DENOMINATOR = 10.0  # the divisor series' value, when the gauge is a ratio

    @property
    def own(self) -> int:
        """How many series are the gauge's own; its event counters follow."""
        return 1 if self.objective.divide_by is None else 2

    def series(self, values: Sequence[float], per_counter: Sequence[Sequence[float] | None] = ()) -> tuple[Series, ...]:
        objective = self.objective
        busy = threshold_floor_tests.events_per_tick(self.ctx, self.slo, 0.0)
        shared = per_counter or threshold_floor_tests.split(self.ctx, self.slo, [busy] * (len(values) - 1))
        events = threshold_floor_tests.gauge_event_series(self.ctx, self.slo, self.labels, shared)
        if objective.divide_by is None:
            gauge = Series({**self.labels, "__name__": objective.metric}, tuple(v / objective.scale for v in values))
            return (gauge, *events)
        ratios = tuple(v / objective.scale * self.DENOMINATOR for v in values)
        return (
            Series({**self.labels, "__name__": objective.metric}, ratios),
            Series({**self.labels, "__name__": objective.divide_by}, (self.DENOMINATOR,) * len(values)),
            *events,
        )

    def measure(self, series: tuple[Series, ...], index: int) -> Prediction:
        objective = self.objective
        raw = series[0].values[index]
        assert raw is not None
        if objective.divide_by is None:
            literal = float(promql.number(self.limit / objective.scale))
            return Prediction(_violates(objective.op.violated, raw, literal), (raw,))
        divisor = series[1].values[index]
        assert divisor is not None
        scale = float(promql.number(objective.scale))
        value = raw / divisor * scale if objective.scale != 1 else raw / divisor
        return Prediction(_violates(objective.op.violated, value, float(promql.number(self.limit))), (value,))

    def predict(self, series: tuple[Series, ...], index: int) -> Prediction | None:
        return threshold_floor_tests.floored(self.measure(series, index), series[self.own :], self.ctx, self.slo, index)

    def out_labels(self) -> dict[str, str]:
        """The labels the alert keeps from the gauge's series."""
        if self.objective.aggregate is not None:
            return {label: self.labels[label] for label in (*POD_LABELS, *self.objective.by) if label in self.labels}
        if self.objective.divide_by is None:
            return {**self.labels, "__name__": self.objective.metric}
        return dict(self.labels)


def gauge_cases(ctx: Context, slo: SLO, alert: ThresholdAlert, rule: Alert) -> tuple[Case, ...]:
    objective = slo.objective
    assert isinstance(objective, GaugeObjective)
    limit = threshold(alert, slo)
    healthy, bad = _gauge_values(objective.op, limit)
    stream = _Gauge(ctx, slo, objective, ctx.base_labels(objective.metric, objective.matchers, objective.by), limit)
    hold = duration_seconds(rule.for_ or "0s")
    out_labels = stream.out_labels()
    ticks = math.ceil(hold / ctx.tick) + 2
    bad_series = stream.series([bad] * ticks + [healthy] * 3)
    predictions: list[Prediction | None] = [stream.predict(bad_series, index) for index in range(ticks + 3)]
    checks, fires, resolves = timeline_checks(rule, predictions, hold, ctx.tick, out_labels)
    healthy_series = stream.series([healthy] * (ticks + 3))
    if any((p := stream.predict(healthy_series, index)) is not None and p.active for index in range(ticks + 3)):
        raise promql.GeneratorError(f"{rule.alert}: the healthy value {healthy:g} violates the objective")
    shown = f"{objective.metric} / {objective.divide_by}" if objective.divide_by else objective.metric
    if objective.scale != 1:
        shown += f" x {objective.scale:g}"
    straddle = threshold_floor_tests.straddle_case(
        ctx,
        slo,
        rule,
        bad=lambda events: stream.series([bad] * (max(len(e or ()) for e in events) + 1), events),
        predict=stream.predict,
        shown=lambda series: {
            key: value for key, value in series.items() if key in (*out_labels, "namespace") and key != "__name__"
        },
        what=f"{shown} at {bad:g}",
    )
    return (
        _silent_then_firing(
            rule,
            silent=f"{rule.alert} stays silent while {shown} is {healthy:g}",
            healthy=healthy_series,
            silent_at=(fires, (ticks + 2) * ctx.tick),
            firing=f"{rule.alert} fires at {clock(fires)} when {shown} is {bad:g} from the start, resolves at "
            f"{clock(resolves)} when it returns to {healthy:g}",
            bad=bad_series,
            checks=checks,
        )
        + straddle
    )


def threshold_cases(ctx: Context, slo: SLO, rules: Mapping[str, Alert]) -> tuple[Case, ...]:
    cases: list[Case] = []
    for alert in slo.alerts:
        make = quantile_cases if isinstance(slo.objective, QuantileObjective) else gauge_cases
        cases.extend(make(ctx, slo, alert, rules[alert.name]))
    return tuple(cases)
