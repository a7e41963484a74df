"""The README's SLO specs section shows examples that work: the Sloth spec validates, the maintenance windows and the
alert policy parse into the models, the low-traffic and sanity examples are SLOs as the text says, and the schema
modeline is the one the specs carry."""

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


def section_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## SLO specs", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```yaml\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def block(starting: str) -> str:
    return next(b for b in section_blocks() if b.startswith(starting))


def test_the_modeline_example_is_the_specs_modeline() -> None:
    assert block("# yaml-language-server").splitlines()[0] == MODELINE


def test_the_sloth_example_validates(tmp_path: Path) -> None:
    (tmp_path / "checkout.yaml").write_text(block("version: prometheus/v1"))
    assert main(["validate", str(tmp_path)]) == 0


def test_the_maintenance_window_example_parses_into_a_spec() -> None:
    document: dict[str, Any] = yaml.safe_load(CASE.read_text())
    document.update(yaml.safe_load(block("maintenance_windows:")))
    spec = SpecFile.model_validate(document)
    assert [window.name for window in spec.maintenance_windows] == ["settlement-batch-redeploy"]


def test_the_alert_policy_example_parses() -> None:
    document = yaml.safe_load(block("apiVersion: openslo/v1\nkind: AlertPolicy"))
    assert AlertPolicySpec.model_validate(document["spec"]).notificationTargets


def test_the_min_events_example_is_the_guides_floor() -> None:
    (example,) = (SLO.model_validate(item) for item in yaml.safe_load(block("- name: http_availability_percent")))
    specs = yaml.safe_load((REPO / "slos" / "specs" / "featurestore.yaml").read_text())
    guide = next(SLO.model_validate(s) for s in specs["slos"] if s["name"] == example.name)
    assert example.min_events == guide.min_events == 100
    assert example.objective == guide.objective


def test_the_sanity_example_renders_its_ticket_as_the_text_says() -> None:
    (example,) = (SLO.model_validate(item) for item in yaml.safe_load(block("- name: refund_success_percent")))
    assert example.sanity_alert == "PaymentsRefundBudgetBurnInputsInconsistent"
    section = (REPO / "README.md").read_text().split("**Input sanity alerts**", 1)[1].split("```", 1)[0]
    assert f"for\n{SANITY_FOR}" in section or f"for {SANITY_FOR}" in section


def test_the_tier_example_parses_disabling_one_tier_and_setting_anothers_severity() -> None:
    burn = BurnRateAlerting.model_validate(yaml.safe_load(block("    burn_rate:"))["burn_rate"])
    assert burn.tiers.enabled == ("page_fast", "ticket_fast", "ticket_slow")
    assert burn.severity("ticket_slow") == Severity.INFO
