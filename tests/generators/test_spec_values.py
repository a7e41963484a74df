"""The spec is the one source of its numbers: a threshold changed in slos/specs/featurestore.yaml changes the rules,
the generated tests, the dashboard's thresholds and texts and the alert texts together."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generators.__main__ import main
from slos.loader import DEFAULT_SPECS_DIR


def render(specs: Path, out: Path) -> dict[str, Any]:
    assert main(["--specs", str(specs), "--out", str(out)]) == 0
    rules = yaml.safe_load((out / "prometheus" / "rules" / "featurestore.yml").read_text())
    return {
        "alerts": {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r},
        "records": [r for g in rules["groups"] for r in g["rules"] if "record" in r],
        "tests": (out / "prometheus" / "tests" / "featurestore_test.yml").read_text(),
        "dashboard": json.loads((out / "grafana" / "dashboards" / "featurestore.json").read_text()),
    }


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["title"] == title)


def steps(found: dict[str, Any]) -> list[float | None]:
    return [step["value"] for step in found["fieldConfig"]["defaults"]["thresholds"]["steps"]]


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real spec with `threshold: 5` (the insert p95 SLO and the insert latency budget) changed to 2, rendered."""
    root = tmp_path_factory.mktemp("moved")
    specs = root / "specs"
    shutil.copytree(DEFAULT_SPECS_DIR, specs)
    spec = specs / "featurestore.yaml"
    text = spec.read_text()
    assert text.count("threshold: 5,") == 1 and text.count("threshold: 5\n") == 1
    spec.write_text(text.replace("threshold: 5,", "threshold: 2,").replace("threshold: 5\n", "threshold: 2\n"))
    return render(specs, root / "out")


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return render(DEFAULT_SPECS_DIR, tmp_path_factory.mktemp("original") / "out")


@pytest.mark.parametrize(("fixture", "value"), [("original", "5"), ("moved", "2")])
def test_a_threshold_changed_in_the_spec_changes_rules_tests_dashboard_and_texts_together(
    fixture: str, value: str, request: pytest.FixtureRequest
) -> None:
    found: dict[str, Any] = request.getfixturevalue(fixture)
    other = "2" if value == "5" else "5"
    p95 = found["alerts"]["FeatureStoreManifestInsertLatencyHigh"]
    assert f" >= {value} and on (namespace, job) " in p95["expr"]  # the threshold, then the event floor
    assert p95["annotations"]["summary"] == f"Manifest insert p95 latency exceeds the {value}ms SLO."
    budget = found["alerts"]["FeatureStoreInsertLatencyBudgetBurn"]
    assert f"under {value} ms" in budget["annotations"]["summary"]
    ratios = [
        r["expr"] for r in found["records"] if r.get("labels", {}).get("slo") == "manifest_insert_under_5ms_percent"
    ]
    assert any(f'le=~"{value}(\\\\.0)?"' in expr for expr in ratios)
    assert f"(threshold {value}, " in found["tests"]
    stat = panel(found["dashboard"], "Manifest Insert Latency (P95)")
    assert steps(stat) == [None, float(value)]
    assert f"SLO: < {value} ms" in stat["description"]
    comparison = panel(found["dashboard"], "Latency Comparison Over Time")
    assert steps(comparison) == [None, float(value), 25.0]
    assert f"the {value} ms p95" in comparison["description"]
    remaining = panel(found["dashboard"], "manifest_insert_under_5ms_percent: error budget remaining")
    assert f"within {value} ms" in remaining["description"]
    texts = [
        p95["annotations"]["summary"],
        budget["annotations"]["summary"],
        stat["description"],
        remaining["description"].replace("manifest_insert_under_5ms_percent", "<the SLO's name>"),
    ]
    assert [text for text in texts if f"{other} ms" in text or f"{other}ms" in text] == []
