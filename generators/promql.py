"""PromQL of every generated rule, built from the specs' objectives; each expression is parsed as it is made.

Shapes (the lead's decisions, STYLE.md):
- quantile: `histogram_quantile(q, sum by (namespace, job, <by>, le) (rate(<metric>_bucket{…}[w])))`, aggregated
  first (the dashboards' records keep `job` only, as their names say);
- gauge: the raw gauge against threshold / scale (`featurestore_hit_ratio < 0.95`), or `a / b * scale` for a ratio of
  two gauges (NaN on an idle 0/0 pool, which therefore does not alert), optionally `min by (namespace, job, instance,
  …) (…)`: a per-pod alert names its pod;
- error ratio, per namespace and job: `(sum by (namespace, job) (rate(bad[w])) or 0 * total) / (total > 0)`, so an SLO
  whose bad series was never created reads 0 with the labels of its traffic, and no traffic records nothing (never a
  NaN that a period average would carry for 30 days); `1 - (good or 0 * total) / (total > 0)` for good events;
- latency budget: good events are the `le` bucket of the threshold, matched as `5` or `5.0` (prometheus_client writes
  `le="5.0"`, Prometheus 3 normalizes to `5`). A histogram writes every bucket with its count, so a missing bucket is
  a broken scrape or a moved boundary, never "every request was slow": the ratio then has no value (no page) and the
  absent-metrics alert says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

import promql_parser

from generators.naming import SLO_LABEL
from slos.models import (
    POD_LABELS,
    SCOPE_LABELS,
    WINDOW_TEMPLATE,
    EventSelector,
    GaugeObjective,
    LatencyBudgetObjective,
    Op,
    QuantileObjective,
    RatioObjective,
)


class GeneratorError(Exception):
    """The generators produced something that cannot be right: a bug, never a spec problem."""


def checked(expr: str) -> str:
    """`expr` if promql-parser parses it, else GeneratorError."""
    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        raise GeneratorError(f"generated PromQL does not parse ({exc}): {expr}") from None
    return expr


def number(value: float) -> str:
    """A PromQL number literal without float noise: 0.95, 14.4, 0.001."""
    return f"{value:.12g}"


def error_budget(target: float) -> float:
    """1 - target, exactly as written (1 - 0.999 = 0.001, not 0.0010000000000000009)."""
    return float(Decimal(1) - Decimal(repr(target)))


def string(value: str) -> str:
    """A double-quoted string as PromQL, promtool's series notation and Alertmanager matchers read it (Go escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_RE2_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def re2_literal(value: str) -> str:
    """`value` as an RE2 pattern matching exactly itself, as Go's regexp.QuoteMeta escapes it."""
    return _RE2_META.sub(r"\\\1", value)


def selector(metric: str, matchers: Mapping[str, str] | None = None, extra: Sequence[str] = ()) -> str:
    parts = [f"{label}={string(value)}" for label, value in sorted((matchers or {}).items())] + list(extra)
    return metric + ("{" + ", ".join(parts) + "}" if parts else "")


def le_matcher(threshold: float) -> str:
    """`le=~"5(\\.0)?"`: the bucket as prometheus_client writes it (`5.0`) and as Prometheus 3 stores it (`5`)."""
    text = repr(float(threshold))
    pattern = re2_literal(text[:-2]) + r"(\.0)?" if text.endswith(".0") else re2_literal(text)
    return f"le=~{string(pattern)}"


