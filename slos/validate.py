"""Semantic checks of loaded specs, run before anything is rendered; every problem names its file and field.

The models check shapes; this module checks meaning:

- catalog (specs whose `service` is the feature store): every metric exists with the right kind and labels, matcher
  values are values the code emits, every latency threshold is a bucket boundary of its histogram;
- grouping labels are bounded, and every `$labels.<name>` an annotation uses survives the alert's aggregation;
- every burn-rate alert can fire: factor x error budget < 1 (the error ratio cannot exceed 1; a 90 % objective
  cannot meet the 14.4x page), and the period is at least the longest alert window. Such specs are rejected with
  the reason, never silently capped;
- windows hold at least `MIN_SAMPLES_PER_WINDOW` scrapes, so `rate` always has samples to work with;
- event queries (OpenSLO) parse as PromQL (promql-parser) and counter queries are plain selectors;
- alert names are unique across all specs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import promql_parser

from featurestore import metrics
from featurestore.metrics import MetricKind
from slos import templating
from slos.errors import Problem, SpecError
from slos.loader import SpecSet
from slos.models import (
    ALERT_NAME,
    BUDGETED,
    POD_LABELS,
    SCOPE_LABELS,
    SLO,
    WINDOW_TEMPLATE,
    EventSelector,
    GaugeObjective,
    LatencyBudgetObjective,
    Op,
    QuantileObjective,
    RatioObjective,
    SpecFile,
    TimeslicesObjective,
    duration_seconds,
)
from slos.timeslice_checks import timeslice_problems
from slos.windows import SLI_WINDOWS, TIER_LABEL, enabled_pairs, sli_windows

CATALOG_SERVICE = "featurestore"  # specs about this service are checked against featurestore/metrics.py
MIN_SAMPLES_PER_WINDOW = 4  # a rate window spans at least this many scrape intervals
RESERVED_LABELS = frozenset({"alertname", "severity", "long_window", "short_window", "alert_policy", TIER_LABEL})
# Label values the code emits, per label; matchers on these labels must use one of them.
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    metrics.LABEL_BACKEND: metrics.BACKENDS,
    metrics.LABEL_COMPONENT: metrics.COMPONENTS,
    metrics.LABEL_STATUS_CLASS: metrics.STATUS_CLASSES,
    metrics.LABEL_ERROR: metrics.INSERT_ERRORS,
    metrics.LABEL_REASON: metrics.RECOMPUTE_REASONS,
}
# Labels bounded by construction rather than by a list: grouping by them is allowed.
BOUNDED_LABELS: dict[str, str] = {
    **{label: f"one of {', '.join(values)}" for label, values in LABEL_VALUES.items()},
    metrics.LABEL_SYMBOL: f"capped at {metrics.DEFAULT_SYMBOL_CAP} symbols plus {metrics.OTHER_SYMBOL!r}",
    metrics.LABEL_ROUTE: "route templates, never raw paths",
    metrics.LABEL_METHOD: "HTTP methods",
    "job": "one per scrape job",
    "instance": "one per scrape target",
}
# Names that usually carry one value per request or user: never a grouping label, whatever the service.
UNBOUNDED_LABELS = frozenset(
    {"id", "uuid", "user", "user_id", "email", "ip", "path", "url", "query", "request_id", "session_id", "trace_id"}
)
SCRAPE_LABELS = ("job", "instance")
WINDOW_PLACEHOLDER = "5m"

Found = Iterator[tuple[str, str]]  # (field inside the SLO, reason)


@dataclass(frozen=True)
class Timing:
    """The profile's scrape interval and how it shortens windows (validation happens per profile)."""

    scrape_seconds: float = 30.0
    window_divisor: int = 1

    def window_seconds(self, window: str) -> float:
        return duration_seconds(window) / self.window_divisor


