"""OpenSLO alert policies on the Alertmanager side: their notification targets become receivers, each policy a route
fanning out to its targets, and amtool resolves every compiled condition alert of the rendered rules to exactly those
receivers. An SLO with policies is alerted by its conditions alone (the default tiers are off)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generators.profile import PRODUCTION
from slos.loader import load_specs
from tests.conftest import REPO, require_tool
from tests.renders import cached_render

pytestmark = pytest.mark.promtool

SPECS = REPO / "tests" / "slos" / "policies"


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [require_tool("amtool"), *(str(arg) for arg in args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return cached_render(load_specs(SPECS), PRODUCTION, "test")


@pytest.fixture(scope="module")
def config_path(rendered: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policies") / "alertmanager.yml"
    path.write_text(rendered["alertmanager/alertmanager.yml"])
    return path


def test_every_target_is_a_receiver_and_amtool_accepts_the_config(config_path: Path) -> None:
    config = yaml.safe_load(config_path.read_text())
    names = [receiver["name"] for receiver in config["receivers"]]
    assert {"checkout-pager", "checkout-slack", "checkout-owners-mail"} <= set(names)
    mail = next(r for r in config["receivers"] if r["name"] == "checkout-owners-mail")
    assert mail["webhook_configs"][0]["send_resolved"] is False  # its only policy sets alertWhenResolved: false
    result = amtool("check-config", config_path)
    assert result.returncode == 0, result.stdout + result.stderr


# (slo, alert_policy, burnrate_tier) of every compiled condition of the policies' specs.
CONDITIONS = [
    ("checkout_availability", "page-and-chat", "fast-burn"),
    ("checkout_availability", "page-and-chat", "slow-burn"),
    ("checkout_availability", "email-owners", "budget-half-spent"),
    ("checkout_latency", "page-and-chat", "fast-burn"),
    ("checkout_latency", "page-and-chat", "slow-burn"),
]


def route_cases(rendered: dict[str, str]) -> list[dict[str, Any]]:
    return list(yaml.safe_load(rendered["alertmanager/policy-route-tests.yml"])["cases"])


def burn_alerts(rendered: dict[str, str]) -> list[dict[str, Any]]:
    groups = yaml.safe_load(rendered["prometheus/rules/checkout.yml"])["groups"]
    return [rule for group in groups for rule in group["rules"] if rule.get("alert", "").endswith("BudgetBurn")]


def test_every_condition_of_every_policy_of_an_slo_is_one_burn_alert_and_the_default_tiers_are_off(
    rendered: dict[str, str],
) -> None:
    alerts = burn_alerts(rendered)
    found = {(r["labels"]["slo"], r["labels"]["alert_policy"], r["labels"]["burnrate_tier"]) for r in alerts}
    assert found == set(CONDITIONS)
    assert len(alerts) == len(found)
    fast = next(r for r in alerts if r["labels"]["burnrate_tier"] == "fast-burn")
    assert fast["expr"] == 'slo:burn_rate:ratio_rate1h{slo="checkout_availability"} > 14.4'
    assert (fast["for"], fast["labels"]["severity"]) == ("5m", "page")
    slow = next(r for r in alerts if r["labels"]["burnrate_tier"] == "slow-burn")
    assert slow["expr"] == 'slo:burn_rate:ratio_rate3d{slo="checkout_availability"} >= 1'


def test_the_route_tests_cover_every_compiled_condition_alert(rendered: dict[str, str]) -> None:
    routed = {tuple(sorted(c["labels"].items())) for c in route_cases(rendered)}
    assert routed == {tuple(sorted({"alertname": r["alert"], **r["labels"]}.items())) for r in burn_alerts(rendered)}


@pytest.mark.parametrize("condition", CONDITIONS, ids=" ".join)
def test_a_policy_alert_reaches_exactly_its_targets(
    condition: tuple[str, str, str], rendered: dict[str, str], config_path: Path
) -> None:
    keys = ("slo", "alert_policy", "burnrate_tier")
    [case] = [c for c in route_cases(rendered) if tuple(c["labels"][key] for key in keys) == condition]
    labels = [f"{key}={value}" for key, value in sorted(case["labels"].items())]
    result = amtool(
        "config", "routes", "test", f"--config.file={config_path}", f"--verify.receivers={case['receiver']}", *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == case["receiver"]


def test_an_alert_without_a_policy_keeps_the_severity_routes(config_path: Path) -> None:
    result = amtool(
        "config", "routes", "test", f"--config.file={config_path}", "alertname=X", "severity=critical", "slo=other"
    )
    assert result.stdout.strip() == "pager"
