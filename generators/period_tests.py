"""Generated promtool case of an error-budget SLO's period SLI (`<spec>_period_test.yml`): on spiky traffic, the
period's error ratio is its bad events over its total events, where sloth's average of the 5m ratios is off by more
than a factor of two.

One and a half periods of raw counters (every 150s), evaluated every 6h: blocks of 6h alternate between busy ones
(`per_tick` events a scrape, burning 3x, then 1x, then 2x the budget, each a half period long) and quiet ones (a
thousandth of the traffic, burning QUIET_BURN). At the end the period ratio must be the events' ratio exactly (within
promtool's float tolerance), while the average of the 5m ratios, the half period and twice the period read another.
The 5m before the period's left edge carry no traffic, so Prometheus 2 (a range closed on the left) and 3 (left-open)
read the same samples. Beside it, in namespaces of their own: a single bad event in the period (a ratio of 1, not
left out as no traffic), and for a latency budget the same traffic with its threshold bucket scraped only from a
quarter period into the period on (the events before it count neither as bad nor as total).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from generators import naming, promql
from generators.alerts import Alert
from generators.burn_tests import LONG_SCRAPE, Plan, Reading, burn_plan
from generators.cases import Case, Context, ExprCheck, clock
from generators.rules import SHORTEST_WINDOW, counts_events
from generators.synthetic import VARIANTS, Series
from slos.models import SLO, LatencyBudgetObjective, RatioObjective, duration_seconds

PERIOD_EVALUATION = "6h"  # evaluation interval of the period file, and the length of a block of steady traffic
PERIOD_SCRAPE = LONG_SCRAPE  # series interval of the period file: a 5m window holds two or three samples
PARTS = (3.0, 1.0, 2.0)  # busy blocks' burn in each half period
QUIET_SHARE = 1000  # a quiet block has this many times fewer events than a busy one
QUIET_BURN = 10.0  # a quiet block's burn (at most half the all-errors level)
TOLERANCE = 1e-9  # how closely every Prometheus version must agree on the period ratio
SIGNIFICANT = 6  # digits a check keeps


def _traffic(plan: Plan, blocks: int, block: int, edge: int) -> tuple[list[float], list[float]]:
    """Per-tick (total, bad) increments: busy and quiet blocks alternating, nothing in the 5m before `edge`."""
    quiet_burn = min(QUIET_BURN, 1 / plan.budget / 2)
    totals: list[float] = []
    bads: list[float] = []
    for index in range(blocks):
        part = PARTS[min(index * len(PARTS) // blocks, len(PARTS) - 1)]
        quiet = index % 2 == 1
        total = plan.per_tick / QUIET_SHARE if quiet else plan.per_tick
        bad = round((quiet_burn if quiet else part) * plan.budget * total)
        totals += [total] * block
        bads += [float(bad)] * block
    for tick in (edge - 1, edge):  # the increments into the edge's samples
        totals[tick - 1] = bads[tick - 1] = 0.0
    return totals, bads


def _bucket_from(plan: Plan, series: tuple[Series, ...], tick: int) -> tuple[Series, ...]:
    """`series` with the counted events' own series (a latency budget's threshold bucket) missing before `tick`."""
    return tuple(
        replace(s, values=(None,) * tick + s.values[tick:]) if role == "event" else s
        for s, (_, role) in zip(series, plan.events.streams, strict=True)
    )


def _agreed(reading: Reading, series: Sequence[Series], at: int, window: str) -> float:
    values = [reading.error_ratio(series, at, window, variant) for variant in VARIANTS]
    present = [value for value in values if value is not None]
    if len(present) != len(values) or max(present) - min(present) > TOLERANCE * max(present):
        raise promql.GeneratorError(f"the {window} ratio differs between Prometheus versions: {values}")
    return present[0]


def _averaged(reading: Reading, series: Sequence[Series], at: int, period: int) -> float:
    """What sloth's period SLI reads: the mean of the 5m ratios recorded at each evaluation of the period."""
    ratios = []
    for tick in range(at - period + reading.every, at + 1, reading.every):
        events = reading.short_events(series, tick, VARIANTS[0])
        if events is not None and events[1] > 0:
            ratios.append(events[0] / events[1])
    return math.fsum(ratios) / len(ratios)