def validate(specs: SpecSet, timing: Timing | None = None) -> None:
    """Raise SpecError listing every problem of every spec; return quietly when the specs can be rendered."""
    timing = timing or Timing()
    problems: list[Problem] = []
    for loaded in specs.specs:
        problems += [
            Problem(str(loaded.path), field, reason) for field, reason in _reserved(loaded.spec.labels, "labels")
        ]
        for index, slo in enumerate(loaded.spec.slos):
            for field, reason in slo_problems(slo, loaded.spec, timing, unalerted=loaded.source_format == "sloth"):
                problems.append(Problem(str(loaded.path), loaded.locate(index, field), reason))
    problems.extend(_duplicate_alerts(specs))
    problems.extend(_maintenance_problems(specs))
    if problems:
        raise SpecError("", more=problems)


def slo_problems(slo: SLO, spec: SpecFile, timing: Timing, *, unalerted: bool = False) -> Found:
    """Every problem of one SLO, as (field path inside the SLO, reason). `unalerted`: a budgeted SLO may have no
    `burn_rate` (Sloth's both tiers disabled)."""
    catalog = spec.service == CATALOG_SERVICE
    objective = slo.objective
    yield from _label_problems(slo)
    if isinstance(objective, QuantileObjective):
        yield from _quantile(slo, objective, catalog, timing)
    elif isinstance(objective, GaugeObjective):
        yield from _gauge(objective, catalog, timing)
    elif isinstance(objective, RatioObjective):
        yield from _ratio(objective, catalog)
    elif isinstance(objective, TimeslicesObjective):
        if objective.threshold is None:
            yield from _ratio(objective.events(), catalog)
        yield from timeslice_problems(slo, objective, timing.scrape_seconds, timing.window_divisor)
    else:
        yield from _latency_budget(objective, catalog)
    yield from _annotation_problems(slo, catalog)
    if isinstance(objective, BUDGETED):
        yield from _burn_rate(slo, objective, timing, unalerted)
    yield from _min_events(slo)
    yield from _policy_problems(slo, spec, timing)


def _min_events(slo: SLO) -> Found:
    """A floor needs events to count: a quantile's histogram `_count`, a gauge's `events`, a budgeted SLO's total."""
    objective = slo.objective
    if slo.min_events is None or isinstance(objective, QuantileObjective):
        return
    if isinstance(objective, GaugeObjective):
        if objective.events is None:
            yield (
                "min_events",
                "a gauge counts no events of its own: name the counters of its events in `objective.events` "
                "(a hit ratio's lookups: its hits and misses counters), or drop `min_events`",
            )
    elif slo.burn_rate is None:
        yield "min_events", "a floor of events silences burn-rate alerts, and this SLO has none (no `burn_rate`)"
    elif isinstance(objective, RatioObjective) and not objective.counted:
        yield "min_events", "an `error_ratio_query` counts no events: there is nothing to hold the floor against"


def _label_problems(slo: SLO) -> Found:
    sets: list[tuple[str, dict[str, str]]] = [("labels", slo.labels)]
    sets += [(f"alerts[{i}].labels", alert.labels) for i, alert in enumerate(slo.alerts)]
    if slo.burn_rate is not None:
        sets.append(("burn_rate.labels", slo.burn_rate.labels))
        sets.append(("burn_rate.page_labels", slo.burn_rate.page_labels))
        sets.append(("burn_rate.ticket_labels", slo.burn_rate.ticket_labels))
    for field, labels in sets:
        yield from _reserved(labels, field)


def _reserved(labels: dict[str, str], field: str) -> Found:
    for key, value in labels.items():
        if key in RESERVED_LABELS:
            yield f"{field}.{key}", f"{key!r} is set by the generator and cannot be given as a label"
        if "{{" in value:
            yield f"{field}.{key}", "label values are not templated"


