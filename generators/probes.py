"""Generated promtool cases that probe the threshold alerts and the dashboards' records at their edges.

- straddles: one scope just over a threshold beside one just under it (two namespaces for a quantile, which the
  alert aggregates per namespace and job; two pods for a per-pod gauge), steady from the start so every window reads
  the same; only the one over fires, with its labels. A threshold or quantile moved by 2 % either way flips a side.
- target down: two pods, one down; the alert fires for that pod once `for:` has passed, not before.
- dashboard values: the records the panels read (quantiles by job, backend and symbol, rates by symbol and backend,
  the pool ratio) on two label sets with different distributions, asserted rounded to 0.001 so float noise and
  Prometheus 3's left-open ranges cannot fail them.

Checks read `ALERTS` (the firing alert's labels) or the rounded records, never annotations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from featurestore import metrics
from generators import naming, promql, threshold_floor_tests
from generators.alerts import Alert, threshold
from generators.burn_tests import alerts_selector, firing_sample
from generators.cases import SAMPLE_LABELS, Case, Context, ExprCheck
from generators.rules import dashboard_quantiles, dashboard_ratios
from generators.synthetic import Series, counter, histogram_quantile
from slos.models import SLO, GaugeObjective, Op, QuantileObjective, SpecFile, TargetDownAlert, duration_seconds

STRADDLE = 0.01  # how far over and under a threshold the probes sit
PER_TICK = 1_000_000  # observations per tick: fine enough to place a quantile within 1 %
ROUND_TO = 0.001  # dashboard values are asserted as round(value, 0.001)


def _quantile_counts(q: float, prev: float, limit: float, nxt: float, over: bool) -> tuple[int, int]:
    """(observations in (prev, limit], in (limit, next]) per tick so that the q-quantile lands 1 % over the limit, or
    half of the last (1 - q) share of the bucket under it."""
    if over:
        share = min(STRADDLE * limit / (nxt - limit), q / 2)  # where in (limit, next] the quantile falls
        low = round((q - share) / (1 - share) * PER_TICK)
    else:
        target = limit - (limit - prev) * (1 - q) / 2
        low = round(q * PER_TICK * (limit - prev) / (target - prev))
    return low, PER_TICK - low


def _histogram(labels: Mapping[str, str], metric: str, bounds: Sequence[float], per_bucket: Mapping[float, int],
               ticks: int) -> tuple[Series, ...]:  # fmt: skip
    """Cumulative bucket series (and _count) for `per_bucket` observations per tick at each upper bound."""
    made = []
    cumulative = 0
    for bound in bounds:
        cumulative += per_bucket.get(bound, 0)
        le = "+Inf" if math.isinf(bound) else repr(float(bound))
        made.append(Series({**labels, "__name__": f"{metric}_bucket", "le": le}, counter([cumulative] * ticks)))
    made.append(Series({**labels, "__name__": f"{metric}_count"}, counter([cumulative] * ticks)))
    return tuple(made)


def quantile_straddle(ctx: Context, slo: SLO, rule: Alert) -> Case | None:
    objective = slo.objective
    assert isinstance(objective, QuantileObjective)
    if objective.op not in (Op.LT, Op.LE) or not ctx.catalog:
        return None
    family = metrics.find(objective.metric)
    assert family is not None
    limit = threshold(next(a for a in slo.alerts if a.name == rule.alert), slo)
    bounds = [*family.buckets, math.inf]
    index = bounds.index(limit)
    prev, nxt = (bounds[index - 1] if index else 0.0), bounds[index + 1]
    if math.isinf(nxt):
        return None
    window = duration_seconds(ctx.profile.window(objective.window))
    hold = duration_seconds(rule.for_ or "0s")
    ticks = math.ceil((window + hold) / ctx.tick) + 3
    base = ctx.base_labels(objective.metric, objective.matchers, objective.by)
    series: list[Series] = []
    shown = {}
    for namespace, over in (("over", True), ("under", False)):
        low, high = _quantile_counts(objective.quantile, prev, limit, nxt, over)
        rates = [(b, float(low if b >= limit else 0) + (high if b >= nxt else 0)) for b in bounds]
        shown[namespace] = histogram_quantile(objective.quantile, rates)
        if (shown[namespace] >= limit) != over:
            raise promql.GeneratorError(f"{rule.alert}: the {namespace} probe lands on the wrong side of {limit:g}")
        series += _histogram({**base, "namespace": namespace}, objective.metric, bounds, {limit: low, nxt: high}, ticks)
    out = {"namespace": "over", "job": base["job"], **{label: base[label] for label in objective.by}}
    return Case(
        f"{rule.alert} fires for a namespace at p{objective.quantile * 100:g} {shown['over']:.4g} and not for one at "
        f"{shown['under']:.4g} (threshold {limit:g}, {STRADDLE:.0%} apart at most)",
        tuple(series),
        (),
        (rule.alert,),
        (ExprCheck(ticks * ctx.tick, alerts_selector(rule.alert), (firing_sample(rule, out),)),),
    )


def gauge_straddle(ctx: Context, slo: SLO, rule: Alert) -> Case | None:
    """Two pods, one just on the violating side of the threshold, one just on the other: only the first fires."""
    objective = slo.objective
    assert isinstance(objective, GaugeObjective)
    limit = threshold(next(a for a in slo.alerts if a.name == rule.alert), slo)
    violated = objective.op.violated
    if violated in ("==", "!="):
        return _per_pod_equality(ctx, slo, rule)
    delta = abs(limit) * STRADDLE or STRADDLE
    low_bad = violated in ("<", "<=")
    values = {
        "bad:8000": limit - delta if low_bad else limit + delta,
        "good:8000": limit + delta if low_bad else limit - delta,
    }
    hold = duration_seconds(rule.for_ or "0s")
    ticks = math.ceil(hold / ctx.tick) + 2
    base = ctx.base_labels(objective.metric, objective.matchers, objective.by)
    series: list[Series] = []
    denominator = 1000.0
    for instance, value in values.items():
        labels = {**base, "instance": instance}
        if objective.divide_by is None:
            series.append(Series({**labels, "__name__": objective.metric}, (value / objective.scale,) * (ticks + 1)))
        else:
            numerator = value / objective.scale * denominator
            series.append(Series({**labels, "__name__": objective.metric}, (numerator,) * (ticks + 1)))
            series.append(Series({**labels, "__name__": objective.divide_by}, (denominator,) * (ticks + 1)))
        series += _events(ctx, slo, labels, ticks)
    bad = {**base, "instance": "bad:8000"}
    if objective.aggregate is not None:
        out = {label: bad[label] for label in (*("namespace", "job", "instance"), *objective.by) if label in bad}
    else:
        out = bad
    return Case(
        f"{rule.alert} fires for the pod at {values['bad:8000']:g} and not for the one at {values['good:8000']:g} "
        f"(threshold {limit:g})",
        tuple(series),
        (),
        (rule.alert,),
        (ExprCheck(ticks * ctx.tick, alerts_selector(rule.alert), (firing_sample(rule, out),)),),
    )


def _per_pod_equality(ctx: Context, slo: SLO, rule: Alert) -> Case:
    objective = slo.objective
    assert isinstance(objective, GaugeObjective)
    limit = threshold(next(a for a in slo.alerts if a.name == rule.alert), slo)
    hold = duration_seconds(rule.for_ or "0s")
    ticks = math.ceil(hold / ctx.tick) + 2
    base = {**ctx.base_labels(objective.metric, objective.matchers, objective.by), "namespace": "prod"}
    bad_value = limit - 1 if objective.op is Op.EQ else limit
    good_value = limit if objective.op is Op.EQ else limit + 1
    series: tuple[Series, ...] = (
        Series({**base, "instance": "bad:8000", "__name__": objective.metric}, (bad_value,) * (ticks + 1)),
        Series({**base, "instance": "good:8000", "__name__": objective.metric}, (good_value,) * (ticks + 1)),
    )
    if objective.aggregate in ("min", "max"):
        # the bad pod scraped twice (a second endpoint): the aggregation must still pick its worst series
        series += (
            Series(
                {**base, "instance": "bad:8000", "endpoint": "second", "__name__": objective.metric},
                (good_value,) * (ticks + 1),
            ),
        )
    for instance in ("bad:8000", "good:8000"):
        series += _events(ctx, slo, {**base, "instance": instance}, ticks)
    bad = {**base, "instance": "bad:8000"}
    keep = ("namespace", "job", "instance", *objective.by) if objective.aggregate is not None else tuple(bad)
    out = {label: bad[label] for label in keep if label in bad}
    return Case(
        f"{rule.alert} fires for the pod at {bad_value:g} and not for the one at {good_value:g}",
        series,
        (),
        (rule.alert,),
        (ExprCheck(ticks * ctx.tick, alerts_selector(rule.alert), (firing_sample(rule, out),)),),
    )


def _events(ctx: Context, slo: SLO, labels: Mapping[str, str], ticks: int) -> tuple[Series, ...]:
    """A floored gauge's event counters for one pod, busy enough that every window reaches the floor."""
    busy = threshold_floor_tests.events_per_tick(ctx, slo, 0.0)
    return threshold_floor_tests.gauge_event_series(
        ctx, slo, labels, threshold_floor_tests.split(ctx, slo, [busy] * ticks)
    )


