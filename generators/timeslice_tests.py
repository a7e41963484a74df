"""Generated promtool cases of time-slice SLOs (`kind: timeslices`), in their own file (`_timeslices_test.yml`:
series every minute, rules evaluated every 5 minutes, both scaled by the profile) but for the slower pairs' burns.

- slice target: counters whose good fraction is just over, then just under, the slice target (RatioTimeslices: the
  SLO's target); the slice record reads 1 then 0 (`>= bool`). Event SLIs only.
- slice namespaces (event SLIs): one namespace good in its last slice after a bad one with other traffic (a doubled
  window of either side of the share reads it bad), one with a trickle of traffic (under an event a second) and no
  series of counted events (the `or 0 *` fallback's share), one idle (no record, not NaN): each namespace's own.
- threshold slice: verdicts fed as recorded, a slice of them all good but one, then all bad but one: the slice record
  reads 1, then 0 (against the slice target, or against one half where the slice keeps its share of good
  evaluations), so a slice is its share of good evaluations, not its worst or its best one.
- slice share: verdicts every 1/20 of a slice (the case's own series interval), a missing one at each slice's left
  edge so closed and open ranges read alike: a slice exactly at its bar is good, one within 2 % under it bad, and
  the good slice's younger half and the two slices ending with it read shares under the bar.
- windows: six hours of slices (or evaluations), all good for the first hour, where every window reads no error
  (within a band narrower than a 2 % move); at the end, bad and good in turn in bands of age bounded by every
  window's half, itself and its double: each window's error ratio reads its own share of bad slices, within a band
  around what Prometheus 2 and 3 read, and a halved or doubled raw window reads another (not the worst or the best
  slice either); a rolling period too (the mean of the 5m ratios).
- verdict: a threshold query that is a plain selector (a gauge, a summary's quantile) just on the good side of its
  value, then just past it, the threshold itself on the side the op puts it: the verdict reads 1, then 0. A `<`
  threshold on `histogram_quantile(φ, sum by (le) (rate(bucket[w])))`: buckets whose quantile is just under it (its
  younger minutes spread otherwise than its older ones, so a halved or doubled window reads another quantile), then
  on it (more than 1 - φ past the threshold's bucket, the last finite one); the verdict reads 1, then 0. Other
  threshold queries' inputs are not synthesized: the cases below feed their verdicts as recorded.
- budget: the slice record (or the verdicts) fed directly, good fractions spending 1 % under, then 1 % over, the
  error budget over the period (the second hour's share spent in its last 15 minutes where the variants allow, so
  that a period read from a longer window's ratios lags): `slo:error_budget_remaining:ratio > bool 0` reads 1,
  then 0, and a rolling period's burn rate reads 0.99, then 1.01, within half a percent (a 2 % move of a term lands
  past either); the objective and budget records read the spec's. Another SLO's record,
  all good, is fed beside it (here, in the burn and in the threshold slice cases) for the rules that would read past
  their `slo` matcher.
- burn, per enabled pair: the same record burning just under, then just over, the pair's factor, then just under it
  again: the alert is silent one evaluation before it fires, fires with its tier's labels, and resolves once the short
  window reads just under while the long one still burns over (checked with `unittests.timeline_checks`, on the
  evaluations where Prometheus 2 and 3 ranges agree). The fastest pair's case is in the time-slice file; the slower
  pairs', days of slices, in `_timeslice_tiers_test.yml`, the record fed every 5m and evaluated every 3 hours.
- short window, per slower pair: burning 3x its factor, then, at one evaluation, slices clear in the short window but
  for its last shorter window's, burning 1.5x: the windows on either side of the short one read over the factor, it
  reads under, and the alert that fired one evaluation before is silent (a rule reading a neighbour fires). The
  windows read the slices since the case began, so the case lasts a few evaluations of the tiers file.
- rolling period (tiers file): a quarter period of bad slices, half a period of good ones, half a period of slices
  half bad: the period's ratio reads 0.25, where half the period reads 0.5 and twice it 0.4.
- absent: the SLO's input missing, then there: the absent alert fires once missing for its `for:`, not one
  evaluation before, and resolves when it appears; an event SLI's total, or a threshold query that is a plain
  selector. A histogram quantile's buckets there, missing, then back: it fires once `rate` has had under two samples
  in its range for its `for:`, where a halved or doubled range fires an evaluation earlier or later. Another
  threshold query's inputs are not synthesized: none at all, and the alert fires once its `for:` has passed.
- calendar (production profile: the test profile shrinks windows but not the calendar): bad slices up to a period
  boundary; after it, the first step's slices bad and the first half of each later step's: the period's error ratio
  reads 1 before, and after it the mean of the new period's step ratios within a band (not their max; with 30m
  steps, not a 5m window's read at each step, nor the mean without the first step); the recorded period start is
  the boundary the spec names, before it, after it, on it and at the local midnight before it (where an evaluation
  falls on them); in the tiers file, with no slices, the recorded start at every evaluation for three days, and in
  the first hours of 1970's February and March (the month before of another length).

Predictions come from `Timeline`, which evaluates the subqueries as Prometheus does: steps at multiples of the step,
each reading the latest sample at or before it, in ranges closed (Prometheus 2) or open (3) on the left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import promql_parser

from generators import naming, promql, timeslice_promql, timeslices
from generators.alerts import Alert
from generators.burn_tests import Events, Untestable, events_of, selector_matchers
from generators.burn_tests import absent_case as absent_events_case
from generators.calendar import CALENDAR_LOOKBACK, CALENDAR_STEP
from generators.cases import Case, Check, Context, ExprCheck
from generators.cases import clock as clock_text
from generators.profile import format_duration
from generators.synthetic import (
    VARIANTS,
    Matcher,
    Prediction,
    Series,
    Variant,
    agreed,
    counter,
    inside,
    range_start,
    satisfy,
)
from generators.unittests import expected, timeline_checks
from slos.models import SLO, WINDOW_TEMPLATE, Calendar, Op, TimeslicesObjective, duration_seconds
from slos.windows import WindowPair, enabled_pairs

FILE = "timeslices"  # generators.testfile.FILES
EVALUATION = "5m"
SCRAPE = "1m"
# The slower pairs' burn cases replay up to a week of slices: their own file, evaluated every 3 hours on the record
# fed every 5m (promtool's time grows with the evaluations times the subqueries' steps).
TIERS_FILE = "timeslice_tiers"
TIERS_EVALUATION = "3h"
TIERS_SCRAPE = "5m"
LOOKBACK = 300.0  # Prometheus's staleness lookback: a step reads a sample at most this old
UNDER, OVER = 0.5, 2.0  # error ratios as a multiple of the budget, well apart from it
STRADDLE = 0.01  # burns this far under and over a factor


@dataclass(frozen=True)
class Timeline:
    """The values of the record the window ratios read, one per tick from 0, and how the ratios read them."""

    values: tuple[float, ...]
    tick: float
    step: float | None  # the subquery step (the slice); None: the raw samples (one event per evaluation)

    def _at(self, moment: float) -> float | None:
        index = math.floor(moment / self.tick + 1e-9)
        if index < 0:
            return None
        index = min(index, len(self.values) - 1)
        return self.values[index] if moment - index * self.tick <= LOOKBACK else None

    def error_ratio(self, now: float, window: float, variant: Variant, since: float | None = None) -> float | None:
        start = now - window
        spacing = self.step or self.tick
        first = math.floor(start / spacing) * spacing
        moments = [first + k * spacing for k in range(round((now - first) / spacing) + 1)]
        kept = [m for m in moments if inside(m, start, variant) and m <= now + 1e-9]
        if since is not None:
            kept = [m for m in kept if m >= since]
        found = [v for v in (self._at(m) for m in kept) if v is not None]
        return 1 - sum(found) / len(found) if found else None

    def mean_ratio(self, now: float, lookback: float, step: float, window: float, variant: Variant,
                   since: float = 0.0) -> float:  # fmt: skip
        """A subquery's mean: the error ratios over `window` at the multiples of `step` inside the `lookback` that
        ends at `now`, from `since` on."""
        moments = [k * step for k in range(math.floor(now / step + 1e-9) + 1)]
        kept = [m for m in moments if m >= since and inside(m, now - lookback, variant)]
        ratios = [r for m in kept if (r := self.error_ratio(m, window, variant)) is not None]
        return sum(ratios) / len(ratios)


def period_start(calendar: Calendar, now: float) -> float:
    """When the calendar period holding `now` began (what generators.calendar records)."""
    if calendar.duration == "1w":
        return now - (now - calendar.start_seconds) % 604800
    local = now + calendar.standard_offset()
    clock = datetime.fromtimestamp(local, UTC)
    into = (clock.day - 1) * 86400 + local % 86400
    boundary = _month_boundary(calendar)
    if into >= boundary:
        return now - (into - boundary)
    previous = datetime.fromtimestamp(local - into - 1, UTC)
    return now - (into - boundary + _days_in(datetime(previous.year, previous.month, 1)) * 86400)


def _month_boundary(calendar: Calendar) -> float:
    """Seconds from a local month's first midnight to its period boundary (the `start`'s day and time)."""
    when = calendar.when
    return (when.day - 1) * 86400 + when.hour * 3600 + when.minute * 60 + when.second


def _next_month(first: datetime) -> datetime:
    return datetime(first.year + first.month // 12, first.month % 12 + 1, 1)


def _days_in(first: datetime) -> int:
    """Days in the month that begins at `first`."""
    return (_next_month(first) - first).days


def _record(objective: TimeslicesObjective) -> str:
    return naming.TIMESLICE_GOOD_RECORD if objective.slice else naming.THRESHOLD_GOOD_RECORD


def _budget(objective: TimeslicesObjective) -> float:
    return float(promql.number(promql.error_budget(objective.target)))


@dataclass(frozen=True)
class _Clock:
    tick: float
    evaluation: float
    step: float | None

    @classmethod
    def of(cls, ctx: Context, objective: TimeslicesObjective) -> _Clock:
        profile = ctx.profile
        step = duration_seconds(profile.window(objective.slice)) if objective.slice else None
        return cls(duration_seconds(profile.window(SCRAPE)), duration_seconds(profile.window(EVALUATION)), step)

    @classmethod
    def tiers(cls, ctx: Context, objective: TimeslicesObjective) -> _Clock:
        """The slower pairs' clock: the record fed every 5m, evaluated every 3 hours."""
        scrape, evaluation = (duration_seconds(ctx.profile.window(w)) for w in (TIERS_SCRAPE, TIERS_EVALUATION))
        return cls(scrape, evaluation, cls.of(ctx, objective).step)

    def ticks(self, window: str, ctx: Context) -> int:
        return math.ceil(duration_seconds(ctx.profile.window(window)) / self.tick)