def _catalog_metric(name: str, kinds: tuple[MetricKind, ...], field: str) -> tuple[metrics.MetricSpec | None, Found]:
    spec = metrics.find(name)
    problems: list[tuple[str, str]] = []
    if spec is None:
        problems.append((field, f"{name!r} is not in the metric catalog (featurestore/metrics.py)"))
    elif spec.kind not in kinds and not (name.endswith("_count") and MetricKind.COUNTER in kinds):
        wanted = " or ".join(kind.value for kind in kinds)
        problems.append((field, f"{name!r} is a {spec.kind.value} in the catalog, expected a {wanted}"))
        spec = None
    return spec, iter(problems)


def _labels_exist(spec: metrics.MetricSpec, labels: dict[str, str] | tuple[str, ...], field: str) -> Found:
    for label in labels:
        if label not in spec.labels:
            known = ", ".join(spec.labels) or "none"
            yield (
                f"{field}.{label}" if isinstance(labels, dict) else field,
                (f"{spec.name!r} has no label {label!r} (its labels: {known})"),
            )
        elif isinstance(labels, dict) and label in LABEL_VALUES and labels[label] not in LABEL_VALUES[label]:
            yield (
                f"{field}.{label}",
                (f"{label}={labels[label]!r} never occurs: the code emits {', '.join(LABEL_VALUES[label])}"),
            )


def _bounded(by: tuple[str, ...], catalog: bool) -> Found:
    for label in by:
        if label in UNBOUNDED_LABELS or (catalog and label not in BOUNDED_LABELS):
            yield "objective.by", f"grouping by {label!r} is unbounded: group only by labels with a known bound"


def _bucket(spec: metrics.MetricSpec, threshold: float, field: str) -> Found:
    if threshold not in spec.buckets:
        buckets = ", ".join(f"{bucket:g}" for bucket in spec.buckets)
        yield (
            field,
            (
                f"{threshold:g} is not a bucket boundary of {spec.name} ({buckets}): "
                "histogram_quantile would interpolate"
            ),
        )


def _quantile(slo: SLO, objective: QuantileObjective, catalog: bool, timing: Timing) -> Found:
    if objective.op is Op.EQ:
        yield "objective.op", "a quantile is compared with <, <=, > or >=, not =="
    yield from _bounded(objective.by, catalog)
    yield from _window(objective.window, "objective.window", timing)
    if catalog:
        spec, found = _catalog_metric(objective.metric, (MetricKind.HISTOGRAM,), "objective.metric")
        yield from found
        if spec is not None:
            yield from _labels_exist(spec, objective.by, "objective.by")
            yield from _labels_exist(spec, objective.matchers, "objective.matchers")
            yield from _bucket(spec, objective.threshold, "objective.threshold")
            for index, alert in enumerate(slo.alerts):
                if alert.threshold is not None:
                    yield from _bucket(spec, alert.threshold, f"alerts[{index}].threshold")


def _gauge(objective: GaugeObjective, catalog: bool, timing: Timing) -> Found:
    if objective.by and objective.aggregate is None:
        yield "objective.by", "`by` groups an aggregation: give `aggregate` too"
    yield from _bounded(objective.by, catalog)
    yield from _gauge_events(objective, catalog, timing)
    if not catalog:
        return
    spec, found = _catalog_metric(objective.metric, (MetricKind.GAUGE,), "objective.metric")
    yield from found
    if spec is not None:
        yield from _labels_exist(spec, objective.by, "objective.by")
        yield from _labels_exist(spec, objective.matchers, "objective.matchers")
    if objective.divide_by is not None:
        divisor, found = _catalog_metric(objective.divide_by, (MetricKind.GAUGE,), "objective.divide_by")
        yield from found
        if divisor is not None:
            yield from _labels_exist(divisor, objective.by, "objective.by")


def _gauge_events(objective: GaugeObjective, catalog: bool, timing: Timing) -> Found:
    """The event counters of a gauge are catalog counters that carry its `by` labels (the floor is matched on them)."""
    if objective.events is None:
        return
    yield from _window(objective.events.window, "objective.events.window", timing)
    for index, counter in enumerate(objective.events.counters):
        field = f"objective.events.counters[{index}]"
        yield from _selector(counter, field, catalog)
        spec = metrics.find(counter.metric or "") if catalog else None
        if spec is not None and spec.kind is MetricKind.COUNTER:
            yield from _labels_exist(spec, objective.by, f"{field}.metric")