def _rounded_check(seconds: float, expr: str, samples: Sequence[tuple[dict[str, str], float]]) -> ExprCheck:
    """`expr` rounded to about SIGNIFICANT digits of the first sample reads `samples` so rounded. The step is a power of
    two, so Prometheus's `floor(v * (1 / step) + 0.5) / (1 / step)` multiplies and divides exactly on every platform
    (promtool compares floats exactly): only a value within float noise of a rounding edge could differ, and is
    refused."""
    power = math.ceil(math.log2(10**SIGNIFICANT / abs(samples[0][1])))
    rounded = []
    for labels, value in samples:
        scaled = value * 2.0**power
        if abs(scaled - math.floor(scaled) - 0.5) < 1e-3:
            raise promql.GeneratorError(f"{expr}: {value} lies on a rounding edge")
        rounded.append((labels, math.floor(scaled + 0.5) / 2.0**power))
    return ExprCheck(seconds, f"round({expr}, {format(Decimal(2.0**-power), 'f')})", tuple(rounded))


@dataclass(frozen=True)
class Timeline:
    """The period case's clock: samples every `step` seconds, evaluated every `every` samples; the last at `at`."""

    step: float
    every: int
    period: int  # samples in the SLO's period
    at: int


def _namespaces(plan: Plan, t: Timeline) -> dict[str, tuple[list[float], list[float], int]]:
    """Per namespace ("" for none): per-tick (total, bad) increments and the tick its counted events' series is first
    scraped. The spiky traffic; a single bad event in the period (one event alone is a ratio); for a latency budget,
    the spiky traffic again with its threshold bucket first scraped a quarter period into the period."""
    totals, bads = _traffic(plan, t.at // t.every, t.every, t.at - t.period)
    single = [0.0] * t.at
    single[t.at - t.every - 1] = 1.0  # into the sample of the evaluation before the last
    found = {"": (totals, bads, 0), "single": (single, single, 0)}
    if plan.events.latency:
        found["unscraped"] = (totals, bads, t.at - t.period + t.period // t.every // 4 * t.every)
    return found


def spiky_period_case(ctx: Context, plan: Plan) -> Case:
    """The period ratio is the period's bad events over its total events (see the module docstring)."""
    step = duration_seconds(ctx.profile.window(PERIOD_SCRAPE))
    every = round(duration_seconds(ctx.profile.window(PERIOD_EVALUATION)) / step)
    windows = {w: duration_seconds(ctx.profile.window(w)) for w in (SHORTEST_WINDOW, plan.period)}
    period = round(windows[plan.period] / step)
    t = Timeline(step, every, period, 3 * period // every // 2 * every)
    reading = Reading(plan.events, step, every, plan.budget, windows)
    series: list[Series] = []
    ratios: list[tuple[dict[str, str], float]] = []
    for namespace, (totals, bads, scraped) in _namespaces(plan, t).items():
        own = _bucket_from(plan, plan.events.series(totals, bads), scraped)
        # the events' own ratio: the blocks whose evaluation lies in the period (and reads the bucket)
        counted = range(max(t.at - t.period, scraped), t.at)
        true = math.fsum(bads[i] for i in counted) / math.fsum(totals[i] for i in counted)
        ratio = _agreed(reading, own, t.at, plan.period)
        if abs(ratio - true) > TOLERANCE * true:
            raise promql.GeneratorError(f"{plan.slo}: {namespace or 'the'} period ratio is {ratio}, not {true}")
        labels = {**plan.out, "namespace": namespace} if namespace else dict(plan.out)
        series += [replace(s, labels={**s.labels, **labels}) for s in own]
        ratios.append((labels, true))
    true = ratios[0][1]
    averaged = _averaged(reading, series[: len(plan.events.streams)], t.at, period)
    if true / 2 < averaged < true * 2:
        raise promql.GeneratorError(f"{plan.slo}: the period case is not spiky ({true=}, {averaged=})")
    checks = (
        (naming.sli_error_record(plan.period), ratios),
        (naming.BUDGET_REMAINING_RECORD, [(labels, 1 - ratio / plan.budget) for labels, ratio in ratios]),
    )
    return Case(
        name=f"{plan.slo}: the {plan.period} SLI is the period's bad events over its events ({true / plan.budget:.4g}x "
        f"the budget at {clock(t.at * step)}), not the average of its 5m ratios ({averaged / plan.budget:.4g}x) on "
        "busy and quiet blocks of traffic; a single event is a ratio; a latency budget counts no events before its "
        "threshold bucket is scraped",
        series=tuple(series),
        checks=(),
        proves=(),
        exprs=tuple(_rounded_check(t.at * step, r + promql.slo_selector(plan.slo), v) for r, v in checks),
        file="period",
    )


def period_cases(ctx: Context, slo: SLO, rules: dict[str, Alert]) -> tuple[Case, ...]:
    """The spiky period case of an SLO that counts events (a raw error ratio's period averages its 5m ratios)."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    if not counts_events(objective):
        return ()
    return (spiky_period_case(ctx, burn_plan(ctx, slo, rules)),)