def target_down_case(ctx: Context, spec: SpecFile, down: TargetDownAlert, rule: Alert) -> Case:
    hold = duration_seconds(rule.for_ or "0s")
    ticks = math.ceil(hold / ctx.tick) + 2
    job = rule.expr.split('job="', 1)[1].split('"', 1)[0]
    series = (
        Series({"__name__": "up", "job": job, "instance": "down:8000"}, (0.0,) * (ticks + 1)),
        Series({"__name__": "up", "job": job, "instance": "up:8000"}, (1.0,) * (ticks + 1)),
        Series({"__name__": "up", "job": "another", "instance": "down:9100"}, (0.0,) * (ticks + 1)),
    )
    out = {"job": job, "instance": "down:8000"}
    last_pending = math.floor(hold / ctx.tick) - 1
    return Case(
        f"{rule.alert} fires for the pod whose scrape fails once it has been down {down.for_}, not before, and not "
        "for the pod that answers nor for another job's target",
        series,
        (),
        (rule.alert,),
        (
            ExprCheck(last_pending * ctx.tick, alerts_selector(rule.alert), ()),
            ExprCheck(ticks * ctx.tick, alerts_selector(rule.alert), (firing_sample(rule, out),)),
        ),
    )


# Two label sets with different latency distributions, so a dropped grouping label shows in the records.
_DASHBOARD_SETS: tuple[tuple[dict[str, str], dict[float, int]], ...] = (
    ({metrics.LABEL_BACKEND: metrics.BACKEND_POSTGRESQL, metrics.LABEL_SYMBOL: "AAPL"}, {1.0: 6, 2.0: 3, 5.0: 1}),
    ({metrics.LABEL_BACKEND: metrics.BACKEND_DUCKDB, metrics.LABEL_SYMBOL: "MSFT"}, {5.0: 2, 10.0: 1, 25.0: 1}),
)
_CACHE_RATES: dict[str, tuple[int, int]] = {"AAPL": (9, 1), "MSFT": (3, 2)}  # hits, misses per tick
_POOL: tuple[tuple[str, float, float], ...] = (("a:8000", 3, 10), ("b:8000", 5, 10))  # instance, active, total