def _fed(slo: SLO, values: Sequence[float]) -> Series:
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    return Series({"__name__": _record(objective), naming.SLO_LABEL: slo.name}, tuple(values))


def _beside(ctx: Context, slo: SLO, values: Sequence[float]) -> tuple[Series, ...]:
    """The SLO's fed record and, all good beside it, another time-slice SLO's: a rule that reads past its `slo`
    matcher meets them. Another SLO of the spec, whose rules record the rest; else a made-up one, its window ratios
    fed too."""
    others = [o for o in ctx.spec.slos if o.name != slo.name and isinstance(o.objective, TimeslicesObjective)]
    if others:
        return _fed(slo, values), _fed(others[0], [1.0] * len(values))
    name = f"{slo.name}_neighbour"
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    records = [naming.sli_error_record(w) for w in timeslices.windows(ctx.spec, slo)]
    records += [naming.CALENDAR_ERROR_RECORD] if objective.calendar else []
    ratios = [Series({"__name__": r, naming.SLO_LABEL: name}, (0.0,) * len(values)) for r in records]
    return _fed(slo, values), _fed(slo.model_copy(update={"name": name}), [1.0] * len(values)), *ratios


def _expr_case(name: str, series: tuple[Series, ...], exprs: tuple[ExprCheck, ...]) -> Case:
    """A case that checks expressions (records), no alert."""
    return Case(name=name, series=series, checks=(), proves=(), exprs=exprs, file=FILE)


def _bool_check(seconds: float, expr: str, labels: Mapping[str, str], value: float) -> ExprCheck:
    return ExprCheck(seconds, expr, ((labels, value),))


