"""OpenSLO v1 input: `SLO` documents with an inline `indicator`, or `SLO` + `SLI` + `Service` documents in one file.

```yaml
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-availability, displayName: Checkout availability}
spec:
  service: checkout
  indicator:
    metadata: {name: checkout-errors}
    spec:
      ratioMetric:
        counter: true             # the queries are counter selectors, wrapped in sum(rate(…[window]))
        bad: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total{code=~"5.."}'}}}
        total: {metricSource: {type: Prometheus, spec: {query: http_requests_total}}}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.995}]    # or targetPercent: 99.5
```

Each SLO becomes a native SLO per objective (its name with `-` turned into `_`, and for several objectives
`_<displayName>`) alerted by the native burn-rate defaults: `<CamelName>BudgetBurn` and
`<CamelName>BudgetBurnMetricsAbsent`; an SLO with `alertPolicies` (not empty) is alerted by its policies' conditions
instead of the four default tiers (and keeps the absent alert). A ratio metric with Occurrences becomes a `ratio`
objective; Timeslices, RatioTimeslices, threshold metrics and calendar windows become a `timeslices` objective
(`slos.openslo_objectives` has the table). A query containing `{{.window}}` is a template used as is. What the
generators cannot honour is refused with a reason, never ignored. Alert policies, conditions and notification targets
are read by `slos.openslo_alerting`. Errors name `documents[<index>]` and the field path inside that document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from slos.errors import SpecError, details, field_path, reason
from slos.locations import Locations, SloLocation
from slos.models import (
    SLO,
    TIER_NAMES,
    WINDOW_TEMPLATE,
    BurnRateAlerting,
    BurnTiers,
    EventSelector,
    SpecFile,
    TierSettings,
)
from slos.openslo_alerting import KINDS, SPEC_MODELS, Registry
from slos.openslo_documents import InlineDocument, Metadata, PolicyRef, Problems
from slos.openslo_documents import OpenSLOModel as _Model
from slos.openslo_objectives import Method, Objective, Refusal, TimeWindow, native_objective

API_VERSION = "openslo/v1"
# Metadata annotation giving the runbook base URL (runbook_url = <base>/<AlertName>.md), on the Service or the SLO.
RUNBOOK_ANNOTATION = "featurestore.dev/runbook-base-url"
DEFAULT_RUNBOOK_BASE_URL = "https://runbooks.example.com"  # a placeholder: set the annotation


class QuerySpec(_Model):
    query: str = Field(min_length=1)


class MetricSource(_Model):
    metricSourceRef: str | None = None
    type: str | None = None
    spec: QuerySpec

    @field_validator("type")
    @classmethod
    def _prometheus(cls, value: str | None) -> str | None:
        if value is not None and value.lower() != "prometheus":
            raise ValueError(f"only Prometheus metric sources are supported, not {value!r}")
        return value


class Metric(_Model):
    metricSource: MetricSource


class RatioMetric(_Model):
    counter: bool = False
    good: Metric | None = None
    bad: Metric | None = None
    total: Metric | None = None
    raw: Any = None
    rawType: Any = None

    @model_validator(mode="after")
    def _good_or_bad_with_total(self) -> RatioMetric:
        if self.raw is not None or self.rawType is not None:
            raise ValueError("raw ratio metrics are not supported: give `good` or `bad`, with `total`")
        if self.total is None:
            raise ValueError("`total` is required")
        if (self.good is None) == (self.bad is None):
            raise ValueError("give exactly one of `good` or `bad`, with `total`")
        return self


class SLISpec(_Model):
    description: str = ""
    ratioMetric: RatioMetric | None = None
    thresholdMetric: Metric | None = None

    @model_validator(mode="after")
    def _one_metric(self) -> SLISpec:
        if (self.ratioMetric is None) == (self.thresholdMetric is None):
            raise ValueError("give exactly one of `ratioMetric` or `thresholdMetric`")
        return self


class InlineIndicator(_Model):
    metadata: Metadata
    spec: SLISpec


class SLOSpec(_Model):
    description: str = ""
    service: str = Field(min_length=1)
    indicator: InlineIndicator | None = None
    indicatorRef: str | None = None
    timeWindow: list[TimeWindow] = Field(min_length=1, max_length=1)
    budgetingMethod: Method
    objectives: list[Objective] = Field(min_length=1)
    alertPolicies: list[PolicyRef | InlineDocument] | None = Field(default=None, description="null or [] is none")

    @model_validator(mode="after")
    def _one_indicator(self) -> SLOSpec:
        if (self.indicator is None) == (self.indicatorRef is None):
            raise ValueError("give exactly one of `indicator` or `indicatorRef`")
        return self


class ServiceSpec(_Model):
    description: str = ""


class Document(_Model):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLO", "SLI", "Service", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"]
    metadata: Metadata
    spec: dict[str, Any]


def _documents(documents: Sequence[Any], problems: Problems) -> list[tuple[int, Document, BaseModel]]:
    parsed: list[tuple[int, Document, BaseModel]] = []
    spec_models: dict[str, type[BaseModel]] = {"SLO": SLOSpec, "SLI": SLISpec, "Service": ServiceSpec, **SPEC_MODELS}
    for index, raw in enumerate(documents):
        where = f"documents[{index}]"
        if not isinstance(raw, dict):
            problems.add(where, f"expected a mapping, got {type(raw).__name__}")
            continue
        if raw.get("kind") not in spec_models and "kind" in raw and raw.get("apiVersion") == API_VERSION:
            kinds = ", ".join(spec_models)
            problems.add(f"{where}.kind", f"kind {raw['kind']!r} is not supported: only {kinds} are read")
            continue
        try:
            document = Document.model_validate(raw)
        except ValidationError as exc:
            problems.validation(where, exc, Document)
            continue
        model = spec_models[document.kind]
        try:
            spec = model.model_validate(document.spec)
        except ValidationError as exc:
            problems.validation(f"{where}.spec", exc, model)
            continue
        parsed.append((index, document, spec))
    return parsed


def _selector(metric: Metric) -> EventSelector:
    return EventSelector(query=metric.metricSource.spec.query.strip())


def _camel(name: str) -> str:
    camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)
    return camel if camel[:1].isalpha() else f"Slo{camel}"


def _labels(labels: dict[str, str | list[str]]) -> dict[str, str]:
    return {key: value if isinstance(value, str) else ",".join(value) for key, value in sorted(labels.items())}


def _convert(documents: Sequence[Any], path: Path, *, partial: bool = False) -> tuple[SpecFile, list[SloLocation]]:
    """The spec and, per SLO, its locations; SpecError on any problem, unless `partial` keeps the SLOs that convert
    (SpecError only when none does or the file's top level is refused)."""
    problems = Problems()
    parsed = _documents(documents, problems)
    alerting = Registry(problems.add)
    for index, doc, spec in parsed:
        if doc.kind in KINDS:
            alerting.register(doc.kind, doc.metadata.name, f"documents[{index}]", spec)
    slis = {doc.metadata.name: (index, spec) for index, doc, spec in parsed if isinstance(spec, SLISpec)}
    services = {doc.metadata.name: (index, doc, spec) for index, doc, spec in parsed if isinstance(spec, ServiceSpec)}
    slos: list[SLO] = []
    locations: list[SloLocation] = []
    service_names: list[tuple[str, str]] = []
    runbook, runbook_at = DEFAULT_RUNBOOK_BASE_URL, "runbook_base_url"
    for index, doc, _spec in services.values():
        if RUNBOOK_ANNOTATION in doc.metadata.annotations:
            runbook = doc.metadata.annotations[RUNBOOK_ANNOTATION]
            runbook_at = f"documents[{index}].metadata.annotations.{RUNBOOK_ANNOTATION}"
    for index, doc, spec in parsed:
        if not isinstance(spec, SLOSpec):
            continue
        where = f"documents[{index}]"
        indicator = _indicator(spec, where, slis, problems)
        if indicator is None:
            continue
        if services and spec.service not in services:
            problems.add(f"{where}.spec.service", f"no Service named {spec.service!r} in this file")
        service_names.append((spec.service, f"{where}.spec.service"))
        if RUNBOOK_ANNOTATION in doc.metadata.annotations:
            runbook = doc.metadata.annotations[RUNBOOK_ANNOTATION]
            runbook_at = f"{where}.metadata.annotations.{RUNBOOK_ANNOTATION}"
        for slo, location in _slo(doc, spec, where, indicator, alerting, problems):
            slos.append(slo)
            locations.append(location)
    if not any(isinstance(spec, SLOSpec) for _, _, spec in parsed) and not problems.items:
        problems.add("", "an OpenSLO file needs at least one SLO document")
    distinct = sorted({name for name, _ in service_names})
    if len(distinct) > 1:
        problems.add(service_names[-1][1], f"one service per file, found {', '.join(distinct)}")
    if problems.items and not (partial and slos and len(distinct) <= 1):
        raise SpecError(path, problems.items)
    return _spec_file(path, service_names[0][0], services, (runbook, runbook_at), slos, locations, alerting), locations


def _spec_file(
    path: Path,
    service: str,
    services: Mapping[str, tuple[int, Any, Any]],
    runbook: tuple[str, str],
    slos: Sequence[SLO],
    locations: Sequence[SloLocation],
    alerting: Registry,
) -> SpecFile:
    """The native spec of the converted documents; a SpecError names the OpenSLO field of any refused value
    (`runbook` is the base URL and where it was read)."""
    _, service_doc, service_spec = services.get(service, (0, None, None))
    try:
        return SpecFile(
            version="featurestore/v1",
            service=service,
            description=service_spec.description if isinstance(service_spec, ServiceSpec) else "",
            runbook_base_url=runbook[0],
            labels=_labels(service_doc.metadata.labels) if service_doc is not None else {},
            slos=tuple(slos),
            notification_targets=tuple(alerting.targets[name] for name in sorted(alerting.targets)),
            alert_policies=tuple(alerting.policies[name] for name in sorted(alerting.policies)),
        )
    except ValidationError as exc:
        problems = [
            (
                runbook[1] if detail["loc"] == ("runbook_base_url",) else _file_field(detail["loc"], locations),
                reason(detail),
            )
            for detail in details(exc)
        ]
        raise SpecError(path, problems) from None


def _indicator(spec: SLOSpec, where: str, slis: dict[str, tuple[int, SLISpec]],
               problems: Problems) -> tuple[SLISpec, str] | None:  # fmt: skip
    """The SLO's SLI (inline or referenced) and where its spec is; None, with a problem, for a missing reference."""
    if spec.indicatorRef is None:
        assert spec.indicator is not None
        return spec.indicator.spec, f"{where}.spec.indicator.spec"
    if spec.indicatorRef not in slis:
        problems.add(f"{where}.spec.indicatorRef", f"no SLI named {spec.indicatorRef!r} in this file")
        return None
    sli_index, sli = slis[spec.indicatorRef]
    return sli, f"documents[{sli_index}].spec"


def _sli_fields(sli: SLISpec, sli_where: str) -> tuple[dict[str, Any] | None, str | None, Locations]:
    """The SLI as native event selectors or a threshold query, and where their fields are."""
    if sli.thresholdMetric is not None:
        at = f"{sli_where}.thresholdMetric.metricSource.spec.query"
        return None, sli.thresholdMetric.metricSource.spec.query.strip(), {"objective.threshold.query": at}
    ratio = sli.ratioMetric
    assert ratio is not None
    roles = {role: getattr(ratio, role) for role in ("good", "bad", "total") if getattr(ratio, role) is not None}
    fields = {f"objective.{role}": f"{sli_where}.ratioMetric.{role}.metricSource.spec.query" for role in roles}
    return {role: _selector(metric) for role, metric in roles.items()}, None, fields


def _objective_fields(where: str, index: int, objective: Objective) -> Locations:
    at = f"{where}.spec.objectives[{index}]"
    target_field = "target" if objective.target is not None else "targetPercent"
    return {
        "objective": f"{where}.spec",
        "objective.target": f"{at}.{target_field}",
        "objective.period": f"{where}.spec.timeWindow[0].duration",
        "objective.calendar": f"{where}.spec.timeWindow[0].calendar",
        "objective.calendar.start": f"{where}.spec.timeWindow[0].calendar.startTime",
        "objective.calendar.time_zone": f"{where}.spec.timeWindow[0].calendar.timeZone",
        "objective.slice": f"{at}.timeSliceWindow",
        "objective.slice_target": f"{at}.timeSliceTarget",
        "objective.threshold.op": f"{at}.op",
        "objective.threshold.threshold": f"{at}.value",
    }


def _suffixes(objectives: list[Objective]) -> list[str]:
    """Per objective, what tells its SLO from its siblings': nothing for one objective, else its displayName in
    snake_case when that is unique, else its position."""
    if len(objectives) == 1:
        return [""]
    names = [re.sub(r"[^a-z0-9]+", "_", (o.displayName or "").lower()).strip("_") for o in objectives]
    unique = all(names) and len(set(names)) == len(names) and all(name[:1].isalpha() for name in names)
    return names if unique else [f"objective_{index}" for index in range(len(objectives))]


def _check_queries(sli: SLISpec, sli_where: str, problems: Problems) -> None:
    ratio = sli.ratioMetric
    if ratio is None:
        return
    for role in ("good", "bad", "total"):
        metric = getattr(ratio, role)
        if metric is not None and not ratio.counter and not WINDOW_TEMPLATE.search(metric.metricSource.spec.query):
            problems.add(
                f"{sli_where}.ratioMetric.{role}.metricSource.spec.query",
                "without `counter: true` a query must contain {{.window}}: the generator cannot window it",
            )


def _slo(doc: Document, spec: SLOSpec, where: str, indicator: tuple[SLISpec, str], alerting: Registry,
         problems: Problems) -> list[tuple[SLO, SloLocation]]:  # fmt: skip
    """One SLO document as native SLOs, one per objective, with their field locations; those that do not convert are
    left out (problems say why)."""
    sli, sli_where = indicator
    _check_queries(sli, sli_where, problems)
    events, threshold_query, sli_fields = _sli_fields(sli, sli_where)
    display = doc.metadata.displayName or doc.metadata.name
    policies = tuple(alerting.slo_policies(spec.alertPolicies or [], f"{where}.spec.alertPolicies"))
    # An SLO with alert policies is alerted by their conditions alone, as OpenSLO means; without, by the tiers.
    disabled = TierSettings(enabled=False)
    tiers = BurnTiers(**dict.fromkeys(TIER_NAMES, disabled)) if spec.alertPolicies else BurnTiers()
    converted: list[tuple[SLO, SloLocation]] = []
    for index, (objective, suffix) in enumerate(zip(spec.objectives, _suffixes(spec.objectives), strict=True)):
        fields: Locations = {
            "": where,
            "name": f"{where}.metadata.name",
            "labels": f"{where}.metadata.labels",
            "description": f"{where}.spec.description",
            "burn_rate": f"{where}.metadata.name",
            "alert_policies": f"{where}.spec.alertPolicies",
            **_objective_fields(where, index, objective),
            **sli_fields,
        }
        try:
            data = native_objective(spec.budgetingMethod, objective, spec.timeWindow[0], events, threshold_query)
        except Refusal as refusal:
            at = refusal.field if refusal.field.startswith("timeWindow") else f"objectives[{index}].{refusal.field}"
            problems.add(f"{where}.spec.{at}", refusal.reason)
            continue
        name = "_".join(part for part in (doc.metadata.name.replace("-", "_"), suffix) if part)
        title = f"{display} ({objective.displayName})" if suffix and objective.displayName else display
        try:
            slo = SLO.model_validate(
                {
                    "name": name,
                    "description": spec.description or title,
                    "labels": _labels(doc.metadata.labels),
                    "objective": data,
                    "burn_rate": BurnRateAlerting(
                        name=f"{_camel(name)}BudgetBurn",
                        summary=f"{title} error budget is burning too fast",
                        tiers=tiers,
                    ),
                    "alert_policies": policies,
                }
            )
        except ValidationError as exc:
            for detail in details(exc):
                problems.add(SloLocation.mapped(fields).of(field_path(detail["loc"])), reason(detail))
            continue
        converted.append((slo, SloLocation.mapped(fields)))
    return converted


def _file_field(loc: Sequence[int | str], locations: Sequence[SloLocation]) -> str:
    if len(loc) >= 2 and loc[0] == "slos" and isinstance(loc[1], int) and loc[1] < len(locations):
        return locations[loc[1]].of(field_path(loc[2:]))
    return "documents" if loc[:1] == ("slos",) else field_path(loc)


def convert(documents: Sequence[Any], path: Path) -> tuple[SpecFile, list[SloLocation]]:
    """One OpenSLO v1 file (its non-empty YAML documents) as a native spec with, per SLO, where its fields are in the
    file; SpecError naming document and field."""
    return _convert(documents, path)


def parse_documents(documents: Sequence[Any], path: Path) -> SpecFile:
    return _convert(documents, path)[0]


def salvage(documents: Sequence[Any], path: Path) -> tuple[SpecFile, list[SloLocation]] | None:
    """The SLOs of a refused file that convert on their own, with their locations (see `_convert`)."""
    try:
        return _convert(documents, path, partial=True)
    except SpecError:
        return None