def _ratio(objective: RatioObjective, catalog: bool) -> Found:
    if objective.error_ratio_query is not None:
        yield from _selector(EventSelector(query=objective.error_ratio_query), "objective.error_ratio_query", catalog)
        return
    assert objective.total is not None
    event_role = "good" if objective.good is not None else "bad"
    event = objective.good or objective.bad
    assert event is not None
    for role, selector in ((event_role, event), ("total", objective.total)):
        yield from _selector(selector, f"objective.{role}", catalog)
    if event == objective.total:
        yield f"objective.{event_role}", f"`{event_role}` and `total` are the same events: the ratio would be constant"
    if event.metric is not None and event.metric == objective.total.metric:
        for label, value in objective.total.matchers.items():
            if event.matchers.get(label, value) != value:
                yield (
                    f"objective.{event_role}.matchers.{label}",
                    (
                        f"{label}={event.matchers[label]!r} contradicts total's {label}={value!r}: "
                        f"the {event_role} events must be part of the total"
                    ),
                )


def _selector(selector: EventSelector, field: str, catalog: bool) -> Found:
    if selector.metric is not None:
        if catalog:
            spec, found = _catalog_metric(selector.metric, (MetricKind.COUNTER,), f"{field}.metric")
            yield from found
            if spec is not None:
                yield from _labels_exist(spec, selector.matchers, f"{field}.matchers")
        return
    assert selector.query is not None
    templated = WINDOW_TEMPLATE.search(selector.query) is not None
    text = WINDOW_TEMPLATE.sub(WINDOW_PLACEHOLDER, selector.query)
    try:
        expr = promql_parser.parse(text)
    except ValueError as exc:
        yield f"{field}.query", f"does not parse as PromQL ({exc}): {selector.query}"
        return
    if not templated and not (isinstance(expr, promql_parser.VectorSelector) and expr.offset is None):
        yield (
            f"{field}.query",
            (
                'a counter query is a plain selector such as http_requests_total{code=~"5.."} (the generator wraps it '
                "in sum(rate(…[window]))); put {{.window}} in a full expression instead"
            ),
        )
    if catalog:
        for node in _selectors(expr):
            name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), "")
            spec, found = _catalog_metric(name, (MetricKind.COUNTER, MetricKind.HISTOGRAM), f"{field}.query")
            yield from found
            if spec is not None:
                labels = tuple(m.name for m in node.matchers.matchers if m.name not in ("__name__", *SCRAPE_LABELS))
                yield from _labels_exist(spec, labels, f"{field}.query")


def _selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def _latency_budget(objective: LatencyBudgetObjective, catalog: bool) -> Found:
    if not catalog:
        return
    spec, found = _catalog_metric(objective.metric, (MetricKind.HISTOGRAM,), "objective.metric")
    yield from found
    if spec is not None:
        yield from _labels_exist(spec, objective.matchers, "objective.matchers")
        yield from _bucket(spec, objective.threshold, "objective.threshold")


def _window(window: str, field: str, timing: Timing) -> Found:
    if timing.window_seconds(window) < MIN_SAMPLES_PER_WINDOW * timing.scrape_seconds:
        yield (
            field,
            (
                f"{window} holds fewer than {MIN_SAMPLES_PER_WINDOW} scrapes at {timing.scrape_seconds:g}s: "
                "rate() would be empty or erratic"
            ),
        )