def _event_slice(ctx: Context, slo: SLO) -> tuple[TimeslicesObjective, Events, _Clock, float] | None:
    """An event slice's objective, its event streams, its clock and the good share a slice must reach; None for a
    threshold slice."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective) and objective.slice is not None
    if objective.threshold is not None:
        return None
    events = events_of(ctx, slo.model_copy(update={"objective": objective.events()}))
    bar = objective.slice_target if objective.slice_target is not None else objective.target
    return objective, events, _Clock.of(ctx, objective), bar


def slice_case(ctx: Context, slo: SLO) -> Case | None:
    """Counters whose good fraction is just over, then just under, what makes a slice good."""
    found = _event_slice(ctx, slo)
    if found is None:
        return None
    objective, events, clock, bar = found
    per_tick = 100_000.0
    half = clock.ticks("10m", ctx)
    # a slice target of 100 %: no bad event, then one per tick
    over = max(per_tick * (1 - bar) * (1 + STRADDLE), 1.0)
    bads = [per_tick * (1 - bar) * (1 - STRADDLE)] * half + [over] * half
    series = events.series([per_tick] * len(bads), bads)
    probe = naming.TIMESLICE_GOOD_RECORD + promql.slo_selector(slo.name)
    expr = probe if objective.slice_target is not None else f"{probe} >= bool {promql.number(bar)}"
    labels = {**{k: v for k, v in events.streams[-1][0].items() if k in ("namespace", "job")}, "slo": slo.name}
    if objective.slice_target is not None:
        labels = {"__name__": naming.TIMESLICE_GOOD_RECORD, **labels}
    return _expr_case(
        f"{slo.name}: a slice is good just over its target and bad just under it",
        series,
        (
            _bool_check(half * clock.tick, expr, labels, 1.0),
            _bool_check(2 * half * clock.tick, expr, labels, 0.0),
        ),
    )


def slice_namespaces_case(ctx: Context, slo: SLO) -> Case | None:
    """Three namespaces of an event slice: one good in its last slice after a bad one with other traffic, one with
    a trickle of traffic and no series of counted events, one without traffic."""
    found = _event_slice(ctx, slo)
    if found is None:
        return None
    objective, events, clock, bar = found
    assert clock.step is not None
    per_slice = round(clock.step / clock.tick)
    now = math.ceil(2 * clock.step / clock.evaluation) * clock.evaluation
    last = round(now / clock.tick) - per_slice
    per_tick = 100_000.0
    # All bad before the last slice, with more traffic where the good events are counted and less where the bad ones
    # are: a doubled window of either side of the share reads a share under the bar.
    before = 2 * per_tick if not events.counts_bad else per_tick / 2
    totals = [before] * last + [per_tick] * per_slice
    bads = [before] * last + [per_tick * (1 - bar) * (1 - STRADDLE)] * per_slice
    trickle = clock.tick / 2  # half an event a second: a guard `> 1` drops it
    sparse = events.series([trickle] * len(totals), [trickle if not events.counts_bad else 0.0] * len(totals))
    idle = events.series([0.0] * len(totals), [0.0] * len(totals))
    series = (
        *_in_namespace(events.series(totals, bads), "steady"),
        *_in_namespace(_uncounted(events, sparse), "trickle"),
        *_in_namespace(_uncounted(events, idle), "idle"),
    )
    fallback = 1.0 if events.counts_bad else 0.0  # the share where no series of counted events exists
    out = {k: v for k, v in events.streams[-1][0].items() if k == "job"}
    steady, trickling = ({**out, "namespace": n, naming.SLO_LABEL: slo.name} for n in ("steady", "trickle"))
    record = naming.TIMESLICE_GOOD_RECORD + promql.slo_selector(slo.name)
    if objective.slice_target is not None:
        named = {"__name__": naming.TIMESLICE_GOOD_RECORD}
        checks = [
            ExprCheck(now, record, (({**named, **steady}, 1.0), ({**named, **trickling}, float(fallback >= bar))))
        ]
    else:
        checks = [
            ExprCheck(
                now, f"{record} >= bool {promql.number(bar)}", ((steady, 1.0), (trickling, float(fallback >= bar)))
            ),
            ExprCheck(now, f"{record} == bool {fallback:g}", ((steady, 0.0), (trickling, 1.0))),
        ]
    return _expr_case(
        f"{slo.name}: a slice reads its own window per namespace; without counted events it falls back to "
        f"{fallback:g}, without traffic it records nothing",
        series,
        tuple(checks),
    )


def _in_namespace(series: Sequence[Series], namespace: str) -> tuple[Series, ...]:
    return tuple(Series({**s.labels, "namespace": namespace}, s.values) for s in series)


def _uncounted(events: Events, series: Sequence[Series]) -> tuple[Series, ...]:
    """The series without those of the counted events."""
    return tuple(s for s, (_, role) in zip(series, events.streams, strict=True) if role != "event")


def _slice_probe(slo: SLO, objective: TimeslicesObjective, bar: float) -> tuple[str, dict[str, str]]:
    """The expression that reads a slice as good (1) or bad (0), and its labels: the slice record against the slice
    target, or a slice kept as its share of good evaluations against `bar`."""
    probe = naming.TIMESLICE_GOOD_RECORD + promql.slo_selector(slo.name)
    if objective.slice_target is None:
        return f"{probe} >= bool {promql.number(bar)}", {naming.SLO_LABEL: slo.name}
    return probe, {"__name__": naming.TIMESLICE_GOOD_RECORD, naming.SLO_LABEL: slo.name}


def _threshold_slice(ctx: Context, slo: SLO, kept: float) -> tuple[TimeslicesObjective, _Clock, float, float] | None:
    """A threshold slice's objective, its clock, the slice's length in seconds and the good share a slice must reach
    (`kept` where the slice is kept as its share); None for other SLOs."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    if objective.threshold is None or objective.slice is None:
        return None
    clock = _Clock.of(ctx, objective)
    assert clock.step is not None
    return objective, clock, clock.step, objective.slice_target if objective.slice_target is not None else kept


def threshold_slice_case(ctx: Context, slo: SLO) -> Case | None:
    """Verdicts of a slice all good but one, then all bad but one: the slice is good, then bad, by its share of good
    evaluations. None where a slice holds too few evaluations for one odd verdict to keep its side of the bar."""
    found = _threshold_slice(ctx, slo, 0.5)
    if found is None:
        return None
    objective, clock, step, bar = found
    per_slice = round(step / clock.tick)  # verdicts in a slice; one more where ranges are closed on the left
    if 1 / per_slice > min(1 - bar, bar) or 1 / per_slice == bar:
        return None
    every = round(clock.evaluation / clock.tick)
    # At an evaluation, after a slice of good verdicts, itself after a slice of bad ones: a range twice the slice's
    # would read them too.
    odd_bad = math.ceil(2 * per_slice / every) * every
    odd_good = math.ceil((odd_bad + per_slice + 2) / every) * every  # a full slice of bad verdicts before it
    values = [0.0] * (odd_bad - per_slice) + [1.0] * per_slice + [0.0] * (odd_good - odd_bad) + [1.0, 0.0]
    verdicts = Series({"__name__": naming.THRESHOLD_GOOD_RECORD, naming.SLO_LABEL: slo.name}, tuple(values))
    neighbours = _beside(ctx, slo, values)[1:]
    probe, labels = _slice_probe(slo, objective, bar)
    return _expr_case(
        f"{slo.name}: a slice of verdicts all good but one is good and one all bad but one is bad",
        (verdicts, *neighbours),
        (_bool_check(odd_bad * clock.tick, probe, labels, 1.0), _bool_check(odd_good * clock.tick, probe, labels, 0.0)),
    )


SHARE_BAR = 0.75  # where a slice kept as its share of good evaluations is probed in the slice share case
SHARE_VERDICTS = 20  # at least this many verdicts a slice in the slice share case


def slice_share_case(ctx: Context, slo: SLO) -> Case | None:
    """Verdicts every 1/20 of a slice: a slice exactly at its bar is good and one just under it (within 2 %) is bad,
    and the good slice's younger half and the two slices ending with it read shares under the bar. None where the
    slice does not split into whole seconds."""
    found = _threshold_slice(ctx, slo, SHARE_BAR)
    if found is None:
        return None
    objective, clock, step, bar = found
    count = next(n for n in range(SHARE_VERDICTS, 100 * SHARE_VERDICTS) if abs(n * bar - round(n * bar)) < 1e-9)
    tick = step / count
    if tick != round(tick) or count % 2:
        return None
    good = round(count * bar)
    under = math.ceil(bar * (count - 1)) - 1  # good verdicts of count - 1: just under the bar
    apart = math.ceil(2 * step / clock.evaluation) * clock.evaluation  # from one checked slice's end to the next
    per_apart, half = round(apart / tick), count // 2
    # A slice's verdicts after a missing one, so ranges closed and open on the left read the same `count`; bad ones
    # before it: a doubled window reads them.
    at_bar = [0.0] * (per_apart - count - 1) + [None] + [1.0] * min(good, half) + [0.0] * (half - min(good, half))
    at_bar += [1.0] * (good - min(good, half)) + [0.0] * (half - good + min(good, half))
    just_under = [0.0] * (per_apart - count - 1) + [None, None] + [1.0] * under + [0.0] * (count - 1 - under)
    values = [*at_bar, *just_under]
    verdicts = Series({"__name__": naming.THRESHOLD_GOOD_RECORD, naming.SLO_LABEL: slo.name}, (0.0, *values))
    neighbours = _beside(ctx, slo, [1.0] * (len(values) + 1))[1:]
    probe, labels = _slice_probe(slo, objective, bar)
    return Case(
        name=f"{slo.name}: a slice of verdicts exactly at {bar:g} good is good and one just under it is bad",
        series=(verdicts, *neighbours),
        checks=(),
        proves=(),
        exprs=(_bool_check(apart, probe, labels, 1.0), _bool_check(2 * apart, probe, labels, 0.0)),
        file=FILE,
        interval=format_duration(tick),
    )


