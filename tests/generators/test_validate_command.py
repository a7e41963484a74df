"""`python -m generators validate`: every problem of every file at once, nothing written, exit codes a CI can use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generators.__main__ import main
from generators.profile import PRODUCTION
from generators.render import render
from generators.validate_command import check
from slos.errors import SpecError
from slos.loader import SpecSet, load_file
from tests.conftest import REPO

GOOD_SLO = """\
  - name: {name}
    description: p95 under 5 ms
    objective: {{kind: quantile, metric: manifest_insert_latency_ms, quantile: 0.95, threshold: {threshold}}}
    alerts: [{{name: {alert}, for: 10m, severity: warning, summary: s, description: d}}]
"""
HEADER = """\
version: featurestore/v1
service: featurestore
runbook_base_url: https://example.com/runbooks
slos:
"""


def write_specs(folder: Path) -> None:
    folder.mkdir()
    # first file: SLO 0 does not parse (a misspelt field), SLO 1 parses but 7 is not a bucket boundary
    broken = GOOD_SLO.format(name="insert_p95_ms", threshold=5, alert="InsertSlow").replace(
        "threshold: 5", "treshold: 5"
    )
    sibling = GOOD_SLO.format(name="insert_p95_bis", threshold=7, alert="InsertSlowBis")
    (folder / "a.yaml").write_text(HEADER + broken + sibling)
    # second file: valid shape, an alert that duplicates the first file's sibling, and a second semantic problem
    other = GOOD_SLO.format(name="read_p95_ms", threshold=3, alert="InsertSlowBis").replace(
        "manifest_insert_latency_ms", "manifest_read_latency_ms"
    )
    (folder / "b.yaml").write_text(HEADER + other)


def test_the_shipped_specs_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert "1 file valid" in capsys.readouterr().out


def test_every_problem_of_every_file_is_reported_and_one_bad_slo_hides_no_sibling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = tmp_path / "specs"
    write_specs(specs)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["validate", str(specs)]) == 1
    out = capsys.readouterr().out
    a, b = specs / "a.yaml", specs / "b.yaml"
    assert f"{a}: slos[insert_p95_ms].objective.treshold: Extra inputs are not permitted" in out
    assert f"{a}: slos[insert_p95_bis].objective.threshold: 7 is not a bucket boundary" in out  # the broken's sibling
    assert f"{b}: slos[read_p95_ms].objective.threshold: 3 is not a bucket boundary" in out
    duplicate = (
        f"{a}: slos[insert_p95_bis].alerts[0].name: alert 'InsertSlowBis' is also defined at "
        f"{b}: slos[read_p95_ms].alerts[0].name"
    )
    assert duplicate in out  # the salvaged sibling takes part in the checks across files
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_json_output_lists_the_same_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = tmp_path / "specs"
    write_specs(specs)
    assert main(["validate", "--format", "json", str(specs / "b.yaml")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["files"] == 1
    assert {(p["field"], p["reason"][:20]) for p in report["problems"]} == {
        ("slos[read_p95_ms].objective.threshold", "3 is not a bucket bo")
    }


def test_a_missing_path_is_a_usage_error_with_exit_status_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "generators", "validate", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr


def test_sloth_and_openslo_files_are_validated_too(capsys: pytest.CaptureFixture[str]) -> None:
    cases = REPO / "tests" / "generators" / "cases"
    assert main(["validate", str(cases / "sloth_checkout"), str(cases / "openslo_checkout")]) == 0
    assert "2 files valid" in capsys.readouterr().out


SLOTH = """\
version: prometheus/v1
service: checkout
slos:
  - name: broken
    objective: 99
    sli: {plugin: {id: x}}
  - name: too-loose
    objective: 50
    sli: {raw: {error_ratio_query: "1 - avg(up[{{.window}}])"}}
    alerting: {name: CheckoutTooLoose}
"""
OPENSLO = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: broken}
spec:
  service: checkout
  indicator:
    metadata: {name: e}
    spec: {ratioMetric: {counter: true, bad: {metricSource: {type: Prometheus, spec: {query: errors_total}}}}}
  timeWindow: [{duration: 28d}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: too-loose}
spec:
  service: checkout
  indicator:
    metadata: {name: e2}
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: errors_total}}}
        total: {metricSource: {type: Prometheus, spec: {query: requests_total}}}
  timeWindow: [{duration: 28d}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.5}]
"""


