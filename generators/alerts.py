"""Alerting rules of one SLO: threshold alerts, burn-rate alerts (one per window pair) and the absent-metrics alert.

Labels, later ones winning: `severity`, `slo` (the SLO's name), the file's `labels`, the SLO's `labels` (the real spec
sets `slo` there to the guide's values), the alert's `labels`; burn-rate alerts add `long_window` / `short_window`.
Annotations: `summary`, `description`, and `runbook_url`, added to every alert by `with_runbook` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from generators import naming, promql
from generators.profile import Profile
from slos.models import (
    SLO,
    GaugeObjective,
    LatencyBudgetObjective,
    QuantileObjective,
    RatioObjective,
    Severity,
    SpecFile,
    ThresholdAlert,
)
from slos.windows import WindowPair, window_pairs


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


def labels(spec: SpecFile, slo: SLO, severity: Severity, *own: Mapping[str, str]) -> dict[str, str]:
    merged = {"severity": severity.value, naming.SLO_LABEL: slo.name, **spec.labels, **slo.labels}
    for extra in own:
        merged.update(extra)
    return merged


def with_runbook(alert: Alert, base_url: str) -> Alert:
    """The one place `runbook_url` is added: `<runbook_base_url>/<AlertName>.md`."""
    url = f"{base_url.rstrip('/')}/{alert.alert}.md"
    return replace(alert, annotations={**alert.annotations, "runbook_url": url})


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
        expr=expr,
        for_=profile.hold(alert.for_),
        labels=labels(spec, slo, alert.severity, alert.labels),
        annotations={"summary": alert.summary, "description": alert.description},
    )


def pair_labels(pair: WindowPair) -> dict[str, str]:
    long_label, short_label = naming.WINDOW_LABELS
    return {long_label: pair.long, short_label: pair.short}


def burn_rate_alert(spec: SpecFile, slo: SLO, pair: WindowPair) -> Alert:
    """Both windows of `pair` burn the budget faster than its factor (no `for:`: the short window is the delay)."""
    assert slo.burn_rate is not None
    burn = slo.burn_rate
    severity = burn.page_severity if pair.tier == "page" else burn.ticket_severity
    long_record, short_record = naming.burn_rate_record(pair.long), naming.burn_rate_record(pair.short)
    return Alert(
        alert=burn.name,
        expr=promql.burn_alert(long_record, short_record, slo.name, pair.factor),
        labels=labels(spec, slo, severity, burn.labels, pair_labels(pair)),
        annotations={"summary": burn.summary, "description": burn.description},
    )


def absent_alert(spec: SpecFile, slo: SLO, profile: Profile) -> Alert:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective) and slo.burn_rate is not None
    burn = slo.burn_rate
    expr = promql.absent(objective, profile.window("5m"))
    return Alert(
        alert=burn.absent_alert,
        expr=expr,
        for_=profile.hold(burn.absent_for),
        labels=labels(spec, slo, burn.ticket_severity, burn.labels),
        annotations={
            "summary": f"SLO {slo.name} has no data",
            "description": f"{expr.removeprefix('absent(').removesuffix(')')} has no series: the SLO and its "
            "burn-rate alerts cannot be evaluated. Check the scrape target and whether the service has served traffic.",
        },
    )


def slo_alerts(spec: SpecFile, slo: SLO, profile: Profile) -> tuple[Alert, ...]:
    """Every alert of one SLO, with its runbook link."""
    if slo.burn_rate is None:
        found = [threshold_alert(spec, slo, alert, profile) for alert in slo.alerts]
    else:
        objective = slo.objective
        assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
        found = [burn_rate_alert(spec, slo, pair) for pair in window_pairs(objective.period)]
        found.append(absent_alert(spec, slo, profile))
    return tuple(with_runbook(alert, spec.runbook_base_url) for alert in found)