BAND = 0.005  # how far past what Prometheus 2 and 3 read a window's ratio may be
# The window case's length: longer windows read all of it. Up to 3d, each evaluation's subqueries step through the
# whole window, and promtool's time grows with its square.
WINDOW_CASE = "6h"
CALM_SHARE = 6  # the calm start lasts the longest window within this share of the case


def _window_ratios(timeline: Timeline, now: float, window: str, ctx: Context) -> list[float]:
    """A window's error ratio at `now` as each Prometheus reads it; a period window averages the 5m ratios."""
    if not timeslices.averaged(window):
        seconds = duration_seconds(ctx.profile.window(window))
        return [r for v in VARIANTS if (r := timeline.error_ratio(now, seconds, v)) is not None]
    short = duration_seconds(ctx.profile.window(timeslices.SHORTEST_WINDOW))
    evaluation = duration_seconds(ctx.profile.window(EVALUATION))
    found = []
    for variant in VARIANTS:
        ratios = [timeline.error_ratio(k * evaluation, short, variant) for k in range(round(now / evaluation) + 1)]
        kept = [r for r in ratios if r is not None]
        found.append(sum(kept) / len(kept))
    return found


def _banded(now: float, windows: Sequence[float], calm: float, spacing: float, tick: float) -> list[float]:
    """Good (1) and bad (0) values, one per tick up to `now`, by their age at `now`: bad and good in turn between the
    ages of every window, its half and its double, youngest bad, so each window reads a share of bad slices unlike
    its half's and its double's; all good up to `calm`."""
    edges = sorted({edge for w in windows for edge in (w / 2, w, 2 * w) if edge < now - calm})
    values = []
    for k in range(round(now / tick) + 1):
        moment = k * tick
        age = now - math.floor(moment / spacing + 1e-9) * spacing
        band = sum(1 for edge in edges if age > edge + 1e-9)
        values.append(1.0 if moment <= calm + 1e-9 or band % 2 else 0.0)
    return values


