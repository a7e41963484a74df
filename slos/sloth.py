"""Sloth input: `version: prometheus/v1` files and `PrometheusServiceLevel` resources (`sloth.slok.dev/v1`).

```yaml
version: prometheus/v1
service: myservice
labels: {owner: myteam}
slos:
  - name: requests-availability
    objective: 99.9                  # percent
    description: Common SLO based on availability for HTTP request responses.
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="myservice",code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="myservice"}[{{.window}}]))
    alerting:
      name: MyServiceHighErrorRate
      labels: {category: availability}
      annotations: {summary: High error rate on myservice}
      page_alert: {labels: {severity: critical, routing_key: myteam}}
      ticket_alert: {labels: {severity: warning, slack_channel: "#alerts"}}
```

The mapping onto the native models, SLO by SLO:

- name: `<service>-<name>` with `-` turned into `_` (Sloth's `sloth_id`, so two services' SLOs never collide);
- `objective` (percent) becomes `target` (fraction); the period is Sloth's default, 30d (prometheus/v1 has no field);
- `events` becomes a `ratio` objective whose `bad` and `total` are the two `{{.window}}` templates, used as is;
- `raw` (an error-ratio template R) becomes a `ratio` objective's `error_ratio_query: R`: the recorded error ratio
  is R itself, with R's labels, as Sloth records it;
- file and SLO `labels` become the file's and the SLO's labels; `alerting` becomes `burn_rate` with the native window
  pairs, which are Sloth's (page 1h/5m 14.4x and 6h/30m 6x, ticket 1d/2h 3x and 3d/6h 1x over 30 days): Sloth ORs the
  two pairs of a tier in one rule, we render one rule per pair, so a Sloth tier fires exactly when one of our two
  rules of that tier fires (tests/slos/test_sloth_equivalence.py proves it on Sloth's examples);
- a tier's `severity` label is kept when it is one of ours (critical, warning, info), since the generated Alertmanager
  routes on those; any other value (Sloth's examples use `pageteam`, `slack`) gives the tier its default, critical for
  page and warning for ticket. The tier's other labels become `page_labels` / `ticket_labels`;
- `alerting.annotations`: `summary` and `description` fill those fields, the others are added to every burn alert;
- one tier disabled (`disable: true`): its two window pairs are disabled (`burn_rate.tiers`); both tiers disabled: the
  SLO is recorded and not alerted (Sloth renders no alert either).

Refused with file, field and reason: SLI plugins, per-tier annotations, queries without `{{.window}}`, unknown
fields. A CRD's fields are camelCase (`errorQuery`,
`pageAlert`) and its errors name `spec.slos[0].sli.events.errorQuery`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slos.errors import SpecError, details, field_path, reason
from slos.locations import SloLocation
from slos.models import (
    SLO,
    TIER_NAMES,
    WINDOW_TEMPLATE,
    BurnRateAlerting,
    EventSelector,
    RatioObjective,
    Severity,
    SpecFile,
)

VERSION = "prometheus/v1"
CRD_API_VERSION = "sloth.slok.dev/v1"
CRD_KIND = "PrometheusServiceLevel"
# Sloth's default SLO period (its `--default-slo-period` flag); prometheus/v1 specs cannot set another.
SLOTH_PERIOD = "30d"
DEFAULT_RUNBOOK_BASE_URL = "https://runbooks.example.com"  # Sloth specs have none: a placeholder
TIER_DEFAULTS = {"page": Severity.CRITICAL, "ticket": Severity.WARNING}
_USER_MAPS = frozenset({"labels", "annotations"})  # their keys are the user's, never renamed


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierAlert(_Model):
    disable: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Alerting(_Model):
    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    page_alert: TierAlert = TierAlert()
    ticket_alert: TierAlert = TierAlert()


class Events(_Model):
    error_query: str = Field(min_length=1)
    total_query: str = Field(min_length=1)


class Raw(_Model):
    error_ratio_query: str = Field(min_length=1)


class SLI(_Model):
    events: Events | None = None
    raw: Raw | None = None
    plugin: Any = None


class SlothSLO(_Model):
    name: Annotated[str, Field(min_length=1)]
    objective: Annotated[float, Field(gt=0, lt=100, description="percent")]
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    sli: SLI
    alerting: Alerting = Alerting()


class SlothSpec(_Model):
    version: Literal["prometheus/v1"] = "prometheus/v1"
    service: Annotated[str, Field(min_length=1)]
    labels: dict[str, str] = Field(default_factory=dict)
    slos: tuple[SlothSLO, ...] = Field(min_length=1)


class Resource(_Model):
    apiVersion: Literal["sloth.slok.dev/v1"]
    kind: Literal["PrometheusServiceLevel"]
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any]


def is_sloth(document: dict[str, Any]) -> bool:
    return document.get("version") == VERSION or document.get("apiVersion") == CRD_API_VERSION


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _renamed(node: Any, rename: Callable[[str], str], user: bool = False) -> Any:
    """`node` with its schema keys renamed (the keys of `labels` and `annotations` are the user's)."""
    if isinstance(node, dict):
        if user:
            return dict(node)
        return {
            (rename(key) if isinstance(key, str) else key): _renamed(value, rename, key in _USER_MAPS)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_renamed(item, rename) for item in node]
    return node


class _Format:
    """Where a field lives in the file: `slos[0].sli.events.error_query`, or `spec.slos[0].sli.events.errorQuery`."""

    def __init__(self, crd: bool) -> None:
        self.crd = crd

    def path(self, snake: str) -> str:
        """`snake` as the file writes it: for a CRD under `spec.` with camelCase keys (user label keys unchanged)."""
        if not self.crd:
            return snake
        words, previous = [], ""
        for token in re.split(r"(\.|\[\d+\])", snake):
            if token and token != "." and not token.startswith("["):
                words.append(token if previous in _USER_MAPS else _camel(token))
                previous = token
            else:
                words.append(token)
        return "spec." + "".join(words) if snake else "spec"


def _slo_location(index: int, slo: SlothSLO, fmt: _Format) -> SloLocation:
    at = f"slos[{index}]"
    raw = f"{at}.sli.raw.error_ratio_query"
    bad, total = f"{at}.sli.events.error_query", f"{at}.sli.events.total_query"
    native = {
        "": at,
        "name": f"{at}.name",
        "description": f"{at}.description",
        "labels": f"{at}.labels",
        "objective": f"{at}.sli",
        "objective.target": f"{at}.objective",
        "objective.period": f"{at}.objective",
        "objective.bad": bad,
        "objective.total": total,
        "objective.error_ratio_query": raw,
        "burn_rate": f"{at}.alerting",
        "burn_rate.name": f"{at}.alerting.name",
        "burn_rate.absent_name": f"{at}.alerting.name",
        "burn_rate.labels": f"{at}.alerting.labels",
        "burn_rate.annotations": f"{at}.alerting.annotations",
        "burn_rate.summary": f"{at}.alerting.annotations.summary",
        "burn_rate.description": f"{at}.alerting.annotations.description",
        "burn_rate.page_labels": f"{at}.alerting.page_alert.labels",
        "burn_rate.ticket_labels": f"{at}.alerting.ticket_alert.labels",
    }
    return SloLocation.mapped({key: fmt.path(value) for key, value in native.items()})


def _severity(tier: str, labels: dict[str, str]) -> Severity:
    value = labels.get("severity", "")
    return Severity(value) if value in {s.value for s in Severity} else TIER_DEFAULTS[tier]


def _burn_rate(spec: SlothSpec, slo: SlothSLO, at: str, problems: list[tuple[str, str]]) -> BurnRateAlerting | None:
    alerting = slo.alerting
    page, ticket = alerting.page_alert, alerting.ticket_alert
    if page.disable and ticket.disable:
        return None
    for tier, alert in (("page_alert", page), ("ticket_alert", ticket)):
        if alert.annotations:
            problems.append((f"{at}.alerting.{tier}.annotations", "per-tier annotations are not supported"))
    if alerting.name is None:
        problems.append((f"{at}.alerting.name", "required unless both page_alert and ticket_alert are disabled"))
        return None
    annotations = dict(alerting.annotations)
    summary = annotations.pop("summary", f"{spec.service} {slo.name} SLO error budget burn rate is too fast.")
    description = annotations.pop("description", None)
    extra = {"description": description} if description is not None else {}
    return BurnRateAlerting.model_validate(
        {
            "name": alerting.name,
            "summary": summary,
            **extra,
            "page_severity": _severity("page", page.labels),
            "ticket_severity": _severity("ticket", ticket.labels),
            "labels": alerting.labels,
            "page_labels": {k: v for k, v in page.labels.items() if k != "severity"},
            "ticket_labels": {k: v for k, v in ticket.labels.items() if k != "severity"},
            "annotations": annotations,
            # Sloth's page tier is our page_fast and page_slow pairs, its ticket tier ticket_fast and ticket_slow
            "tiers": {
                name: {"enabled": False}
                for name in TIER_NAMES
                if (page.disable and name.startswith("page")) or (ticket.disable and name.startswith("ticket"))
            },
        }
    )


def _objective(slo: SlothSLO, at: str, problems: list[tuple[str, str]]) -> RatioObjective | None:
    sli = slo.sli
    if sli.plugin is not None:
        problems.append((f"{at}.sli.plugin", "SLI plugins are Go code run by Sloth: give `events` or `raw` instead"))
        return None
    if (sli.events is None) == (sli.raw is None):
        problems.append((f"{at}.sli", "give exactly one of `events` or `raw`"))
        return None
    if sli.raw is not None:
        queries = {"raw.error_ratio_query": sli.raw.error_ratio_query.strip()}
    else:
        assert sli.events is not None
        queries = {
            "events.error_query": sli.events.error_query.strip(),
            "events.total_query": sli.events.total_query.strip(),
        }
    missing = [field for field, query in queries.items() if not WINDOW_TEMPLATE.search(query)]
    for field in missing:
        problems.append((f"{at}.sli.{field}", "Sloth queries use the {{.window}} template: it is missing"))
    if missing:
        return None
    target, period = round(slo.objective / 100, 12), SLOTH_PERIOD
    if sli.raw is not None:
        ratio = queries["raw.error_ratio_query"]
        return RatioObjective(kind="ratio", target=target, period=period, error_ratio_query=ratio)
    bad, total = queries["events.error_query"], queries["events.total_query"]
    return RatioObjective(
        kind="ratio", target=target, period=period, bad=EventSelector(query=bad), total=EventSelector(query=total)
    )


def _convert(
    document: dict[str, Any], *, partial: bool = False
) -> tuple[SpecFile | None, list[tuple[str, str]], list[SloLocation], _Format]:
    """(the spec, or None on problems, unless `partial` keeps the SLOs that convert; problems; per kept SLO its
    locations; the file's format)."""
    crd = document.get("apiVersion") == CRD_API_VERSION
    fmt = _Format(crd)
    body: Any = document
    if crd:
        try:
            body = _renamed(Resource.model_validate(document).spec, _snake)
        except ValidationError as exc:
            return None, [(field_path(d["loc"]), reason(d, Resource)) for d in details(exc)], [], fmt
    try:
        spec = SlothSpec.model_validate(body)
    except ValidationError as exc:
        # A CRD's keys were renamed to snake_case: a suggestion would name a key it does not use.
        root = None if crd else SlothSpec
        return None, [(fmt.path(field_path(d["loc"])), reason(d, root)) for d in details(exc)], [], fmt
    slos, locations, problems = _slos(spec, fmt)
    if problems and not (partial and slos):
        return None, problems, locations, fmt
    try:
        return (
            SpecFile(
                version="featurestore/v1",
                service=spec.service,
                runbook_base_url=DEFAULT_RUNBOOK_BASE_URL,
                labels=spec.labels,
                slos=tuple(slos),
            ),
            problems,
            locations,
            fmt,
        )
    except ValidationError as exc:
        return None, [(fmt.path(field_path(d["loc"])), reason(d)) for d in details(exc)], locations, fmt


def _slos(spec: SlothSpec, fmt: _Format) -> tuple[list[SLO], list[SloLocation], list[tuple[str, str]]]:
    """The SLOs that convert, each one's locations, and the problems of those that do not."""
    problems: list[tuple[str, str]] = []
    slos: list[SLO] = []
    locations: list[SloLocation] = []
    for index, slo in enumerate(spec.slos):
        at = f"slos[{index}]"
        found: list[tuple[str, str]] = []
        objective = _objective(slo, at, found)
        burn_rate = _burn_rate(spec, slo, at, found)
        problems += [(fmt.path(where), reason) for where, reason in found]
        fields = _slo_location(index, slo, fmt)
        if objective is None or found:
            continue
        try:
            slos.append(
                SLO(
                    name=f"{spec.service}-{slo.name}".replace("-", "_"),
                    description=slo.description or slo.name,
                    labels=slo.labels,
                    objective=objective,
                    burn_rate=burn_rate,
                )
            )
        except ValidationError as exc:
            problems += [(fields.of(field_path(d["loc"])), reason(d)) for d in details(exc)]
            continue
        locations.append(fields)
    return slos, locations, problems


def convert(document: dict[str, Any], path: Path) -> tuple[SpecFile, list[SloLocation]]:
    """One Sloth spec (prometheus/v1 or a PrometheusServiceLevel) as a native spec with, per SLO, where its fields are
    in the file; SpecError naming each field."""
    spec, problems, locations, _ = _convert(document)
    if spec is None:
        raise SpecError(path, problems)
    return spec, locations


def parse_document(document: dict[str, Any], path: Path) -> SpecFile:
    return convert(document, path)[0]


def salvage(document: dict[str, Any]) -> tuple[SpecFile, list[SloLocation]] | None:
    """The SLOs of a refused file that convert on their own, with their locations, so their semantic problems can
    be reported too; None when the file's top level itself is refused."""
    spec, _, found, _ = _convert(document, partial=True)
    return (spec, found) if spec is not None else None