@pytest.mark.parametrize(
    ("text", "broken", "sibling"),
    [
        (SLOTH, "slos[0].sli.plugin: SLI plugins", "slos[1].objective: the 1h/5m page alert can never fire"),
        (
            OPENSLO,
            "documents[0].spec.indicator.spec.ratioMetric: `total` is required",
            "documents[1].spec.objectives[0].target: the 1h/5m page alert can never fire",
        ),
    ],
    ids=["in a Sloth file", "in an OpenSLO file"],
)
def test_a_broken_slo_hides_no_siblings_problem(
    text: str, broken: str, sibling: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: {broken}" in out
    assert f"{path}: {sibling}" in out


SEVERAL_ERRORS = (
    HEADER
    + GOOD_SLO.format(name="latency_p95", threshold=5, alert="LatencyHigh")
    + GOOD_SLO.format(name="latency_p95", threshold=5, alert="LatencyHighToo").replace("summary: s", "sumary: s")
    + """\
  - name: raw_and_events
    description: both kinds of SLI at once
    objective:
      kind: ratio
      target: 0.999
      bad: {metric: featurestore_http_requests_total, matchers: {status_class: 5xx}}
      total: {metric: featurestore_http_requests_total}
      error_ratio_query: "sum(rate(x[{{.window}}]))"
    burn_rate: {name: RawBurn, summary: s}
"""
)


def validated(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    main(["validate", str(path)])
    return [line.removeprefix(f"{path}: ") for line in capsys.readouterr().out.splitlines()]


def test_a_file_with_several_errors_says_each_once_where_it_is_and_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validated(tmp_path, SEVERAL_ERRORS, capsys) == [
        "slos[1].alerts[0].sumary: Extra inputs are not permitted: did you mean 'summary'?",
        "slos[1].alerts[0].summary: Field required",
        "slos[1].name: SLO name 'latency_p95' is also used by slos[0]",
        "slos[raw_and_events].objective: `error_ratio_query` is the whole SLI: give it without `good`, `bad` or "
        "`total`",
        "generators validate: 4 problems in 1 file",
    ]


def test_an_slo_whose_fields_all_fail_brings_no_list_length_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = validated(tmp_path, HEADER + "  - {}\n", capsys)
    assert lines[-1] == "generators validate: 3 problems in 1 file"
    assert not [line for line in lines if "should have at least 1 item" in line]


def test_a_mistyped_field_of_a_tagged_objective_gets_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HEADER + GOOD_SLO.format(name="p95", threshold=5, alert="A").replace(
        "quantile: 0.95", "quantile: 0.95, windw: 5m"
    )
    assert validated(tmp_path, text, capsys)[0] == (
        "slos[p95].objective.windw: Extra inputs are not permitted: did you mean 'window'?"
    )


def test_a_sloth_file_with_a_mistyped_field_gets_a_suggestion_and_no_list_length_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "version: prometheus/v1\nservice: checkout\nslos:\n  - name: requests\n    objectve: 99.9\n"
        "    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}\n"
    )
    assert validated(tmp_path, text, capsys) == [
        "slos[0].objective: Field required",
        "slos[0].objectve: Extra inputs are not permitted: did you mean 'objective'?",
        "generators validate: 2 problems in 1 file",
    ]


INVALID = REPO / "tests" / "slos" / "invalid"


@pytest.mark.parametrize("path", sorted(INVALID.glob("*.yaml")), ids=lambda path: path.stem.replace("_", " "))
def test_validate_reports_every_spec_that_render_refuses_with_its_file_and_field(path: Path) -> None:
    """`validate` says valid only where `render` succeeds: each refused spec is a problem of validate, at its field."""
    field = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ").split(": ", 1)[0]
    problems, files = check([path])
    assert files == 1
    assert (str(path), "" if field == "<document>" else field) in {(p.path, p.field) for p in problems}
    with pytest.raises(SpecError):
        render(SpecSet((load_file(path),)), PRODUCTION, "test")


def test_validate_refuses_a_period_longer_than_the_retention_render_would_refuse_it_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "long.yaml"
    spec.write_text(
        HEADER.replace("service: featurestore", "service: checkout")
        + "  - name: availability\n    description: 99.9 % over 60 days\n"
        "    objective: {kind: ratio, target: 0.999, period: 60d, bad: {metric: errors_total}, "
        "total: {metric: requests_total}}\n    burn_rate: {name: CheckoutBudgetBurn, summary: burning}\n"
    )
    assert main(["validate", str(spec)]) == 1
    assert f"{spec}: slos[availability].objective.period: the period 60d is longer than the retention 30d" in (
        capsys.readouterr().out
    )
    assert main(["validate", "--retention", "90d", str(spec)]) == 0
