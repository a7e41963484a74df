"""The rendered configuration proven by the real tools: promtool checks the rules and prometheus.yml and runs the
generated and the hand-written unit tests; amtool checks alertmanager.yml and routes every alert label set."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from generators.__main__ import DEFAULT_OUT, main
from tests.conftest import REPO, require_tool
from tests.promtool import parallel

pytestmark = pytest.mark.promtool

HAND_WRITTEN = REPO / "tests" / "promtool"
CASES = REPO / "tests" / "generators" / "cases"


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300, check=False)


def promtool_proves(folder: Path) -> None:
    """`promtool check config` (which checks the rule files it lists) and `promtool test rules` on every test file."""
    promtool = require_tool("promtool")
    checked = run(promtool, "check", "config", folder / "prometheus" / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted((folder / "prometheus" / "tests").glob("*.yml"))
    assert tests
    tested = parallel.run_rule_tests(promtool, tests)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_rendered_rules_config_and_generated_tests_pass_promtool() -> None:
    promtool_proves(DEFAULT_OUT)


def test_the_hand_written_tests_of_the_guides_three_alerts_pass_promtool() -> None:
    files = sorted(HAND_WRITTEN.glob("*_test.yml"))
    assert files
    result = parallel.run_rule_tests(require_tool("promtool"), files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_test_profile_passes_promtool_too(tmp_path: Path) -> None:
    assert main(["--profile", "test", "--out", str(tmp_path / "fast")]) == 0
    promtool_proves(tmp_path / "fast")


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_a_golden_cases_output_passes_promtool(case: Path) -> None:
    promtool_proves(case / "expected")


def test_the_generated_tests_catch_a_rule_that_drifts(tmp_path: Path) -> None:
    """The generated tests are not vacuous: they fail against rules whose thresholds moved to the next bucket boundary
    or burn-rate factor (the only places validation lets a threshold go)."""
    out = tmp_path / "rendered"
    shutil.copytree(DEFAULT_OUT, out)
    rules = out / "prometheus" / "rules" / "featurestore.yml"
    drifted = rules.read_text().replace(">= 5 and on (", ">= 10 and on (").replace("> 14.4 and", "> 20 and")
    assert drifted != rules.read_text()
    rules.write_text(drifted)
    tests_file = out / "prometheus" / "tests" / "featurestore_test.yml"
    tests = yaml.safe_load(tests_file.read_text())
    wanted = (
        "FeatureStoreManifestInsertLatencyHigh fires at",
        "FeatureStoreAvailabilityBudgetBurn 1h/5m fires at a steady",
    )
    tests["tests"] = [case for case in tests["tests"] if case["name"].startswith(wanted)]
    assert len(tests["tests"]) == 2
    tests_file.write_text(yaml.safe_dump(tests))
    result = run(require_tool("promtool"), "test", "rules", tests_file)
    assert result.returncode == 1
    output = result.stderr + result.stdout
    assert f"name: {wanted[0]}" in output
    # promql_expr_test failures name the query, not the group: the steady 14.54x no longer fires a 20x page
    assert 'ALERTS{alertname=\\"FeatureStoreAvailabilityBudgetBurn\\", alertstate=\\"firing\\"' in output
    assert "got: nil" in output


def test_alertmanager_yml_passes_amtool_check_config() -> None:
    result = run(require_tool("amtool"), "check-config", DEFAULT_OUT / "alertmanager" / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def route_cases() -> list[dict[str, object]]:
    data = yaml.safe_load((DEFAULT_OUT / "alertmanager" / "route-tests.yml").read_text())
    return list(data["cases"])


@pytest.mark.parametrize(
    "case",
    route_cases(),
    ids=lambda c: f"{c['labels']['alertname']} {c['labels']['severity']}",  # type: ignore[index]
)
def test_every_generated_alert_routes_to_its_receiver(case: dict[str, object]) -> None:
    labels = case["labels"]
    assert isinstance(labels, dict)
    result = run(
        require_tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={DEFAULT_OUT / 'alertmanager' / 'alertmanager.yml'}",
        f"--verify.receivers={case['receiver']}",
        *(f"{key}={value}" for key, value in sorted(labels.items())),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == case["receiver"]


def test_the_route_tests_cover_every_rendered_alert() -> None:
    rules = yaml.safe_load((DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml").read_text())
    alerts = {(r["alert"], r["labels"]["severity"]) for g in rules["groups"] for r in g["rules"] if "alert" in r}
    routed = {(c["labels"]["alertname"], c["labels"]["severity"]) for c in route_cases()}  # type: ignore[index]
    assert routed == alerts
    assert re.search(r"receiver: pager", (DEFAULT_OUT / "alertmanager" / "route-tests.yml").read_text())
