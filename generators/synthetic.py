"""Synthetic series for the generated promtool tests, and the few PromQL functions needed to predict what they give.

A generated test states when an alert fires and which `$value` its annotations print, so the generator evaluates
its own series the way Prometheus 2.x does: `rate` with its extrapolation (`extrapolatedRate`), `histogram_quantile`
(`bucketQuantile`), sums, ratios and comparisons, in float64. Prometheus versions order the rate arithmetic
differently (`delta * (interval / sampled) / range` or `delta * ((interval / sampled) / range)`); every prediction
is made both ways, and both again under Prometheus 3's left-open range selectors (a range `[5m]` holds the samples
of `(t - 5m, t]`, emulated as `[t - 5m + 1ms, t]`): when the variants disagree on whether an alert is active,
generation stops (GeneratorError), and a firing alert's annotations are only asserted where every variant renders
them alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from generators.promql import string

Values = list[float | None]  # one sample per tick; None = no sample (promtool's `_`)
Matcher = tuple[str, str, str]  # (label, op, value), op one of = != =~ !~


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]  # with __name__
    values: tuple[float | None, ...]

    def selector(self) -> str:
        """promtool's series notation: `name{label="value", ...}`, each value quoted and escaped as PromQL reads it."""
        name = self.labels["__name__"]
        rest = ", ".join(f"{key}={string(value)}" for key, value in sorted(self.labels.items()) if key != "__name__")
        return f"{name}{{{rest}}}"

    def data(self) -> dict[str, str]:
        return {"series": self.selector(), "values": encode(self.values)}


def number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def encode(values: Sequence[float | None]) -> str:
    """promtool's expanding notation: `0+30x20 600+0x10 _x5` (`a+bxn` is n+1 samples, `_xn` is n missing ones)."""
    parts: list[str] = []
    index = 0
    while index < len(values):
        value = values[index]
        if value is None:
            end = index
            while end < len(values) and values[end] is None:
                end += 1
            parts.append(f"_x{end - index}")
            index = end
            continue
        end = index
        following = values[index + 1] if index + 1 < len(values) else None
        if following is not None:
            step = following - value
            end = index + 1
            while end + 1 < len(values) and values[end + 1] is not None and values[end + 1] - values[end] == step:  # type: ignore[operator]
                end += 1
            sign = "+" if step >= 0 else "-"
            parts.append(f"{number(value)}{sign}{number(abs(step))}x{end - index}")
        else:
            parts.append(number(value))
        index = end + 1
    return " ".join(parts)


def counter(increments: Sequence[float], start: float = 0) -> tuple[float, ...]:
    """Cumulative values from `start`: tick 0 holds `start`, tick k adds increments[k-1]."""
    values = [start]
    for increment in increments:
        values.append(values[-1] + increment)
    return tuple(values)


# --- Evaluation --------------------------------------------------------------------------------------------------

# Bit 0: 0 = resultValue * (interval / sampled) / range, 1 = resultValue * ((interval / sampled) / range);
# bit 1: 0 = ranges closed on the left (Prometheus 2), 1 = left-open (Prometheus 3, as a range 1 ms shorter).
Variant = int
VARIANTS: tuple[Variant, ...] = (0, 1, 2, 3)
LEFT_OPEN_EMULATION = 0.001  # seconds taken off every range to emulate Prometheus 3 on Prometheus 2


def effective_window(window: float, variant: Variant) -> float:
    """The range a variant reads: the window itself, or 1 ms shorter (left-open emulation)."""
    return window - LEFT_OPEN_EMULATION if variant & 2 else window


def inside(moment: float, start: float, variant: Variant) -> bool:
    """Whether a range that starts at `start` holds `moment`: closed on the left (Prometheus 2), or open (3)."""
    return moment > start if variant & 2 else moment >= start


def range_start(at: int, tick: float, window: float, variant: Variant) -> int:
    """Index of the first sample (every `tick`) inside the range ending at tick `at`."""
    return max(0, math.ceil((at * tick - effective_window(window, variant)) / tick - 1e-9))


def rate(values: Sequence[float | None], tick: float, at: int, window: float, variant: Variant) -> float | None:
    """Prometheus's `rate(series[window])` at tick `at` (samples every `tick` seconds, range inclusive of both ends).

    Missing samples may only lead the series (promtool's `_xN` prefix), and the synthetic counters never reset."""
    return _extrapolated(values, tick, at, window, variant, per_second=True)


def increase(values: Sequence[float | None], tick: float, at: int, window: float, variant: Variant) -> float | None:
    """Prometheus's `increase(series[window])` at tick `at`: `rate`'s extrapolation, not divided by the range."""
    return _extrapolated(values, tick, at, window, variant, per_second=False)


