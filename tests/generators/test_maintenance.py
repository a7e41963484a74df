"""Maintenance windows: the golden case's windows are Alertmanager time intervals that amtool accepts, and every case of
every generated `maintenance-tests.yml` (rendered/ and each golden case's expected/) resolves (amtool `config routes
test --tree`) to a route muted by exactly its windows, none for an SLO outside every window."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generators.__main__ import main
from tests.conftest import require_tool

pytestmark = pytest.mark.promtool

CASES = Path(__file__).parent / "cases"
CASE = CASES / "native_payments"
REPO = Path(__file__).resolve().parents[2]
GENERATED = sorted(
    path.parent
    for path in (
        *CASES.glob("*/expected/alertmanager/maintenance-tests.yml"),
        *REPO.glob("rendered/alertmanager/maintenance-tests.yml"),
    )
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("maintenance") / "out"
    assert main(["--specs", str(CASE), "--out", str(out)]) == 0
    return out / "alertmanager"


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [require_tool("amtool"), *(str(arg) for arg in args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def resolved_routes(config: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The routes amtool resolves `labels` to, found in `config` by following the matcher path amtool prints: one, or
    an alert policy's receiver routes (matcher-less children, each notified)."""
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={config['path']}",
        "--tree",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # amtool prints each route of the path as `── {m1, m2}  receiver: r`, every matcher as the config writes it
    path = [
        re.sub(r"\s+receiver: \S+$", "", line.split("── ", 1)[1])
        for line in result.stdout.splitlines()
        if "── {" in line
    ]
    route = config["route"]
    for step in path:
        route = next(
            child for child in route.get("routes", []) if "{" + ", ".join(child.get("matchers", ())) + "}" == step
        )
    fanned = [dict(child) for child in route.get("routes", []) if "matchers" not in child]
    return fanned or [dict(route)]


def resolved_route(config: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    (route,) = resolved_routes(config, labels)
    return route


def load(folder: Path) -> dict[str, Any]:
    config = yaml.safe_load((folder / "alertmanager.yml").read_text())
    config["path"] = folder / "alertmanager.yml"
    return dict(config)


def test_the_windows_are_time_intervals_amtool_accepts(rendered: Path) -> None:
    result = amtool("check-config", rendered / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    names = [interval["name"] for interval in load(rendered)["time_intervals"]]
    assert names == ["settlement-batch-redeploy", "payments-failover-drill"]


def test_every_alert_of_a_windowed_slo_resolves_to_a_route_muted_by_its_windows(rendered: Path) -> None:
    config = load(rendered)
    cases = yaml.safe_load((rendered / "maintenance-tests.yml").read_text())["cases"]
    routed = yaml.safe_load((rendered / "route-tests.yml").read_text())["cases"]
    policy = yaml.safe_load((rendered / "policy-route-tests.yml").read_text())["cases"]
    assert len(cases) == len(routed) + len(policy)  # every SLO of the case sits in the failover drill
    assert any("settlement-batch-redeploy" in case["mute_time_intervals"] for case in cases)
    for case in cases:
        routes = resolved_routes(config, case["labels"])
        for route in routes:  # an alert policy's targets are each muted, not only the policy's route
            assert route.get("mute_time_intervals") == case["mute_time_intervals"], case["labels"]
        assert ",".join(route.get("receiver", "default") for route in routes) == case["receiver"]


@pytest.mark.parametrize("folder", GENERATED, ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_generated_maintenance_case_resolves_to_a_route_muted_by_exactly_its_windows(folder: Path) -> None:
    config = load(folder)
    cases = yaml.safe_load((folder / "maintenance-tests.yml").read_text())["cases"]
    assert cases
    for case in cases:
        routes = resolved_routes(config, case["labels"])
        for route in routes:
            assert route.get("mute_time_intervals", []) == case["mute_time_intervals"], case["labels"]
        assert ",".join(route.get("receiver", "default") for route in routes) == case["receiver"], case["labels"]


def test_generated_maintenance_tests_exist_for_a_window_that_mutes_regex_characters() -> None:
    assert CASES / "native_hostile_label_values" / "expected" / "alertmanager" in GENERATED


def test_an_alert_outside_every_window_resolves_to_an_unmuted_route(rendered: Path) -> None:
    route = resolved_route(load(rendered), {"alertname": "Other", "severity": "critical", "slo": "another_service"})
    assert "mute_time_intervals" not in route
    assert route["receiver"] == "pager"
