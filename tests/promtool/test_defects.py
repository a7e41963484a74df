"""The defects an audit of rendered/ found, each held by a test that failed on the rules before the fix:
promtool groups of tests/promtool/defects_test.yml, one pytest case each, and the checks promtool cannot make."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generators.__main__ import DEFAULT_OUT, main
from slos.models import duration_seconds
from tests.conftest import REPO, require_tool

pytestmark = pytest.mark.promtool

DEFECTS = REPO / "tests" / "promtool" / "defects_test.yml"
RULES = DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml"
LONGEST_RAW_WINDOW = "3d"
_RATE = re.compile(r"\b(?:rate|increase|irate)\((?P<inner>[^()\[]*)\[(?P<window>\d+[smhdw])\]\)")


def groups() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(DEFECTS.read_text())["tests"]
    return tests


@pytest.mark.parametrize("group", groups(), ids=lambda group: group["name"])
def test_a_defect_of_the_audit_stays_fixed(group: dict[str, Any], tmp_path: Path) -> None:
    single = {**yaml.safe_load(DEFECTS.read_text()), "rule_files": [str(RULES)], "tests": [group]}
    path = tmp_path / "defect_test.yml"
    path.write_text(yaml.safe_dump(single, sort_keys=False))
    result = subprocess.run(
        [require_tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_defect_4_no_rule_rates_a_raw_series_over_more_than_the_longest_alert_window() -> None:
    """A raw `rate(…[30d])` reads every sample of every series at each evaluation and is cut short by a retention
    under the period; the period sums the recorded 5m events instead."""
    rules = yaml.safe_load(RULES.read_text())
    long = [
        (rule.get("record") or rule.get("alert"), match.group(0))
        for group in rules["groups"]
        for rule in group["rules"]
        for match in _RATE.finditer(rule["expr"])
        if duration_seconds(match.group("window")) > duration_seconds(LONGEST_RAW_WINDOW)
    ]
    assert long == []
    period = [
        r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("record") == "slo:sli_error:ratio_rate30d"
    ]
    assert period and all(expr.startswith("sum_over_time(slo:sli_bad_events:increase5m{") for expr in period)


def test_defect_4_a_period_longer_than_the_retention_fails_the_render_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["--retention", "15d", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "slos[http_availability_percent].objective.period: the period 30d is longer than the retention 15d" in error
    assert "slos[manifest_insert_under_5ms_percent].objective.period" in error
    assert not out.exists()
    assert main(["--retention", "30d", "--out", str(out)]) == 0
