"""Alerting rules of one SLO: threshold alerts, burn-rate alerts (one per enabled tier, and one per condition of the
SLO's alert policies) and the absent-metrics alert.

Labels, later ones winning: `severity`, `slo` (the SLO's name), the file's `labels`, the SLO's `labels` (the real spec
sets `slo` there to the guide's values), the alert's `labels`; burn-rate alerts add their tier's `page_labels` or
`ticket_labels`, then `burnrate_tier` (`naming.TIER_LABEL`: page_fast, page_slow, ticket_fast, ticket_slow) with
`long_window` / `short_window`; a policy condition's alert adds `alert_policy` and the condition's name as its tier.
An SLO's `min_events` adds to each tier's burn-rate alert `and ignoring (slo) <events over the long window> >= N`
(`floored`), and to a threshold alert `and on (<its labels>) <events over its window> >= N` (`threshold_floored`).
Annotations: `summary`, `description`, the burn-rate alerts' extra `annotations`, and `runbook_url`, added to every
alert by `with_runbook` alone. A spec's texts name its numbers by placeholder (`exceeds the {threshold}ms SLO`),
filled in here from the model by `spec_text`, so a threshold changed in the spec changes the alert texts with the
rules.

`target_down_alert`: `up == 0` per scrape target, when the spec file asks for one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from generators import naming, prometheus, promql, timeslice_promql
from generators.profile import Profile
from slos.models import (
    BUDGETED,
    SLO,
    AlertPolicy,
    BurnCondition,
    GaugeObjective,
    LatencyBudgetObjective,
    QuantileObjective,
    RatioObjective,
    Severity,
    SpecFile,
    TargetDownAlert,
    ThresholdAlert,
    TimeslicesObjective,
    duration_seconds,
)
from slos.windows import WindowPair, enabled_pairs


@dataclass(frozen=True)
class Alert:
    """One alerting rule, as data."""

    alert: str
    expr: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    for_: str | None = None

    def data(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_ is not None:
            rule["for"] = self.for_
        rule["labels"] = dict(sorted(self.labels.items()))
        rule["annotations"] = dict(sorted(self.annotations.items()))
        return rule


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(sorted(self.labels.items()))
        return rule


def labels(spec: SpecFile, slo: SLO, severity: Severity | str, *own: Mapping[str, str]) -> dict[str, str]:
    merged = {"severity": str(severity), naming.SLO_LABEL: slo.name, **spec.labels, **slo.labels}
    for extra in own:
        merged.update(extra)
    return merged


def with_runbook(alert: Alert, base_url: str) -> Alert:
    """The one place `runbook_url` is added: `<runbook_base_url>/<AlertName>.md`."""
    url = f"{base_url.rstrip('/')}/{alert.alert}.md"
    return replace(alert, annotations={**alert.annotations, "runbook_url": url})


_PLACEHOLDER = re.compile(r"(?<!\{)\{([a-z_]+)\}(?!\})")


def spec_text(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `{name}` placeholder replaced by the spec's value (Go templates' `{{ … }}` untouched)."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise promql.GeneratorError(f"{text!r}: no value for {{{match.group(1)}}} (known: {', '.join(values)})")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, text)


def text_values(slo: SLO, alert: ThresholdAlert | None = None) -> dict[str, str]:
    """The numbers a spec's texts may name: `{threshold}`, `{for}`, `{window}`, `{target}` (percent), `{period}`."""
    objective = slo.objective
    values: dict[str, str] = {}
    if isinstance(objective, QuantileObjective | GaugeObjective) and alert is not None:
        values["threshold"] = f"{threshold(alert, slo):g}"
        values["for"] = alert.for_
    if isinstance(objective, QuantileObjective):
        values["window"] = objective.window
    if isinstance(objective, BUDGETED):
        values["target"] = f"{objective.target * 100:g}"
        values["period"] = objective.period
        if isinstance(objective, LatencyBudgetObjective):
            values["threshold"] = f"{objective.threshold:g}"
    return values


def threshold(alert: ThresholdAlert, slo: SLO) -> float:
    objective = slo.objective
    assert isinstance(objective, QuantileObjective | GaugeObjective)
    return alert.threshold if alert.threshold is not None else objective.threshold


def threshold_alert(spec: SpecFile, slo: SLO, alert: ThresholdAlert, profile: Profile) -> Alert:
    objective = slo.objective
    value = threshold(alert, slo)
    if isinstance(objective, QuantileObjective):
        expr = promql.quantile_alert(
            objective.metric,
            objective.quantile,
            profile.window(objective.window),
            objective.by,
            objective.matchers,
            objective.op,
            value,
        )
    else:
        assert isinstance(objective, GaugeObjective)
        expr = promql.gauge_alert(objective, value)
    return Alert(
        alert=alert.name,
        expr=threshold_floored(expr, slo, profile),
        for_=profile.hold(alert.for_),
        labels=labels(spec, slo, alert.severity, alert.labels),
        annotations={
            "summary": spec_text(alert.summary, text_values(slo, alert)),
            "description": spec_text(alert.description, text_values(slo, alert)),
        },
    )


def pair_labels(pair: WindowPair) -> dict[str, str]:
    long_label, short_label = naming.WINDOW_LABELS
    return {naming.TIER_LABEL: pair.name, long_label: pair.long, short_label: pair.short}


def _burn_annotations(slo: SLO) -> dict[str, str]:
    assert slo.burn_rate is not None
    burn = slo.burn_rate
    return {
        **burn.annotations,
        "summary": spec_text(burn.summary, text_values(slo)),
        "description": spec_text(burn.description, text_values(slo)),
    }