def _extrapolated(values: Sequence[float | None], tick: float, at: int, window: float, variant: Variant, *,
                  per_second: bool) -> float | None:  # fmt: skip
    window = effective_window(window, variant)
    start = at * tick - window
    first = max(0, math.ceil(start / tick - 1e-9))
    while first <= at and values[first] is None:
        first += 1
    if at - first < 1:
        return None
    first_v, last_v = values[first], values[at]
    assert first_v is not None and last_v is not None
    result = last_v - first_v
    to_start = first * tick - start
    to_end = 0.0
    sampled = (at - first) * tick
    average = sampled / (at - first)
    if result > 0 and first_v >= 0:
        to_start = min(to_start, sampled * (first_v / result))
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2)
    interval += to_end if to_end < threshold else average / 2
    if not per_second:
        return result * (interval / sampled)
    if variant & 1 == 0:
        return result * (interval / sampled) / window
    return result * ((interval / sampled) / window)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's `bucketQuantile` over (upper bound, cumulative rate) pairs, +Inf last."""
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    rank = q * ordered[-1][1]
    index = next((i for i in range(len(ordered) - 1) if ordered[i][1] >= rank), len(ordered) - 1)
    if index == len(ordered) - 1:
        return ordered[-2][0]
    if index == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[index][0], ordered[index][1]
    if index > 0:
        start = ordered[index - 1][0]
        count -= ordered[index - 1][1]
        rank -= ordered[index - 1][1]
    return start + (end - start) * divide(rank, count)


def divide(a: float, b: float) -> float:
    """IEEE division as Go does it: x/0 is ±Inf, 0/0 is NaN."""
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def matches(labels: Mapping[str, str], matchers: Sequence[Matcher]) -> bool:
    for label, op, value in matchers:
        actual = labels.get(label, "")
        hit = actual == value if op in ("=", "!=") else re.fullmatch(value, actual) is not None
        if hit != (op in ("=", "=~")):
            return False
    return True


def sum_rate(series: Sequence[Series], matchers: Sequence[Matcher], tick: float, at: int, window: float,
             variant: Variant) -> float | None:  # fmt: skip
    """`sum(rate(<matchers>[window]))`: None when no series has two samples in the window."""
    rates = [rate(s.values, tick, at, window, variant) for s in series if matches(s.labels, matchers)]
    present = [r for r in rates if r is not None]
    return sum(present) if present else None


@dataclass(frozen=True)
class Prediction:
    """One evaluation time: whether the alert expression returns a sample, and its value per rate variant (they may
    differ in the last bits; a test only shows a value whose annotations render alike for every variant)."""

    active: bool
    values: tuple[float, ...]
    variants: tuple[bool, ...] = ()  # whether each rate variant returns a sample; empty: every one as `active`

    @property
    def value(self) -> float:
        return self.values[0]

    def active_in(self, variant: Variant) -> bool:
        return self.variants[variant] if self.variants else self.active


def agreed(evaluate: Callable[[Variant], Prediction | None], what: str) -> Prediction | None:
    """The prediction of every rate variant (None when none returns a sample). `active` holds only when every
    variant returns a sample; `variants` says which do, so checks can keep to the evaluations where they agree."""
    made = [evaluate(variant) for variant in VARIANTS]
    if all(p is None for p in made):
        return None
    states = tuple(p is not None and p.active for p in made)
    return Prediction(all(states), tuple(v for p in made if p for v in p.values), states)


def firing_times(active: Sequence[bool], hold: float, step: float) -> list[bool]:
    """Per evaluation, whether an alert with `for: hold` is firing, from whether its expression returned a sample."""
    firing: list[bool] = []
    since: float | None = None
    for index, is_active in enumerate(active):
        now = index * step
        if not is_active:
            since = None
            firing.append(False)
            continue
        since = now if since is None else since
        firing.append(now - since >= hold)
    return firing


def sample_value(pattern: str) -> str | None:
    """A label value fully matching a simple regex (`5..`, `2xx|3xx`, `GET`), or None."""
    for alternative in pattern.split("|"):
        candidate = re.sub(r"[()^$?]", "", alternative).replace("\\.", ".").replace(".*", "").replace(".+", "x")
        candidate = candidate.replace(".", "0")
        if re.fullmatch(pattern, candidate):
            return candidate
    return None


def satisfy(matchers: Sequence[Matcher], base: Mapping[str, str]) -> dict[str, str] | None:
    """`base` changed as little as needed to satisfy every matcher, or None."""
    labels = dict(base)
    for label, op, value in matchers:
        if op == "=":
            labels[label] = value
        elif op == "=~" and re.fullmatch(value, labels.get(label, "")) is None:
            sample = sample_value(value)
            if sample is None:
                return None
            labels[label] = sample
        elif op in ("!=", "!~") and not matches(labels, [(label, op, value)]):
            labels[label] = "other"
    return labels if matches(labels, matchers) else None


def violate(matchers: Sequence[Matcher], base: Mapping[str, str], keep: Sequence[Matcher]) -> dict[str, str] | None:
    """`base` changed on one label so that `matchers` fail while `keep` still hold, or None."""
    for label, op, value in matchers:
        if any(kept[0] == label for kept in keep):
            continue
        candidates = ["other", value] if op in ("=", "=~") else [value, sample_value(value) or value]
        for candidate in candidates:
            labels = {**base, label: candidate}
            if not matches(labels, matchers) and matches(labels, keep):
                return labels
    return None
