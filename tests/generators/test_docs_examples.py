"""docs/slo-specs.md shows examples that work: the Sloth spec validates, the maintenance windows and the alert policy
parse into the models, the low-traffic and sanity examples are SLOs as the text says, and the schema modeline is the
one the specs carry. Each example is the yaml block after its marker, `<!-- example: NAME -->`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from generators.__main__ import main
from generators.sanity import SANITY_FOR
from generators.schema import MODELINE
from slos.models import SLO, BurnRateAlerting, Severity, SpecFile
from slos.openslo_alerting import AlertPolicySpec
from tests.conftest import REPO

CASE = REPO / "tests" / "generators" / "cases" / "native_payments" / "spec.yaml"
PAGE = REPO / "docs" / "slo-specs.md"


def marked(name: str) -> tuple[str, str]:
    """The prose between the marker of example `name` and its yaml block, and the block."""
    found = re.search(rf"<!-- example: {re.escape(name)} -->\n(.*?)^```yaml\n(.*?)^```", PAGE.read_text(),
                      re.MULTILINE | re.DOTALL)  # fmt: skip
    assert found is not None, f"docs/slo-specs.md has no yaml block marked <!-- example: {name} -->"
    return found.group(1), found.group(2)


def block(name: str) -> str:
    return marked(name)[1]


def test_the_modeline_example_is_the_specs_modeline() -> None:
    assert block("modeline").splitlines()[0] == MODELINE


def test_the_sloth_example_validates(tmp_path: Path) -> None:
    (tmp_path / "checkout.yaml").write_text(block("sloth"))
    assert main(["validate", str(tmp_path)]) == 0


def test_the_maintenance_window_example_parses_into_a_spec() -> None:
    document: dict[str, Any] = yaml.safe_load(CASE.read_text())
    document.update(yaml.safe_load(block("maintenance")))
    spec = SpecFile.model_validate(document)
    assert [window.name for window in spec.maintenance_windows] == ["settlement-batch-redeploy"]


def test_the_alert_policy_example_parses() -> None:
    document = yaml.safe_load(block("alert-policy"))
    assert AlertPolicySpec.model_validate(document["spec"]).notificationTargets


def test_the_min_events_example_is_the_guides_floor() -> None:
    (example,) = (SLO.model_validate(item) for item in yaml.safe_load(block("min-events")))
    specs = yaml.safe_load((REPO / "slos" / "specs" / "featurestore.yaml").read_text())
    guide = next(SLO.model_validate(s) for s in specs["slos"] if s["name"] == example.name)
    assert example.min_events == guide.min_events == 100
    assert example.objective == guide.objective


def test_the_threshold_min_events_example_is_the_guides_hit_ratio_floor() -> None:
    (example,) = (SLO.model_validate(item) for item in yaml.safe_load(block("threshold-min-events")))
    specs = yaml.safe_load((REPO / "slos" / "specs" / "featurestore.yaml").read_text())
    guide = next(SLO.model_validate(s) for s in specs["slos"] if s["name"] == example.name)
    assert (example.min_events, example.objective) == (guide.min_events, guide.objective)


def test_the_sanity_example_renders_its_ticket_as_the_text_says() -> None:
    (example,) = (SLO.model_validate(item) for item in yaml.safe_load(block("sanity")))
    assert example.sanity_alert == "PaymentsRefundBudgetBurnInputsInconsistent"
    section = marked("sanity")[0]
    assert f"for\n{SANITY_FOR}" in section or f"for {SANITY_FOR}" in section


def test_the_tier_example_parses_disabling_one_tier_and_setting_anothers_severity() -> None:
    burn = BurnRateAlerting.model_validate(yaml.safe_load(block("tiers"))["burn_rate"])
    assert burn.tiers.enabled == ("page_fast", "ticket_fast", "ticket_slow")
    assert burn.severity("ticket_slow") == Severity.INFO


def test_the_native_example_is_a_spec_that_validates(tmp_path: Path) -> None:
    SpecFile.model_validate(yaml.safe_load(block("native")))
    (tmp_path / "featurestore.yaml").write_text(block("native"))
    assert main(["validate", str(tmp_path)]) == 0


def test_the_timeslices_example_validates_as_a_calendar_week_of_minutes(tmp_path: Path) -> None:
    document = yaml.safe_load(CASE.read_text())
    document["slos"] = yaml.safe_load(block("timeslices"))
    document.pop("maintenance_windows", None)
    (tmp_path / "checkout.yaml").write_text(yaml.safe_dump(document))
    assert main(["validate", str(tmp_path)]) == 0
    (slo,) = SpecFile.model_validate(document).slos
    assert slo.objective.kind == "timeslices" and slo.objective.period == "7d"  # type: ignore[union-attr]