def dashboard_case(ctx: Context, spec: SpecFile) -> Case | None:
    """The records every panel reads, on two label sets: quantiles, rates and the pool ratio, rounded."""
    if not ctx.catalog:
        return None
    job = ctx.spec.service
    window = duration_seconds(ctx.profile.window("5m"))
    ticks = math.ceil(window / ctx.tick) * 2
    at = ticks * ctx.tick
    series: list[Series] = []
    histograms = {metric for metric, _, _, _ in dashboard_quantiles(spec)}
    for metric in sorted(histograms):
        family = metrics.find(metric)
        assert family is not None
        bounds = [*family.buckets, math.inf]
        for labels, per_bucket in _DASHBOARD_SETS:
            own = {"job": job, "instance": ctx.profile.scrape_target, **_family_labels(family.labels, labels)}
            filled = {b: per_bucket.get(b, 0) for b in bounds}
            series += _histogram(own, metric, bounds, filled, ticks)
    for labels, _ in _DASHBOARD_SETS:
        hits, misses = _CACHE_RATES[labels[metrics.LABEL_SYMBOL]]
        own = {"job": job, "instance": ctx.profile.scrape_target, metrics.LABEL_SYMBOL: labels[metrics.LABEL_SYMBOL]}
        series.append(Series({**own, "__name__": metrics.HITS.name}, counter([hits] * ticks)))
        series.append(Series({**own, "__name__": metrics.MISSES.name}, counter([misses] * ticks)))
    for instance, active, total in _POOL:
        own = {"job": job, "instance": instance}
        series.append(Series({**own, "__name__": metrics.POOL_ACTIVE.name}, (active,) * (ticks + 1)))
        series.append(Series({**own, "__name__": metrics.POOL_TOTAL.name}, (total,) * (ticks + 1)))
    exprs = [*_quantile_checks(spec, job, at), *_rate_checks(job, at, ctx.tick), *_ratio_checks(spec, job, at)]
    return Case(
        "the dashboards' records read the quantiles, rates and pool ratio of two label sets",
        tuple(series),
        (),
        (),
        tuple(exprs),
    )