def _burn_rate(
    slo: SLO, objective: RatioObjective | LatencyBudgetObjective | TimeslicesObjective, timing: Timing, unalerted: bool
) -> Found:
    if slo.burn_rate is None and not unalerted:
        yield "burn_rate", "an error-budget SLO needs `burn_rate` alerting"
    period = duration_seconds(objective.period)
    longest = max(SLI_WINDOWS, key=duration_seconds)
    if period < duration_seconds(longest):
        yield "objective.period", f"the period must be at least {longest}, the longest alert window"
        return
    if slo.burn_rate is not None and not slo.burn_rate.tiers.enabled and not slo.alert_policies:
        yield (
            "burn_rate.tiers",
            "every tier is disabled: the SLO would have no burn-rate alert (keep a tier, or name an alert policy "
            "whose conditions alert instead)",
        )
    budget = 1 - objective.target
    for pair in enabled_pairs(slo):
        if pair.factor * budget >= 1:
            yield (
                "objective.target",
                (
                    f"the {pair.long}/{pair.short} {pair.tier} alert can never fire: it needs an error ratio above "
                    f"{pair.factor:g} x {budget:.6g} = {pair.factor * budget:.4g}, and an error ratio cannot exceed 1 "
                    f"(raise the target, shorten the period: factors shrink with it, or disable the {pair.name} tier)"
                ),
            )
    yield from _window(min(sli_windows(objective.period), key=duration_seconds), "objective.period", timing)


def output_labels(slo: SLO, catalog: bool) -> frozenset[str] | None:
    """Labels of the alert expression's samples (what `$labels` sees), or None when they cannot be known."""
    objective = slo.objective
    if isinstance(objective, QuantileObjective):
        return frozenset((*SCOPE_LABELS, *objective.by))
    if isinstance(objective, GaugeObjective):
        if objective.aggregate is not None:
            return frozenset((*POD_LABELS, *objective.by))
        spec = metrics.find(objective.metric) if catalog else None
        return frozenset(("__name__", *SCRAPE_LABELS, *spec.labels)) if spec is not None else None
    if isinstance(objective, LatencyBudgetObjective):
        return frozenset(("slo", *SCOPE_LABELS))
    if isinstance(objective, TimeslicesObjective) or objective.error_ratio_query is not None:
        return None
    events = [selector for selector in (objective.good, objective.bad, objective.total) if selector is not None]
    if any(event.query is not None and WINDOW_TEMPLATE.search(event.query) for event in events):
        return None
    return frozenset(("slo", *SCOPE_LABELS))


def _annotation_problems(slo: SLO, catalog: bool) -> Found:
    available = output_labels(slo, catalog)
    texts = [
        (f"alerts[{i}].{key}", getattr(alert, key))
        for i, alert in enumerate(slo.alerts)
        for key in ("summary", "description")
    ]
    if slo.burn_rate is not None:
        texts += [(f"burn_rate.{key}", getattr(slo.burn_rate, key)) for key in ("summary", "description")]
    for field, text in texts:
        try:
            used = templating.labels_used(text)
        except templating.TemplateError as exc:
            yield field, str(exc)
            continue
        for label in used:
            if available is not None and label not in available:
                keeps = ", ".join(sorted(available)) or "no labels"
                yield field, f"$labels.{label} is empty: the alert's expression keeps only {keeps}"


def alert_names(slo: SLO) -> Iterator[tuple[str, str]]:
    """(alert name, field) of every alert an SLO defines."""
    for index, alert in enumerate(slo.alerts):
        yield alert.name, f"alerts[{index}].name"
    if slo.burn_rate is not None:
        yield slo.burn_rate.name, "burn_rate.name"
        yield slo.burn_rate.absent_alert, "burn_rate.absent_name"
    if slo.sanity_alert is not None:
        yield slo.sanity_alert, "burn_rate.name"


def _duplicate_alerts(specs: SpecSet) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for loaded in specs.specs:
        for index, slo in enumerate(loaded.spec.slos):
            for name, field in alert_names(slo):
                where = loaded.locate(index, field)
                if not ALERT_NAME.match(name):
                    yield Problem(str(loaded.path), where, f"alert name {name!r} is longer than 63 characters")
                if name in seen:
                    yield Problem(str(loaded.path), where, f"alert {name!r} is also defined at {seen[name]}")
                seen.setdefault(name, f"{loaded.path}: {where}")


