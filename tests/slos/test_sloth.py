"""Sloth input: the mapping onto the native models, and refusals that name the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from generators import promql
from slos import SpecError, load_file, load_specs
from slos.models import RatioObjective, Severity
from slos.validate import validate
from slos.windows import enabled_pairs

SPEC = """\
version: prometheus/v1
service: myservice
labels: {owner: myteam}
slos:
  - name: requests-availability
    objective: 99.5
    labels: {category: availability}
    sli:
      events:
        error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total[{{.window}}]))
    alerting:
      name: MyServiceHighErrorRate
      labels: {team: a}
      annotations: {summary: Too many errors, runbook: "https://runbooks/x"}
      page_alert: {labels: {severity: pageteam, routing_key: myteam}}
      ticket_alert: {labels: {severity: info, slack_channel: "#alerts"}}
"""

CRD = """\
apiVersion: sloth.slok.dev/v1
kind: PrometheusServiceLevel
metadata: {name: x, namespace: monitoring}
spec:
  service: myservice
  slos:
    - name: latency
      objective: 99
      sli:
        raw: {errorRatioQuery: "1 - avg(rate(good[{{.window}}]))"}
      alerting:
        name: LatencyBudgetBurn
        pageAlert: {labels: {severity: critical}}
        ticketAlert: {disable: true, labels: {my_label: kept_as_is}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sloth.yml"
    path.write_text(text)
    return path


def test_a_prometheus_v1_spec_maps_onto_a_ratio_slo_with_its_alerting(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, SPEC))
    assert loaded.source_format == "sloth"
    spec = loaded.spec
    assert (spec.service, spec.labels) == ("myservice", {"owner": "myteam"})
    (slo,) = spec.slos
    assert slo.name == "myservice_requests_availability"
    assert slo.labels == {"category": "availability"}
    assert isinstance(slo.objective, RatioObjective)
    assert (slo.objective.target, slo.objective.period) == (0.995, "30d")
    assert slo.objective.bad is not None and slo.objective.bad.query == (
        'sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))'
    )
    burn = slo.burn_rate
    assert burn is not None
    assert (burn.name, burn.summary, burn.annotations) == (
        "MyServiceHighErrorRate",
        "Too many errors",
        {"runbook": "https://runbooks/x"},
    )
    # pageteam is not in our vocabulary: the page tier keeps its default; info is, and is kept
    assert (burn.page_severity, burn.ticket_severity) == (Severity.CRITICAL, Severity.INFO)
    assert (burn.page_labels, burn.ticket_labels) == ({"routing_key": "myteam"}, {"slack_channel": "#alerts"})


def test_a_crd_disabling_its_ticket_tier_keeps_the_two_page_pairs_only(tmp_path: Path) -> None:
    (slo,) = load_file(write(tmp_path, CRD)).spec.slos
    assert [pair.name for pair in enabled_pairs(slo)] == ["page_fast", "page_slow"]


def test_a_raw_sli_is_an_error_ratio_query_recorded_as_it_is(tmp_path: Path) -> None:
    crd = CRD.replace("disable: true, ", "")
    (slo,) = load_file(write(tmp_path, crd)).spec.slos
    assert isinstance(slo.objective, RatioObjective)
    assert slo.objective.error_ratio_query == "1 - avg(rate(good[{{.window}}]))"
    assert (slo.objective.good, slo.objective.bad, slo.objective.total) == (None, None, None)
    assert promql.error_ratio(slo.objective, "30m") == "(1 - avg(rate(good[30m])))"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            SPEC.replace("[{{.window}}]))\n        total", "[5m]))\n        total"),
            "slos[0].sli.events.error_query",
            "{{.window}}",
        ),
        (SPEC.replace("objective: 99.5", "objective: 100"), "slos[0].objective", "less than 100"),
        (SPEC.replace("    labels: {category", "    lables: {category"), "slos[0].lables", "Extra inputs"),
        (SPEC.replace("      name: MyServiceHighErrorRate\n", ""), "slos[0].alerting.name", "required unless"),
        (SPEC.replace("sli:\n", "sli:\n      plugin: {id: x}\n"), "slos[0].sli.plugin", "plugins"),
        (SPEC.replace("team: a", "severity: page"), "slos[0].alerting.labels.severity", "set by the generator"),
        (CRD.replace("errorRatioQuery", "errorRatioQueri"), "spec.slos[0].sli.raw.errorRatioQueri", "Extra inputs"),
        (CRD.replace("pageAlert: {labels:", "pageAlert: {labelz:"), "spec.slos[0].alerting.pageAlert.labelz", "Extra"),
    ],
    ids=[
        "a query without the window template is refused",
        "an objective of 100 percent is refused",
        "a misspelt field is refused",
        "an alerted SLO without an alert name is refused",
        "an SLI plugin is refused",
        "a severity label on all tiers is refused: severity is per tier",
        "a misspelt CRD field is named as written",
        "a misspelt CRD tier field is named as written",
    ],
)
def test_a_bad_sloth_spec_is_refused_naming_the_file_and_field(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        validate(load_specs(tmp_path))
    messages = [str(problem) for problem in caught.value.problems]
    assert any(m.startswith(f"{path}: {field}:") and reason in m for m in messages), messages