def by_clause(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


def quantile(
    metric: str,
    q: float,
    window: str,
    by: Sequence[str] = (),
    matchers: Mapping[str, str] | None = None,
    scope: Sequence[str] = ("job",),
) -> str:
    bucket = selector(f"{metric}_bucket", matchers)
    return checked(
        f"histogram_quantile({number(q)}, sum by ({', '.join((*scope, *by, 'le'))}) (rate({bucket}[{window}])))"
    )


def rate_sum(metric: str, window: str, by: Sequence[str] = ()) -> str:
    return checked(f"sum by ({', '.join(('job', *by))}) (rate({metric}[{window}]))")


def gauge_ratio(metric: str, divide_by: str) -> str:
    return checked(f"sum by (job) ({metric}) / sum by (job) ({divide_by})")


def _aggregated(objective: GaugeObjective, metric: str, matchers: Mapping[str, str] | None) -> str:
    inner = selector(metric, matchers)
    if objective.aggregate is None:
        return inner
    keep = [*POD_LABELS, *(label for label in objective.by if label not in POD_LABELS)]
    return f"{objective.aggregate}{by_clause(keep)} ({inner})"


def gauge_alert(objective: GaugeObjective, threshold: float) -> str:
    """True (non-empty) when the gauge objective is violated at `threshold` (in the objective's scaled unit)."""
    value = _aggregated(objective, objective.metric, objective.matchers)
    if objective.divide_by is None:
        return checked(f"{value} {objective.op.violated} {number(threshold / objective.scale)}")
    ratio = f"{value} / {_aggregated(objective, objective.divide_by, None)}"
    scaled = f"{ratio} * {number(objective.scale)}" if objective.scale != 1 else ratio
    return checked(f"{scaled} {objective.op.violated} {number(threshold)}")


def quantile_alert(metric: str, q: float, window: str, by: Sequence[str], matchers: Mapping[str, str], op: Op,
                   threshold: float) -> str:  # fmt: skip
    return checked(f"{quantile(metric, q, window, by, matchers, SCOPE_LABELS)} {op.violated} {number(threshold)}")


def templated(query: str) -> bool:
    return WINDOW_TEMPLATE.search(query) is not None


def events(selection: EventSelector, window: str) -> str:
    """Events per second over `window` per namespace and job, or a `{{.window}}` template filled in."""
    scope = by_clause(SCOPE_LABELS)
    if selection.metric is not None:
        return f"sum{scope} (rate({selector(selection.metric, selection.matchers)}[{window}]))"
    assert selection.query is not None
    if templated(selection.query):
        return f"({WINDOW_TEMPLATE.sub(window, selection.query)})"
    return f"sum{scope} (rate({selection.query}[{window}]))"


def _or_zero(selection: EventSelector, expr: str, total: str) -> str:
    """`expr`, or 0 with the labels of the total's traffic when `expr` has no series."""
    if selection.query is not None and templated(selection.query):
        return expr
    return f"({expr} or 0 * {total})"


def _some(total: str) -> str:
    return f"({total} > 0)"


def error_ratio(objective: RatioObjective | LatencyBudgetObjective, window: str) -> str:
    """The fraction of bad events over `window`; no sample when there were no events."""
    if isinstance(objective, LatencyBudgetObjective):
        good = selector(f"{objective.metric}_bucket", objective.matchers, [le_matcher(objective.threshold)])
        count = selector(f"{objective.metric}_count", objective.matchers)
        scope = by_clause(SCOPE_LABELS)
        total = f"sum{scope} (rate({count}[{window}]))"
        return checked(f"1 - sum{scope} (rate({good}[{window}])) / {_some(total)}")
    if objective.error_ratio_query is not None:
        return checked(f"({WINDOW_TEMPLATE.sub(window, objective.error_ratio_query)})")
    assert objective.total is not None
    total = events(objective.total, window)
    if objective.bad is not None:
        return checked(f"{_or_zero(objective.bad, events(objective.bad, window), total)} / {_some(total)}")
    assert objective.good is not None
    return checked(f"1 - {_or_zero(objective.good, events(objective.good, window), total)} / {_some(total)}")


def averaged_ratio(short_record: str, slo: str, window: str) -> str:
    """The error ratio over a long window as sloth builds its period SLI: the short-window ratios averaged. Only for
    a raw `error_ratio_query`, which counts no events to sum."""
    matcher = slo_selector(slo)
    return checked(
        f"sum_over_time({short_record}{matcher}[{window}]) / count_over_time({short_record}{matcher}[{window}])"
    )


def period_ratio(bad_record: str, total_record: str, slo: str, window: str) -> str:
    """The error ratio over a long window: the recorded bad events summed over it, divided by the recorded total
    events summed over it; no sample when the window holds no events."""
    matcher = slo_selector(slo)
    return checked(
        f"sum_over_time({bad_record}{matcher}[{window}]) / (sum_over_time({total_record}{matcher}[{window}]) > 0)"
    )


def _increase(selection: EventSelector, window: str, seconds: float, by: Sequence[str] = SCOPE_LABELS) -> str:
    """The selection's events over `window` per `by` (namespace and job): `increase` of its counter, or a
    `{{.window}}` template's rate times the window."""
    if selection.query is not None and templated(selection.query):
        return f"{events(selection, window)} * {number(seconds)}"
    counted = selector(selection.metric, selection.matchers) if selection.metric is not None else selection.query
    return f"sum{by_clause(by)} (increase({counted}[{window}]))"


def _latency_events(objective: LatencyBudgetObjective, window: str) -> tuple[str, str]:
    """(events under the threshold, all events) of a latency budget over `window`."""
    scope = by_clause(SCOPE_LABELS)
    good = selector(f"{objective.metric}_bucket", objective.matchers, [le_matcher(objective.threshold)])
    count = selector(f"{objective.metric}_count", objective.matchers)
    return f"sum{scope} (increase({good}[{window}]))", f"sum{scope} (increase({count}[{window}]))"


def total_events(objective: RatioObjective | LatencyBudgetObjective, window: str, seconds: float) -> str | None:
    """The SLI's events over `window` (of `seconds`), None for a raw error ratio. A latency budget's count only where
    its threshold bucket is scraped, so a window without the bucket counts neither bad nor total events."""
    if isinstance(objective, LatencyBudgetObjective):
        good, count = _latency_events(objective, window)
        return checked(f"{count} and {good}")
    if objective.total is None:
        return None
    return checked(_increase(objective.total, window, seconds))


def bad_events(objective: RatioObjective | LatencyBudgetObjective, window: str, seconds: float) -> str | None:
    """The SLI's bad events over `window` (of `seconds`), None for a raw error ratio; 0 when its traffic had none."""
    if isinstance(objective, LatencyBudgetObjective):
        good, count = _latency_events(objective, window)
        return checked(f"{count} - {good}")
    if objective.total is None:
        return None
    total = _increase(objective.total, window, seconds)
    if objective.bad is not None:
        return checked(_or_zero(objective.bad, _increase(objective.bad, window, seconds), total))
    assert objective.good is not None
    return checked(f"{total} - {_or_zero(objective.good, _increase(objective.good, window, seconds), total)}")


def absent_selectors(objective: RatioObjective | LatencyBudgetObjective, window: str) -> tuple[str, ...]:
    """What must have series for the SLO to be evaluated: the total events (and a latency budget's bucket)."""
    if isinstance(objective, LatencyBudgetObjective):
        bucket = selector(f"{objective.metric}_bucket", objective.matchers, [le_matcher(objective.threshold)])
        return (selector(f"{objective.metric}_count", objective.matchers), bucket)
    if objective.error_ratio_query is not None:
        return (f"({WINDOW_TEMPLATE.sub(window, objective.error_ratio_query)})",)
    total = objective.total
    assert total is not None
    if total.metric is not None:
        return (selector(total.metric, total.matchers),)
    assert total.query is not None
    return (events(total, window) if templated(total.query) else total.query,)


def absent(objective: RatioObjective | LatencyBudgetObjective, window: str) -> str:
    """True when a series the SLO needs has no series at all."""
    return checked(" or ".join(f"absent({found})" for found in absent_selectors(objective, window)))


def burn_alert(long_record: str, short_record: str, slo: str, factor: float) -> str:
    slo_matcher = "{slo=" + string(slo) + "}"
    return checked(f"{long_record}{slo_matcher} > {number(factor)} and {short_record}{slo_matcher} > {number(factor)}")


def event_count(objective: RatioObjective | LatencyBudgetObjective, window: str, seconds: float) -> str:
    """The SLI's total events over `window` (of `seconds`), with the error ratio's labels: `increase` of the total's
    counter, or a `{{.window}}` template's rate times the window."""
    if isinstance(objective, LatencyBudgetObjective):
        return _latency_events(objective, window)[1]
    assert objective.total is not None, "a raw error ratio counts no events (slos.validate refuses its floor)"
    return _increase(objective.total, window, seconds)


def with_floor(alert: str, count: str, min_events: float, on: Sequence[str] | None = None) -> str:
    """`alert` only where `count` reached `min_events`. Without `on`, `ignoring (slo)`: the burn records carry the
    SLI's labels and `slo`, the count the SLI's labels alone. With `on`, matched on those labels alone: a threshold
    alert's samples may carry more labels than its count (a raw gauge keeps every label of its series)."""
    matching = f"on ({', '.join(on)})" if on is not None else f"ignoring ({SLO_LABEL})"
    return checked(f"{alert} and {matching} {count} >= {number(min_events)}")


def threshold_grouping(objective: QuantileObjective | GaugeObjective) -> tuple[str, ...]:
    """The labels a threshold alert's event floor is matched on: a quantile's scope and `by`, a gauge's pod and `by`
    (a gauge's events are counted per pod, as the gauge itself is scraped)."""
    own = SCOPE_LABELS if isinstance(objective, QuantileObjective) else POD_LABELS
    return (*own, *(label for label in objective.by if label not in own))


def threshold_events(objective: QuantileObjective | GaugeObjective, window: str) -> str:
    """The events of a threshold objective over `window`, per `threshold_grouping`: the histogram's `_count`, or the
    sum of a gauge's event counters, each read as 0 where it has no series and another has (a cache that never
    missed has no misses series): `(sum (increase(a[w])) or 0 * group (b)) + (sum (increase(b[w])) or 0 * group (a))`,
    the zero read from the other counters' series as they are, with no range of its own."""
    by = threshold_grouping(objective)
    if isinstance(objective, QuantileObjective):
        counted = EventSelector(metric=f"{objective.metric}_count", matchers=objective.matchers)
        return checked(_increase(counted, window, 0, by))
    assert objective.events is not None, "slos.validate refuses a gauge's floor without events"
    counters = objective.events.counters
    terms = [_increase(counter, window, 0, by) for counter in counters]
    if len(terms) == 1:
        return checked(terms[0])
    padded = []
    for index, term in enumerate(terms):
        others = " or ".join(selector(c.metric or "", c.matchers) for c in counters[:index] + counters[index + 1 :])
        padded.append(f"({term} or 0 * group{by_clause(by)} ({others}))")
    return checked("(" + " + ".join(padded) + ")")


def slo_selector(slo: str) -> str:
    """`{slo="…"}`: the series one SLO's records carry."""
    return "{" + SLO_LABEL + "=" + string(slo) + "}"