def window_case(ctx: Context, slo: SLO) -> Case:
    """Every window after a calm start reads no error; at the end, bad and good slices (or evaluations) in bands of
    age between the windows' halves and doubles: each window reads its own share of bad slices."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    clock = _Clock.of(ctx, objective)
    spacing = clock.step or clock.tick
    now = duration_seconds(ctx.profile.window(WINDOW_CASE))
    every = [w for w in timeslices.windows(ctx.spec, slo) if objective.calendar is None or not timeslices.averaged(w)]
    raw = [duration_seconds(ctx.profile.window(w)) for w in every if not timeslices.averaged(w)]
    calm = max(w for w in raw if w <= now / CALM_SHARE)
    calm = math.floor(calm / clock.evaluation) * clock.evaluation
    values = _banded(now, raw, calm, spacing, clock.tick)
    timeline = Timeline(tuple(values), clock.tick, clock.step)
    labels = {naming.SLO_LABEL: slo.name}
    exprs = []
    for moment in (calm, now):
        for window in every:
            ratios = _window_ratios(timeline, moment, window, ctx)
            record = f"{naming.sli_error_record(window)}{promql.slo_selector(slo.name)}"
            low, high = promql.number(min(ratios) - BAND), promql.number(max(ratios) + BAND)
            exprs += [
                _bool_check(moment, f"{record} > bool {low}", labels, 1.0),
                _bool_check(moment, f"{record} < bool {high}", labels, 1.0),
            ]
    return _expr_case(
        f"{slo.name}: every window reads no error after a calm start, then its own share of bad slices",
        _beside(ctx, slo, values),
        tuple(exprs),
    )


QUANTILE_EVENTS = 1000.0  # observations a tick, times a phase's traffic
QUANTILE_SPILL = (0.005, 0.02)  # the share of observations past the threshold, just under and on it


def _gauge_labels(ctx: Context, query: str) -> dict[str, str] | None:
    """Labels of a series a plain selector query reads (a gauge, such as a summary's quantile), or None."""
    matchers = _plain_selector(query)
    base = {"job": ctx.spec.service, "instance": ctx.profile.scrape_target}
    return None if matchers is None else satisfy(matchers, base)


def verdict_case(ctx: Context, slo: SLO) -> Case | None:
    """A gauge just on the good side of the threshold, then just on the bad side: the verdict reads 1, then 0."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    if objective.threshold is None or WINDOW_TEMPLATE.search(objective.threshold.query):
        return None
    labels = _gauge_labels(ctx, objective.threshold.query)
    if labels is None:
        return None
    sli = objective.threshold
    margin = abs(sli.threshold) * STRADDLE or STRADDLE
    above = sli.op in (Op.LT, Op.LE)  # the bad side
    good, bad = sli.threshold + (-margin if above else margin), sli.threshold + (margin if above else -margin)
    # the threshold itself on the side the op puts it: `<` and `<=` (or `>` and `>=`) told apart
    if sli.op in (Op.LT, Op.GT):
        bad = sli.threshold
    else:
        good = sli.threshold
    clock = _Clock.of(ctx, objective)
    half = clock.ticks("10m", ctx)
    record = {k: v for k, v in labels.items() if k != "__name__"}
    expected = {"__name__": naming.THRESHOLD_GOOD_RECORD, **record, naming.SLO_LABEL: slo.name}
    probe = f"{naming.THRESHOLD_GOOD_RECORD}{promql.slo_selector(slo.name)}"
    moments = (math.floor((half - 1) * clock.tick / clock.evaluation) * clock.evaluation, 2 * half * clock.tick)
    return _expr_case(
        f"{slo.name}: an evaluation is good just on the good side of {sli.threshold:g} and bad just past it, the "
        "threshold itself on the side its op puts it",
        (Series(labels, (good,) * half + (bad,) * (half + 1)),),
        (_bool_check(moments[0], probe, expected, 1.0), _bool_check(moments[1], probe, expected, 0.0)),
    )


_BucketQuery = tuple[float, promql_parser.VectorSelector, float, tuple[str, ...]]


def _bucket_query(query: str) -> _BucketQuery | None:
    """(φ, the bucket selector, its range in seconds, the kept labels) of `histogram_quantile(φ, sum by (le, …)
    (rate(bucket[w])))`, or None."""
    try:
        expr = promql_parser.parse(query)
    except ValueError:
        return None
    while isinstance(expr, promql_parser.ParenExpr):
        expr = expr.expr
    if not isinstance(expr, promql_parser.Call) or expr.func.name != "histogram_quantile":
        return None
    phi, summed = expr.args
    if not isinstance(phi, promql_parser.NumberLiteral) or not isinstance(summed, promql_parser.AggregateExpr):
        return None
    modifier = summed.modifier
    if str(summed.op) != "sum" or modifier is None or str(modifier.type) != "AggModifierType.By":
        return None
    rated = summed.expr
    if not isinstance(rated, promql_parser.Call) or rated.func.name != "rate":
        return None
    (matrix,) = rated.args
    if not isinstance(matrix, promql_parser.MatrixSelector) or matrix.vector_selector.offset is not None:
        return None
    return phi.val, matrix.vector_selector, matrix.range.total_seconds(), tuple(modifier.labels)


def quantile_verdict_case(ctx: Context, slo: SLO) -> Case | None:
    """Buckets of a `<` threshold's histogram quantile: just under the threshold (its younger minutes otherwise
    spread than its older ones), then exactly on it (the quantile past the last finite bucket, the threshold's): the
    verdict reads 1, then 0. None for other queries and ops."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    sli = objective.threshold
    if sli is None or sli.op != Op.LT or sli.threshold <= 0:
        return None
    parsed = _bucket_query(timeslice_promql.threshold_query(objective, ctx.profile))
    if parsed is None or not parsed[1].name or "le" not in parsed[3]:
        return None
    phi, selector, window, kept = parsed
    base = satisfy(selector_matchers(selector), {"job": ctx.spec.service, "instance": ctx.profile.scrape_target})
    if base is None or "le" in base or not 0.98 < phi < 1 - QUANTILE_SPILL[0]:
        return None
    clock = _Clock.of(ctx, objective)
    per_window = math.ceil(window / clock.tick)
    # (traffic, share up to 0.8 of the threshold, share past it) per tick: older and younger minutes under the
    # threshold, then more than 1 - φ past it, where the quantile reads the threshold's bucket bound itself. The
    # last phase has a third of the traffic: a doubled window reads more than φ under the threshold.
    older, younger, at = (3.0, 0.8, QUANTILE_SPILL[0]), (3.0, 0.5, QUANTILE_SPILL[0]), (1.0, 0.5, QUANTILE_SPILL[1])
    calm = math.ceil(2 * per_window * clock.tick / clock.evaluation) * clock.evaluation
    young = max(1, per_window // 2)
    phases = [older] * (round(calm / clock.tick) - young) + [younger] * young + [at] * per_window
    low, bound = 0.8 * sli.threshold, sli.threshold
    rates = {
        repr(low): [t * below for t, below, _ in phases],
        repr(float(bound)): [t * (1 - past) for t, _, past in phases],
        "+Inf": [t for t, _, _ in phases],
    }
    series = tuple(
        Series({**base, "le": le}, counter([round(QUANTILE_EVENTS * r) for r in increments]))
        for le, increments in rates.items()
    )
    labels = {k: v for k, v in base.items() if k in kept and k != "le"}
    expected = {"__name__": naming.THRESHOLD_GOOD_RECORD, **labels, naming.SLO_LABEL: slo.name}
    probe = f"{naming.THRESHOLD_GOOD_RECORD}{promql.slo_selector(slo.name)}"
    checked = calm + per_window * clock.tick
    return _expr_case(
        f"{slo.name}: the histogram quantile just under {sli.threshold:g} is good and on it is bad",
        series,
        (_bool_check(calm, probe, expected, 1.0), _bool_check(checked, probe, expected, 0.0)),
    )


def _period_ratios(timeline: Timeline, now: float, ctx: Context, objective: TimeslicesObjective) -> list[float]:
    """The period's error ratio at `now` as each Prometheus reads it: the rolling period's mean of the 5m ratios, or
    the calendar period's mean of its step's ratios at the subquery steps since the period began."""
    if objective.calendar is None:
        return _window_ratios(timeline, now, objective.period, ctx)
    duration = objective.calendar.duration
    step = duration_seconds(ctx.profile.window(CALENDAR_STEP[duration]))
    lookback = duration_seconds(ctx.profile.window(CALENDAR_LOOKBACK[duration]))
    since = period_start(objective.calendar, now) + step
    return [timeline.mean_ratio(now, lookback, step, step, variant, since) for variant in VARIANTS]


def _plain_selector(query: str) -> tuple[Matcher, ...] | None:
    """The matchers of a threshold query that is a plain selector, the metric name first, or None."""
    try:
        expr = promql_parser.parse(query)
    except ValueError:
        return None
    if not isinstance(expr, promql_parser.VectorSelector) or expr.offset is not None or not expr.name:
        return None
    return selector_matchers(expr)


def absent_case(ctx: Context, slo: SLO, rule: Alert) -> Case | None:
    """The SLO's input missing, then there: the absent alert fires once missing for its `for:`, not one evaluation
    before, and resolves when it appears: an event SLI's total (generators.burn_tests.absent_case), or a threshold
    query that is a plain selector; a histogram quantile's buckets missing between two stretches of traffic. Other
    threshold queries' inputs are not synthesized: none at all, and the alert fires once its `for:` has passed. None
    where it has no `for:` to check."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    if objective.threshold is None:
        return absent_events_case(ctx, slo.model_copy(update={"objective": objective.events()}), rule)
    query = objective.threshold.query
    buckets = _bucket_query(timeslice_promql.threshold_query(objective, ctx.profile))
    if buckets is not None:
        case = _absent_buckets_case(ctx, slo, rule, buckets)
        if case is not None:
            return case
    matchers = None if WINDOW_TEMPLATE.search(query) else _plain_selector(query)
    labels = satisfy(matchers, {"job": ctx.spec.service, "instance": ctx.profile.scrape_target}) if matchers else None
    clock = _Clock.of(ctx, objective)
    hold = duration_seconds(rule.for_ or "0s")
    if matchers is None or labels is None:
        # inputs not synthesized: none at all, the alert fires once its `for:` has passed, not one evaluation before
        at = math.ceil(hold / clock.evaluation) * clock.evaluation
        alert = expected(rule, Prediction(True, (1.0,)), {})
        if at < clock.evaluation or alert is None:
            return None
        return Case(
            name=f"{rule.alert} fires at {clock_text(at)} where the threshold query has no series at all",
            series=(),
            checks=(Check(at - clock.evaluation, rule.alert, ()), Check(at, rule.alert, (alert,))),
            proves=(rule.alert,),
            file=FILE,
        )
    missing = math.ceil((hold + 2 * clock.evaluation) / clock.tick)
    ticks = missing + math.ceil(2 * clock.evaluation / clock.tick)
    value = objective.threshold.threshold
    series = (Series(labels, (None,) * missing + (value,) * (ticks - missing)),)
    # absent() of a missing selector reads the labels of its equality matchers: one dropped changes the alert's labels
    out = {label: wanted for label, op, wanted in matchers if op == "=" and label != "__name__"}
    predictions = [
        None if k * clock.evaluation >= missing * clock.tick else Prediction(True, (1.0,))
        for k in range(math.floor((ticks - 1) * clock.tick / clock.evaluation) + 1)
    ]
    return _absent_timeline(rule, series, predictions, hold, clock, out,
                            ("while the threshold query's series is missing", "when it appears"))  # fmt: skip


def _absent_timeline(rule: Alert, series: tuple[Series, ...], predictions: Sequence[Prediction | None], hold: float,
                     clock: _Clock, labels: Mapping[str, str], when: tuple[str, str]) -> Case:  # fmt: skip
    """The absent alert's case: it fires and resolves as `predictions` say, `when` (it fires, it resolves) named."""
    checks, fires, resolves = timeline_checks(rule, predictions, hold, clock.evaluation, labels)
    return Case(
        name=f"{rule.alert} fires at {clock_text(fires)} {when[0]}, resolves at {clock_text(resolves)} {when[1]}",
        series=series,
        checks=checks,
        proves=(rule.alert,),
        file=FILE,
    )


def _unsampled(presence: Sequence[bool], clock: _Clock, span: float, variant: Variant) -> list[bool]:
    """At each evaluation, whether `rate` over `span` has under two of the samples `presence` says are there."""
    per_evaluation = round(clock.evaluation / clock.tick)
    ats = range(0, len(presence), per_evaluation)
    return [sum(presence[range_start(at, clock.tick, span, variant) : at + 1]) < 2 for at in ats]


def _absent_buckets_case(ctx: Context, slo: SLO, rule: Alert, buckets: _BucketQuery) -> Case | None:
    """A histogram quantile's buckets there, missing, then there again: the absent alert is silent while they are
    there, fires once `rate` has had under two samples in its range for its `for:`, and resolves when they are back.
    They go missing where a halved or a doubled range reads the gap an evaluation earlier or later, and where
    Prometheus 2 and 3 ranges agree. None where the buckets cannot be synthesized."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective) and objective.threshold is not None
    _, selector, window, _ = buckets
    base = satisfy(selector_matchers(selector), {"job": ctx.spec.service, "instance": ctx.profile.scrape_target})
    clock = _Clock.of(ctx, objective)
    per_evaluation = round(clock.evaluation / clock.tick)
    if not selector.name or base is None or "le" in base or per_evaluation * clock.tick != clock.evaluation:
        return None
    hold = duration_seconds(rule.for_ or "0s")
    gap = [False] * math.ceil((2 * window + hold + 3 * clock.evaluation) / clock.tick)
    back = [True] * (2 * per_evaluation + 2)
    first = math.ceil((2 * window + 2 * clock.evaluation) / clock.tick)
    for present in range(first, first + per_evaluation):
        presence = [True] * present + gap + back
        states = [_unsampled(presence, clock, window, variant) for variant in VARIANTS]
        gone = [_unsampled(presence, clock, span, 0).index(True, 1) for span in (window / 2, window, 2 * window)]
        if all(s == states[0] for s in states) and gone[0] < gone[1] < gone[2]:
            break
    else:
        return None
    bound = repr(float(objective.threshold.threshold))
    series = tuple(
        Series({**base, "le": le}, tuple(v if there else None for v, there in zip(totals, presence, strict=True)))
        for le, totals in (
            (bound, counter([9.0] * (len(presence) - 1))),
            ("+Inf", counter([10.0] * (len(presence) - 1))),
        )
    )
    predictions = [Prediction(True, (1.0,)) if unsampled else None for unsampled in states[0]]
    missing = "once the threshold query's buckets have been missing for its range and its for:"
    return _absent_timeline(rule, series, predictions, hold, clock, {}, (missing, "when they are back"))


BUDGET_BURST = "15m"


def budget_case(ctx: Context, slo: SLO) -> Case:
    """Slices spending the error budget to within 1 % under it, then to within 1 % over it, over the period; a rolling
    period's burn rate reads the period's error ratio over the budget."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    budget = _budget(objective)
    clock = _Clock.of(ctx, objective)
    phase = clock.ticks("1h", ctx)
    moments = [math.floor(m * clock.tick / clock.evaluation) * clock.evaluation for m in (phase - 1, 2 * phase - 1)]

    def spending(second: float, burst: int) -> list[float]:
        """An hour 1 % under the budget, then one good but its last `burst` ticks, whose slices err `second`."""
        return [1 - (1 - STRADDLE) * budget] * phase + [1.0] * (phase - burst) + [1 - second] * burst

    def burns(values: Sequence[float], moment: float) -> list[float]:
        timeline = Timeline(tuple(values), clock.tick, clock.step)
        return [ratio / budget for ratio in _period_ratios(timeline, moment, ctx, objective)]

    def planned(burst: int) -> list[float] | None:
        """The slices, where every variant reads 1 % under, then 1 % over, the budget within half a percent: a 2 %
        move of the budget, of the remaining budget's terms or of the period's ratio lands past the band."""
        # every ratio is a mean of the slices, linear in the second hour's error: solved for the mean of the variants
        at_zero, at_one = (sum(burns(spending(x, burst), moments[1])) / len(VARIANTS) for x in (0.0, 1.0))
        if at_one <= at_zero or not 0 <= (second := ((1 + STRADDLE) - at_zero) / (at_one - at_zero)) <= 1:
            return None
        values = spending(second, burst)
        spent = zip(moments, (1 - STRADDLE, 1 + STRADDLE), strict=True)
        return values if all(abs(b - s) <= STRADDLE / 2 for m, s in spent for b in burns(values, m)) else None

    # The second hour spends its share in its last 15 minutes, where a period read from a longer window's ratios
    # lags; all of it where that is out of reach (more than all bad slices, a month's 30m steps not there yet, the
    # variants apart by more than the band).
    found = next((v for burst in (clock.ticks(BUDGET_BURST, ctx), phase) if (v := planned(burst)) is not None), None)
    if found is None:
        raise Untestable("the budget case cannot spend the budget to within 1 % either side of it")
    values = found
    labels = {naming.SLO_LABEL: slo.name}
    selector = promql.slo_selector(slo.name)
    remaining = f"{naming.BUDGET_REMAINING_RECORD}{selector} > bool 0"
    burn = f"{naming.burn_rate_record(objective.period)}{selector}"
    checks = []
    for moment, spent in zip(moments, (1 - STRADDLE, 1 + STRADDLE), strict=True):
        checks.append(_bool_check(moment, remaining, labels, 1.0 if spent < 1 else 0.0))
        if objective.calendar is None:
            read = burns(values, moment)
            low, high = promql.number(min(read) - STRADDLE / 2), promql.number(max(read) + STRADDLE / 2)
            checks += [
                _bool_check(moment, f"{burn} > bool {low}", labels, 1.0),
                _bool_check(moment, f"{burn} < bool {high}", labels, 1.0),
            ]
    target, budget_record = naming.OBJECTIVE_RECORD, naming.ERROR_BUDGET_RECORD
    for record, value in ((target, objective.target), (budget_record, budget)):
        checks.append(_bool_check(0, record + selector, {"__name__": record, **labels}, value))
    return _expr_case(
        f"{slo.name}: the error budget remains 1 % under it and is overspent 1 % over it",
        _beside(ctx, slo, values),
        tuple(checks),
    )


def period_case(ctx: Context, slo: SLO) -> Case | None:
    """A quarter period of bad slices, then half a period of good ones, then half a period of slices half bad: half,
    the whole and twice the rolling period read 0.5, 0.25 and 0.4 (the mean of the 5m ratios at every evaluation).
    None for a calendar period, or a period short enough to be a subquery of the slices."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    if objective.calendar is not None or not timeslices.averaged(objective.period):
        return None
    clock = _Clock.tiers(ctx, objective)
    period = duration_seconds(ctx.profile.window(objective.period))
    quarter = round(period / 4 / clock.evaluation) * clock.evaluation
    now = quarter + period
    values = [
        0.0 if m < quarter else 1.0 if m < now - period / 2 else 0.5
        for m in (k * clock.tick for k in range(round(now / clock.tick) + 1))
    ]
    timeline = Timeline(tuple(values), clock.tick, clock.step)
    short = duration_seconds(ctx.profile.window(timeslices.SHORTEST_WINDOW))
    ratios = [timeline.mean_ratio(now, period, clock.evaluation, short, variant) for variant in VARIANTS]
    record = f"{timeslices.period_error_record(slo)}{promql.slo_selector(slo.name)}"
    low, high = promql.number(min(ratios) - BAND), promql.number(max(ratios) + BAND)
    labels = {naming.SLO_LABEL: slo.name}
    return Case(
        name=f"{slo.name}: the rolling period's ratio reads its own {objective.period}, not half or twice it",
        series=_beside(ctx, slo, values),
        checks=(),
        proves=(),
        exprs=(
            _bool_check(now, f"{record} > bool {low}", labels, 1.0),
            _bool_check(now, f"{record} < bool {high}", labels, 1.0),
        ),
        file=TIERS_FILE,
    )


def _pair_rule(slo: SLO, pair: WindowPair, rules: Mapping[str, Alert]) -> Alert:
    """The alert rule of one enabled window pair."""
    assert slo.burn_rate is not None
    name = slo.burn_rate.name
    return next(r for r in rules.values() if r.alert == name and r.labels.get(naming.TIER_LABEL) == pair.name)


def burn_case(ctx: Context, slo: SLO, rules: Mapping[str, Alert], pair: WindowPair) -> Case:
    """Slices burning just under, then just over, the pair's factor, then just under it again. The fastest pair's
    case lands in the time-slice file; a slower pair's, days of slices, in the tiers file (TIERS_EVALUATION)."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    rule, factor, long, short = _pair_rule(slo, pair, rules), pair.factor, pair.long, pair.short
    budget = _budget(objective)
    if factor * budget * (1 + STRADDLE) >= 1:
        raise Untestable(f"a burn of {factor:g}x the budget is over 100 % errors: no slice can burn over it")
    fastest = pair == max(enabled_pairs(slo), key=lambda p: p.factor)
    clock = _Clock.of(ctx, objective) if fastest else _Clock.tiers(ctx, objective)
    phase = clock.ticks(long, ctx) + clock.ticks("10m", ctx)
    recovery = max(clock.ticks(short, ctx) * 3, math.ceil(2 * clock.evaluation / clock.tick))  # two evaluations
    under, over = 1 - factor * budget * (1 - STRADDLE), 1 - factor * budget * (1 + STRADDLE)
    # It recovers to just under the factor, not to good slices: the short window resolves it, reading just under
    # while the long one still burns over, so neither window's factor can move 2 % down unnoticed.
    values = [under] * phase + [over] * phase + [under] * recovery
    timeline = Timeline(tuple(values), clock.tick, clock.step)
    windows = (duration_seconds(ctx.profile.window(long)), duration_seconds(ctx.profile.window(short)))

    def predict(now: float) -> Prediction | None:
        def one(variant: Variant) -> Prediction | None:
            ratios = [timeline.error_ratio(now, window, variant) for window in windows]
            if ratios[0] is None or ratios[1] is None:
                return None
            burns = [ratio / budget for ratio in ratios if ratio is not None]
            # The checks read ALERTS' labels (_tier_firing), never the annotations that render the long window's
            # burn: the factor stands for it, so every firing evaluation where the variants agree is checked.
            return Prediction(all(burn > factor for burn in burns), (factor,))

        return agreed(one, rule.alert)

    evaluations = math.floor((len(values) - 1) * clock.tick / clock.evaluation) + 1
    predictions = [predict(index * clock.evaluation) for index in range(evaluations)]
    active = [p if p is not None and p.active else None for p in predictions]
    checks, _, _ = timeline_checks(rule, active, 0, clock.evaluation, {naming.SLO_LABEL: slo.name})
    return Case(
        name=f"{slo.name}: {rule.alert} ({pair.name}) stays silent just under {factor:g}x and fires just over it",
        series=_beside(ctx, slo, values),
        checks=(),
        proves=(rule.alert,),
        exprs=tuple(_tier_firing(check, rule) for check in checks),
        file=FILE if fastest else TIERS_FILE,
    )


def short_window_case(ctx: Context, slo: SLO, rules: Mapping[str, Alert], pair: WindowPair) -> Case | None:
    """A slower pair firing on slices burning over its factor, then, at one evaluation, its short window clear but
    for its last shorter window's slices, still burning: the windows on either side of the short one read over its
    factor, the short one under it, and the alert is silent. A rule reading a neighbour of the short window fires.
    None where no slice can burn over three times the factor, or the neighbours do not read over it."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    rule, factor = _pair_rule(slo, pair, rules), pair.factor
    over = factor * _budget(objective)
    every = timeslices.windows(ctx.spec, slo)
    at = every.index(pair.short)
    if at == 0 or at + 1 == len(every) or 3 * over >= 1:
        return None
    clock = _Clock.tiers(ctx, objective)
    seconds = [duration_seconds(ctx.profile.window(w)) for w in (pair.long, pair.short, every[at - 1], every[at + 1])]
    long, short, shorter, longer = seconds

    def pattern(now: float) -> Timeline:
        """3x the factor before the short window, none in it but 1.5x in its last shorter window, ends included."""
        values = [
            1 - 3 * over if m < now - short else 1.0 if m < now - shorter else 1 - 1.5 * over
            for m in (k * clock.tick for k in range(round(now / clock.tick) + 1))
        ]
        return Timeline(tuple(values), clock.tick, clock.step)

    def silenced(now: float, timeline: Timeline) -> bool:
        """Firing one evaluation before `now`, and at `now` the short window alone under the factor."""
        for variant in VARIANTS:
            burns = [timeline.error_ratio(now, w, variant) for w in seconds]
            before = [timeline.error_ratio(now - clock.evaluation, w, variant) for w in (long, short)]
            if not all(r is not None and (r <= over) == (w == short) for r, w in zip(burns, seconds, strict=True)):
                return False
            if not all(r is not None and r > over for r in before):
                return False
        return True

    # The windows read the slices since the case began: the earliest evaluation that silences it, the cheapest case.
    first = math.ceil(2 * short / clock.evaluation)
    last = math.ceil((max(long, longer) + short) / clock.evaluation)
    for now in (k * clock.evaluation for k in range(first, last + 1)):
        if silenced(now, timeline := pattern(now)):
            break
    else:
        return None
    labels = {**rule.labels, naming.SLO_LABEL: slo.name, "__name__": "ALERTS", "alertname": rule.alert}
    firing = _tier_firing(Check(now - clock.evaluation, rule.alert, ()), rule)
    fired = ExprCheck(firing.seconds, firing.expr, (({**labels, "alertstate": "firing"}, 1.0),))
    return Case(
        name=f"{slo.name}: {rule.alert} ({pair.name}) falls silent when its {pair.short} window clears while the "
        "windows on either side of it still burn over its factor",
        series=_beside(ctx, slo, timeline.values),
        checks=(),
        proves=(rule.alert,),
        exprs=(fired, _tier_firing(Check(now, rule.alert, ()), rule)),
        file=TIERS_FILE,
    )


def _tier_firing(check: Check, rule: Alert) -> ExprCheck:
    """An alert check on `ALERTS` of the rule's tier alone: the slower tiers of the same name fire too."""
    tier = rule.labels[naming.TIER_LABEL]
    query = (
        f'ALERTS{{alertname={promql.string(check.alertname)}, alertstate="firing", '
        f"{naming.TIER_LABEL}={promql.string(tier)}}}"
    )
    samples = tuple(
        ({**alert.labels, "__name__": "ALERTS", "alertname": check.alertname, "alertstate": "firing"}, 1.0)
        for alert in check.alerts
    )
    return ExprCheck(check.seconds, query, samples)


def calendar_case(ctx: Context, slo: SLO) -> Case | None:
    """Bad slices up to the first period boundary after an hour; after it, the first step's slices bad and the first
    half of each later step's: the period's error ratio reads 1 before the boundary, and after it the mean (not the
    max) of the new period's step ratios (the budget resets), each over its step (not a 5m window), from the first
    step on, within a band around what Prometheus 2 and 3 read."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    if objective.calendar is None or not ctx.profile.committed:
        return None
    clock = _Clock.of(ctx, objective)
    boundary = period_start(objective.calendar, 3600 + 40 * 86400)
    while (previous := period_start(objective.calendar, boundary - 1)) > 3600:  # the first boundary after an hour
        boundary = previous
    before = math.floor((boundary - 1) / clock.evaluation) * clock.evaluation
    after = math.ceil((boundary + 3600) / clock.evaluation) * clock.evaluation
    step = duration_seconds(ctx.profile.window(CALENDAR_STEP[objective.calendar.duration]))
    since = [k * clock.tick - boundary for k in range(math.ceil(after / clock.tick) + 1)]
    values = [0.0 if s < step or s % step < step / 2 else 1.0 for s in since]
    ratios = _period_ratios(Timeline(tuple(values), clock.tick, clock.step), after, ctx, objective)
    selector = promql.slo_selector(slo.name)
    labels = {naming.SLO_LABEL: slo.name}
    start_record = naming.CALENDAR_START_RECORD
    ratio = f"{naming.CALENDAR_ERROR_RECORD}{selector}"
    exprs = [
        _bool_check(before, f"{ratio} == bool 1", labels, 1.0),
        _bool_check(after, f"{ratio} > bool {promql.number(min(ratios) - BAND)}", labels, 1.0),
        _bool_check(after, f"{ratio} < bool {promql.number(max(ratios) + BAND)}", labels, 1.0),
    ]
    # The boundary itself starts the new period (`%` and `<` read it on its side); at the local midnight before it,
    # the day of the month turns (probed there and one evaluation before): each where an evaluation falls on it.
    midnight = -objective.calendar.standard_offset() % 86400
    on = [m for m in (midnight - clock.evaluation, midnight, boundary) if m % clock.evaluation == 0 and 0 <= m <= after]
    for moment in sorted({before, *on, after}):
        started = period_start(objective.calendar, moment)
        exprs.append(_bool_check(moment, f"{start_record}{selector}", {"__name__": start_record, **labels}, started))
    return _expr_case(
        f"{slo.name}: the calendar period's budget resets at the boundary; its ratio is the mean of its steps' ratios",
        (_fed(slo, values),),
        tuple(exprs),
    )


# How long the start case probes the period start, at every evaluation of the tiers file: days past the first of the
# month (a month's boundary is a month away: a month of 3-hour evaluations costs seconds of promtool).
CALENDAR_PROBES = "3d"


UNEQUAL_TURNS = 2  # months after one of another length the start case probes (1970's February and March)


def _unequal_month_turns(calendar: Calendar, evaluation: float) -> tuple[list[float], list[float]]:
    """The first UNEQUAL_TURNS local months after one of another length, and the evaluations from each one's first
    local midnight to its period boundary: there the period began in the month before, whose length the recorded
    start reads (`days_in_month` of a moment just before that midnight). None for a week."""
    if calendar.duration != "1M":
        return [], []
    boundary = _month_boundary(calendar)
    turns: list[float] = []
    month = datetime(1970, 1, 1)
    while len(turns) < UNEQUAL_TURNS:
        month, before = _next_month(month), month
        if _days_in(month) != _days_in(before):
            turns.append(month.replace(tzinfo=UTC).timestamp() - calendar.standard_offset())
    moments = [
        k * evaluation
        for begins in turns
        for k in range(math.floor(begins / evaluation) + 1, math.ceil((begins + boundary) / evaluation))
    ]
    return turns, moments


def calendar_start_case(ctx: Context, slo: SLO) -> Case | None:
    """No slices at all, the recorded period start probed at every evaluation of the tiers file for CALENDAR_PROBES
    (later days of the month, the clock past midnight, a week's boundary: the start is computed from `time()` alone),
    and from the first midnight of a month after one of another length to its boundary, twice."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    if objective.calendar is None or not ctx.profile.committed:
        return None
    evaluation = _Clock.tiers(ctx, objective).evaluation
    moments = [k * evaluation for k in range(round(duration_seconds(CALENDAR_PROBES) / evaluation) + 1)]
    turns, after = _unequal_month_turns(objective.calendar, evaluation)
    moments += after
    selector = promql.slo_selector(slo.name)
    labels = {"__name__": naming.CALENDAR_START_RECORD, naming.SLO_LABEL: slo.name}
    unequal = (
        f", and from the local midnights of {' and '.join(map(clock_text, turns))} to their boundary" if after else ""
    )
    return Case(
        name=f"{slo.name}: the recorded period start is the boundary the spec names at every evaluation for "
        f"{CALENDAR_PROBES}{unequal}",
        series=(),
        checks=(),
        proves=(),
        exprs=tuple(
            _bool_check(m, f"{naming.CALENDAR_START_RECORD}{selector}", labels, period_start(objective.calendar, m))
            for m in moments
        ),
        file=TIERS_FILE,
    )


def _slower_pairs(slo: SLO) -> list[WindowPair]:
    """The enabled pairs but the fastest, whose cases are in the tiers file."""
    if slo.burn_rate is None:
        return []
    pairs = enabled_pairs(slo)
    return [p for p in pairs if p != max(pairs, key=lambda p: p.factor)]


def timeslice_cases(ctx: Context, slo: SLO, rules: Mapping[str, Alert]) -> tuple[Case, ...]:
    """Every case of one time-slice SLO."""
    objective = slo.objective
    assert isinstance(objective, TimeslicesObjective)
    made = [
        slice_case(ctx, slo) if objective.slice else None,
        slice_namespaces_case(ctx, slo) if objective.slice else None,
        threshold_slice_case(ctx, slo),
        slice_share_case(ctx, slo),
        window_case(ctx, slo),
        verdict_case(ctx, slo),
        quantile_verdict_case(ctx, slo),
        budget_case(ctx, slo),
        period_case(ctx, slo),
        *(burn_case(ctx, slo, rules, pair) for pair in enabled_pairs(slo) if slo.burn_rate is not None),
        *(short_window_case(ctx, slo, rules, pair) for pair in _slower_pairs(slo)),
        calendar_case(ctx, slo),
        calendar_start_case(ctx, slo),
    ]
    return tuple(case for case in made if case is not None)