def _slo_label(spec: SpecFile, slo: SLO) -> str:
    """The `slo` label value of the SLO's alerts (its name unless the file's or the SLO's labels set it)."""
    return {"slo": slo.name, **spec.labels, **slo.labels}["slo"]


def _maintenance_problems(specs: SpecSet) -> Iterator[Problem]:
    """Window names are unique across files (Alertmanager's are global); a window mutes by the `slo` label, so every
    SLO sharing a muted SLO's label value must be muted by the same windows, and no alert may relabel `slo`."""
    seen: dict[str, str] = {}
    muting: dict[str, tuple[tuple[str, ...], str]] = {}
    for loaded in specs.specs:
        spec = loaded.spec
        for index, window in enumerate(spec.maintenance_windows):
            where = f"maintenance_windows[{index}].name"
            if window.name in seen:
                yield Problem(str(loaded.path), where, f"window {window.name!r} is also defined in {seen[window.name]}")
            seen.setdefault(window.name, str(loaded.path))
        if not spec.maintenance_windows:
            continue
        for index, slo in enumerate(spec.slos):
            names, value = spec.muting(slo), _slo_label(spec, slo)
            where = loaded.locate(index, "name")
            if value in muting and muting[value][0] != names:
                other = muting[value][1]
                reason = f"shares the slo label {value!r} with {other}, muted by other maintenance windows"
                yield Problem(str(loaded.path), where, reason)
            muting.setdefault(value, (names, f"{loaded.path}: {where}"))
            if names:
                own = [(f"alerts[{i}].labels.slo", a.labels) for i, a in enumerate(slo.alerts)]
                if slo.burn_rate is not None:
                    burn = slo.burn_rate
                    own += [("burn_rate.labels.slo", burn.labels), ("burn_rate.page_labels.slo", burn.page_labels)]
                    own.append(("burn_rate.ticket_labels.slo", burn.ticket_labels))
                for field, labels in own:
                    if "slo" in labels:
                        reason = "an SLO with maintenance windows keeps one slo label: its routes match on it"
                        yield Problem(str(loaded.path), loaded.locate(index, field), reason)


def _policy_problems(slo: SLO, spec: SpecFile, timing: Timing) -> Found:
    """A policy's conditions must be able to fire for this SLO and read windows that hold enough scrapes."""
    if not slo.alert_policies:
        return
    objective = slo.objective
    if not isinstance(objective, RatioObjective | LatencyBudgetObjective):
        yield "alert_policies", f"a {objective.kind} SLO has no error budget: alert policies burn one"
        return
    if slo.burn_rate is None:
        return
    if len(set(slo.alert_policies)) != len(slo.alert_policies):
        yield "alert_policies", "a policy is named twice: its alerts would be defined twice"
    budget = 1 - objective.target
    for policy in spec.policies(slo):
        names = [condition.name for condition in policy.conditions]
        if len(set(names)) != len(names):
            yield "alert_policies", f"policy {policy.name!r} has two conditions of the same name: one alert each"
        if policy.alert_when_no_data:
            yield (
                "alert_policies",
                f"policy {policy.name!r}: alertWhenNoData is not supported: the SLO's {slo.burn_rate.absent_alert} "
                "alert covers missing data, routed by its severity",
            )
        for condition in policy.conditions:
            name = f"policy {policy.name!r}, condition {condition.name!r}"
            if condition.threshold * budget >= 1:
                reason = (
                    f"{name} can never fire: a burn rate above {condition.threshold:g} needs an error ratio above "
                    f"{condition.threshold * budget:.4g}, and an error ratio cannot exceed 1"
                )
                yield "alert_policies", reason
            if duration_seconds(condition.lookback_window) > duration_seconds(objective.period):
                yield "alert_policies", f"{name} looks back {condition.lookback_window}, beyond the SLO's period"
            for field, reason in _window(condition.lookback_window, "alert_policies", timing):
                yield field, f"{name}: {reason}"
