"""The generated promtool cases as data, shared by every module that builds them: a `Case` holds series and `Check`s
of alerts or `ExprCheck`s of queries; a `Context` is the spec and profile they are built for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from featurestore import metrics
from featurestore.conventions import SLO_PATH
from generators.profile import Profile
from generators.synthetic import Series
from slos.models import SpecFile, duration_seconds
from slos.validate import CATALOG_SERVICE

# Label values of the synthetic series (bounded values the code emits).
SAMPLE_LABELS: dict[str, str] = {
    metrics.LABEL_BACKEND: metrics.BACKEND_POSTGRESQL,
    metrics.LABEL_SYMBOL: "AAPL",
    metrics.LABEL_COMPONENT: metrics.COMPONENT_POSTGRESQL,
    metrics.LABEL_STATUS_CLASS: "2xx",
    metrics.LABEL_ROUTE: SLO_PATH,
    metrics.LABEL_METHOD: "GET",
    metrics.LABEL_ERROR: "other",
    metrics.LABEL_REASON: "missing",
}


@dataclass(frozen=True)
class Expected:
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    def data(self) -> dict[str, dict[str, str]]:
        return {
            "exp_labels": dict(sorted(self.labels.items())),
            "exp_annotations": dict(sorted(self.annotations.items())),
        }


@dataclass(frozen=True)
class Check:
    seconds: float
    alertname: str
    alerts: tuple[Expected, ...]
    labels_only: bool = False  # asserted through ALERTS (labels), where the annotations are not predictable


@dataclass(frozen=True)
class ExprCheck:
    """A `promql_expr_test`: the samples `expr` returns at `seconds` (values already rounded by the expression)."""

    seconds: float
    expr: str
    samples: tuple[tuple[Mapping[str, str], float], ...]


@dataclass(frozen=True)
class Case:
    name: str
    series: tuple[Series, ...]
    checks: tuple[Check, ...]
    proves: tuple[str, ...]  # the alert names this case fires or keeps silent
    exprs: tuple[ExprCheck, ...] = ()
    file: str = "fine"  # which test file: "fine", "windows", "period" or "floors" (generators.testfile.FILES)
    interval: str | None = None  # its series interval, where finer than its file's


@dataclass(frozen=True)
class Context:
    spec: SpecFile
    profile: Profile

    @property
    def tick(self) -> float:
        return duration_seconds(self.profile.scrape_interval)

    @property
    def catalog(self) -> bool:
        return self.spec.service == CATALOG_SERVICE

    def base_labels(self, metric: str, matchers: Mapping[str, str], by: Sequence[str] = ()) -> dict[str, str]:
        labels = {"job": self.spec.service, "instance": self.profile.scrape_target}
        family = metrics.find(metric) if self.catalog else None
        for label in family.labels if family is not None else ():
            labels[label] = SAMPLE_LABELS.get(label, "a")
        labels.update(matchers)
        for label in by:
            labels.setdefault(label, SAMPLE_LABELS.get(label, "a"))
        return labels


def clock(seconds: float) -> str:
    """An eval_time such as 10m30s."""
    whole = round(seconds)
    if whole == 0:
        return "0s"
    text = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            text += f"{whole // size}{unit}"
            whole %= size
    return text