# Per label set, three shapes of observations (bound -> count per tick) for the windowed case.
# Different totals per shape, so the counts' rates move with the window too.
_SHAPES: dict[str, tuple[dict[float, int], dict[float, int], dict[float, int]]] = {
    "AAPL": ({1.0: 10}, {10.0: 20}, {50.0: 30}),
    "MSFT": ({5.0: 20}, {25.0: 10}, {100.0: 5}),
}
_CACHE_SHAPES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {  # hits, misses: (a, b, c)
    "AAPL": ((2, 1, 3), (1, 1, 2)),
    "MSFT": ((1, 3, 2), (2, 1, 1)),
}


def _phases(w: int, a: Mapping[float, int], b: Mapping[float, int], c: Mapping[float, int]) -> tuple[
    list[dict[float, int]], dict[float, int]]:  # fmt: skip
    """Increments per tick over 2w + 5 ticks, and the increment rate a window of w ticks reads.

    The last w/2 ticks read (w-1)a, the w/2 - 1 before them (w-1)b, then one tick v5 = (w/2 - 1)b + (w/2)a, the
    mean of the w - 1 ticks after it; then w - 1 ticks of v5 + (2w - 1)c; then v10 = v5 + (w - 1)c, the mean of the
    2w - 1 ticks after it, from the start. So half a window reads a, a window v5, twice a window v10; and the tick on
    each range's left edge, which Prometheus 3 leaves out, holds exactly the mean of the rest of its range, so both
    versions read the same rate."""
    bounds = sorted({*a, *b, *c})
    half = w // 2

    def mix(*terms: tuple[int, Mapping[float, int]]) -> dict[float, int]:
        return {bound: sum(k * vector.get(bound, 0) for k, vector in terms) for bound in bounds}

    v1, v2 = mix((w - 1, a)), mix((w - 1, b))
    v5 = mix((half - 1, b), (half, a))
    v3 = {bound: v5[bound] + (2 * w - 1) * c.get(bound, 0) for bound in bounds}
    v10 = {bound: v5[bound] + (w - 1) * c.get(bound, 0) for bound in bounds}
    early = 6
    ticks = [v10] * early + [v3] * (w - 1) + [v5] + [v2] * (half - 1) + [v1] * half
    return ticks, v5


def windowed_dashboard_case(ctx: Context, spec: SpecFile) -> Case | None:
    """The dashboard records read exactly their 5m window: observations change shape half a window and a whole
    window back, so a record over half or twice the window reads other quantiles and rates."""
    if not ctx.catalog:
        return None
    job = ctx.spec.service
    w = round(duration_seconds(ctx.profile.window("5m")) / ctx.tick)
    if w % 2:
        return None
    series: list[Series] = []
    sets: list[tuple[Mapping[str, str], Mapping[float, float]]] = []
    cache: dict[str, tuple[float, float]] = {}
    at = 0.0
    for labels, _ in _DASHBOARD_SETS:
        symbol = labels[metrics.LABEL_SYMBOL]
        ticks, window_rate = _phases(w, *_SHAPES[symbol])
        at = len(ticks) * ctx.tick
        sets.append((labels, window_rate))
        for metric in sorted({metric for metric, _, _, _ in dashboard_quantiles(spec)}):
            family = metrics.find(metric)
            assert family is not None
            bounds = [*family.buckets, math.inf]
            own = {"job": job, "instance": ctx.profile.scrape_target, **_family_labels(family.labels, labels)}
            for bound in bounds:
                per_tick = [sum(n for b, n in tick.items() if b <= bound) for tick in ticks]
                le = "+Inf" if math.isinf(bound) else repr(float(bound))
                series.append(Series({**own, "__name__": f"{metric}_bucket", "le": le}, counter(per_tick)))
            series.append(Series({**own, "__name__": f"{metric}_count"}, counter([sum(t.values()) for t in ticks])))
        rates = []
        own = {"job": job, "instance": ctx.profile.scrape_target, metrics.LABEL_SYMBOL: symbol}
        for name, (x, y, z) in zip((metrics.HITS.name, metrics.MISSES.name), _CACHE_SHAPES[symbol], strict=True):
            scalar_ticks, scalar_rate = _phases(w, {0.0: x}, {0.0: y}, {0.0: z})
            series.append(Series({**own, "__name__": name}, counter([t[0.0] for t in scalar_ticks])))
            rates.append(scalar_rate[0.0])
        cache[symbol] = (rates[0], rates[1])
    exprs = [*_quantile_checks(spec, job, at, sets), *_rate_checks(job, at, ctx.tick, sets, cache)]
    return Case(
        "the dashboards' records read exactly their 5m window: half and twice the window read other values",
        tuple(series),
        (),
        (),
        tuple(exprs),
    )