def burn_rate_alert(spec: SpecFile, slo: SLO, pair: WindowPair) -> Alert:
    """Both windows of `pair` burn the budget faster than its factor (no `for:`: the short window is the delay)."""
    assert slo.burn_rate is not None
    burn = slo.burn_rate
    own = burn.page_labels if pair.tier == "page" else burn.ticket_labels
    long_record, short_record = naming.burn_rate_record(pair.long), naming.burn_rate_record(pair.short)
    return Alert(
        alert=burn.name,
        expr=promql.burn_alert(long_record, short_record, slo.name, pair.factor),
        labels=labels(spec, slo, burn.severity(pair.name), burn.labels, own, pair_labels(pair)),
        annotations=_burn_annotations(slo),
    )


def condition_labels(policy: AlertPolicy, condition: BurnCondition) -> dict[str, str]:
    return {naming.POLICY_LABEL: policy.name, naming.TIER_LABEL: condition.name}


def condition_alert(spec: SpecFile, slo: SLO, policy: AlertPolicy, condition: BurnCondition, profile: Profile) -> Alert:
    """An alert policy's condition (OpenSLO AlertCondition, kind burnrate): the burn rate over its lookback window
    above its threshold for `alert_after`; routed to the policy's targets by its `alert_policy` label."""
    assert slo.burn_rate is not None
    record = naming.burn_rate_record(condition.lookback_window)
    op = ">=" if condition.op == "gte" else ">"
    return Alert(
        alert=slo.burn_rate.name,
        expr=promql.checked(
            f"{record}{{{naming.SLO_LABEL}={promql.string(slo.name)}}} {op} {promql.number(condition.threshold)}"
        ),
        for_=profile.hold(condition.alert_after) if duration_seconds(condition.alert_after) else None,
        labels=labels(spec, slo, condition.severity, slo.burn_rate.labels, condition_labels(policy, condition)),
        annotations=_burn_annotations(slo),
    )


def floored(alert: Alert, slo: SLO, pair: WindowPair, profile: Profile) -> Alert:
    """`alert`, silent while the pair's long window holds fewer events than the SLO's `min_events` (none, 0: as is)."""
    objective = slo.objective
    if not slo.min_events or not isinstance(objective, RatioObjective | LatencyBudgetObjective):
        return alert
    window = profile.window(pair.long)
    count = promql.event_count(objective, window, duration_seconds(window))
    return replace(alert, expr=promql.with_floor(alert.expr, count, profile.events(slo.min_events)))


def threshold_floored(expr: str, slo: SLO, profile: Profile) -> str:
    """A threshold alert's `expr`, silent while its window holds fewer events than the SLO's `min_events` (none, 0:
    as is): the quantile's window, or the gauge's `events.window`."""
    objective = slo.objective
    assert isinstance(objective, QuantileObjective | GaugeObjective)
    if not slo.min_events:
        return expr
    if isinstance(objective, QuantileObjective):
        window = objective.window
    else:
        assert objective.events is not None, "slos.validate refuses a gauge's floor without events"
        window = objective.events.window
    count = promql.threshold_events(objective, profile.window(window))
    return promql.with_floor(expr, count, profile.events(slo.min_events), on=promql.threshold_grouping(objective))


def absent_alert(spec: SpecFile, slo: SLO, profile: Profile) -> Alert:
    objective = slo.objective
    assert slo.burn_rate is not None
    burn = slo.burn_rate
    if isinstance(objective, TimeslicesObjective):
        missing = timeslice_promql.absent_selectors(slo, profile)
    else:
        assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
        missing = promql.absent_selectors(objective, profile.window("5m"))
    return Alert(
        alert=burn.absent_alert,
        expr=promql.checked(" or ".join(f"absent({found})" for found in missing)),
        for_=profile.hold(burn.absent_for),
        labels=labels(spec, slo, burn.ticket_severity, burn.labels),
        annotations={
            "summary": f"SLO {slo.name} has no data.",
            "description": f"{' or '.join(missing)} has no series: the SLO and its burn-rate alerts cannot be "
            "evaluated. Check the scrape target, whether the service has served traffic, and that the threshold is "
            "still a bucket boundary.",
        },
    )


def target_down_alert(spec: SpecFile, rule: TargetDownAlert, profile: Profile) -> Alert:
    """A scrape target of the service's job that Prometheus cannot reach, per pod."""
    job = prometheus.JOB if spec.service == prometheus.JOB else spec.service
    merged = {"severity": rule.severity.value, **spec.labels, **rule.labels}
    alert = Alert(
        alert=rule.name,
        expr=promql.checked(f"{promql.selector('up', {'job': job})} == 0"),
        for_=profile.hold(rule.for_),
        labels=merged,
        annotations={
            "summary": spec_text(rule.summary, {"for": rule.for_}),
            "description": spec_text(rule.description, {"for": rule.for_}),
        },
    )
    return with_runbook(alert, spec.runbook_base_url)


def slo_alerts(spec: SpecFile, slo: SLO, profile: Profile) -> tuple[Alert, ...]:
    """Every alert of one SLO, with its runbook link."""
    if slo.burn_rate is None:
        found = [threshold_alert(spec, slo, alert, profile) for alert in slo.alerts]
    else:
        assert isinstance(slo.objective, BUDGETED)
        found = [floored(burn_rate_alert(spec, slo, pair), slo, pair, profile) for pair in enabled_pairs(slo)]
        found += [
            condition_alert(spec, slo, policy, condition, profile)
            for policy in spec.policies(slo)
            for condition in policy.conditions
        ]
        found.append(absent_alert(spec, slo, profile))
    return tuple(with_runbook(alert, spec.runbook_base_url) for alert in found)
