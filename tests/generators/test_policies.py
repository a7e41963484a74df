"""OpenSLO alert policies on the Alertmanager side: their notification targets become receivers, each policy a route
fanning out to its targets, and amtool resolves every label set the policies generate to exactly those receivers.
Until the conditions compile into burn alerts (issue 14 phase B), rendering a spec with policies is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from generators import alertmanager, maintenance, policies
from generators.output import to_yaml
from slos.loader import SpecError, load_specs
from slos.validate import POLICIES_PENDING, validate
from tests.conftest import REPO, require_tool

pytestmark = pytest.mark.promtool

SPECS = REPO / "tests" / "slos" / "policies"


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [require_tool("amtool"), *(str(arg) for arg in args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def config_file(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(to_yaml(config, "test"))
    return path


def composed() -> dict[str, Any]:
    specs = load_specs(SPECS)
    return maintenance.with_maintenance(policies.with_policies(alertmanager.config(), specs), specs)


def test_every_target_is_a_receiver_and_amtool_accepts_the_config(tmp_path: Path) -> None:
    config = composed()
    names = [receiver["name"] for receiver in config["receivers"]]
    assert {"checkout-pager", "checkout-slack", "checkout-owners-mail"} <= set(names)
    mail = next(r for r in config["receivers"] if r["name"] == "checkout-owners-mail")
    assert mail["webhook_configs"][0]["send_resolved"] is False  # its only policy sets alertWhenResolved: false
    result = amtool("check-config", config_file(tmp_path, config))
    assert result.returncode == 0, result.stdout + result.stderr


def route_cases() -> list[dict[str, Any]]:
    return policies.route_cases(load_specs(SPECS))


def test_the_route_tests_cover_every_slo_policy_and_condition() -> None:
    seen = {(c["labels"]["slo"], c["labels"]["alert_policy"], c["labels"]["severity"]) for c in route_cases()}
    assert seen == {
        ("checkout_availability", "page-and-chat", "page"),
        ("checkout_availability", "page-and-chat", "ticket"),
        ("checkout_availability", "email-owners", "info"),
        ("checkout_latency", "page-and-chat", "page"),
        ("checkout_latency", "page-and-chat", "ticket"),
    }


@pytest.mark.parametrize(
    "case", route_cases(), ids=lambda c: " ".join(c["labels"][k] for k in ("slo", "alert_policy", "severity"))
)
def test_a_policy_alert_reaches_exactly_its_targets(case: dict[str, Any], tmp_path: Path) -> None:
    path = config_file(tmp_path, composed())
    labels = [f"{key}={value}" for key, value in sorted(case["labels"].items())]
    result = amtool(
        "config", "routes", "test", f"--config.file={path}", f"--verify.receivers={case['receiver']}", *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == case["receiver"]


def test_an_alert_without_a_policy_keeps_the_severity_routes(tmp_path: Path) -> None:
    path = config_file(tmp_path, composed())
    result = amtool(
        "config", "routes", "test", f"--config.file={path}", "alertname=X", "severity=critical", "slo=other"
    )
    assert result.stdout.strip() == "pager"


def test_rendering_a_spec_with_policies_is_refused_until_their_conditions_compile() -> None:
    with pytest.raises(SpecError) as caught:
        validate(load_specs(SPECS))
    pending = [p for p in caught.value.problems if p.reason == POLICIES_PENDING]
    assert [p.field for p in pending] == ["documents[5].spec.alertPolicies", "documents[6].spec.alertPolicies"]
    assert all(p.reason == POLICIES_PENDING for p in caught.value.problems)