def _family_labels(names: Sequence[str], values: Mapping[str, str]) -> dict[str, str]:
    return {name: values.get(name, SAMPLE_LABELS.get(name, "a")) for name in names}


def _round(value: float, step: float = ROUND_TO) -> float:
    """round(value, step) as Prometheus computes it: floor(v / step + 0.5) * step, with step a power of ten."""
    inverse = round(1 / step)
    return math.floor(value * inverse + 0.5) / inverse


def _step(values: Sequence[float]) -> float:
    """The rounding step that keeps every value off a rounding edge, where float noise would decide (9.4375 rounds
    to 9.437 or 9.438 to 0.001, but surely to 9.4375 at 0.0001)."""
    for step in (ROUND_TO, ROUND_TO / 10, ROUND_TO * 10):
        if all(abs((value * round(1 / step)) % 1 - 0.5) > 1e-6 for value in values):
            return step
    raise promql.GeneratorError(f"no rounding keeps {values} off an edge")


Sets = Sequence[tuple[Mapping[str, str], Mapping[float, float]]]  # (labels, observations per tick at each bound)


def _quantile_checks(spec: SpecFile, job: str, at: float, sets: Sets = _DASHBOARD_SETS) -> list[ExprCheck]:
    checks = []
    for metric, q, window, by in sorted(dashboard_quantiles(spec)):
        family = metrics.find(metric)
        assert family is not None
        bounds = [*family.buckets, math.inf]
        groups: dict[tuple[str, ...], dict[float, float]] = {}
        for labels, per_bucket in sets:
            own = _family_labels(family.labels, labels)
            key = tuple(own[label] for label in by)
            group = groups.setdefault(key, {b: 0.0 for b in bounds})
            cumulative = 0.0
            for b in bounds:
                cumulative += per_bucket.get(b, 0)
                group[b] += cumulative
        values = {key: histogram_quantile(q, sorted(buckets.items())) for key, buckets in sorted(groups.items())}
        step = _step(list(values.values()))
        samples = tuple(
            ({"job": job, **dict(zip(by, key, strict=True))}, _round(value, step)) for key, value in values.items()
        )
        record = naming.quantile_record(metric, q, window, by)
        checks.append(ExprCheck(at, f"round({record}, {step:g})", samples))
    return checks


def _rate_checks(job: str, at: float, tick: float, sets: Sets = _DASHBOARD_SETS,
                 cache: Mapping[str, tuple[float, float]] = _CACHE_RATES) -> list[ExprCheck]:  # fmt: skip
    checks = []
    for metric, window, by in naming.DASHBOARD_RATES:
        groups: dict[tuple[str, ...], float] = {}
        for labels, per_bucket in sets:
            symbol = labels[metrics.LABEL_SYMBOL]
            per_tick = {
                metrics.HITS.name: cache[symbol][0],
                metrics.MISSES.name: cache[symbol][1],
            }.get(metric, sum(per_bucket.values()))
            key = tuple(labels[label] for label in by)
            groups[key] = groups.get(key, 0.0) + per_tick
        step = _step([rate / tick for rate in groups.values()])
        samples = tuple(
            ({"job": job, **dict(zip(by, key, strict=True))}, _round(rate / tick, step))
            for key, rate in sorted(groups.items())
        )
        checks.append(ExprCheck(at, f"round({naming.rate_record(metric, window, by)}, {step:g})", samples))
    return checks


def _ratio_checks(spec: SpecFile, job: str, at: float) -> list[ExprCheck]:
    active = sum(a for _, a, _ in _POOL)
    total = sum(t for _, _, t in _POOL)
    return [
        ExprCheck(
            at, f"round({naming.gauge_ratio_record(m, d)}, {ROUND_TO})", (({"job": job}, _round(active / total)),)
        )
        for m, d in sorted(dashboard_ratios(spec))
    ]


def probe_cases(ctx: Context, spec: SpecFile, rules: Mapping[str, Alert], *, dashboards: bool) -> tuple[Case, ...]:
    found: list[Case | None] = []
    for slo in spec.slos:
        for alert in slo.alerts:
            rule = rules[alert.name]
            make = quantile_straddle if isinstance(slo.objective, QuantileObjective) else gauge_straddle
            found.append(make(ctx, slo, rule))
    if spec.target_down is not None:
        found.append(target_down_case(ctx, spec, spec.target_down, rules[spec.target_down.name]))
    if dashboards:
        found += [dashboard_case(ctx, spec), windowed_dashboard_case(ctx, spec)]
    return tuple(case for case in found if case is not None)
