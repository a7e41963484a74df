"""Prometheus 3 readiness: the generated tests pass under left-open range selectors too.

Prometheus 3 selects `(t - 5m, t]` where Prometheus 2 selects `[t - 5m, t]`. On samples every 30s (every 1s in the
test profile), shortening every range of the rules by 1 ms gives exactly Prometheus 3's selection on Prometheus 2's
promtool. The generated checks sit where both selections agree and read rounded values or `humanize`d ones, so the
same tests prove both."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from generators.__main__ import DEFAULT_OUT, main
from slos.models import duration_seconds
from tests.conftest import require_tool
from tests.promtool import parallel

pytestmark = pytest.mark.promtool

_RANGE = re.compile(r'("(?:\\.|[^"\\])*")|\[(\d+(?:ms|s|m|h|d|w))\]')


def left_open(rules: str) -> str:
    """Every range 1 ms shorter: `[5m]` -> `[299999ms]` (label values in quotes untouched)."""
    return _RANGE.sub(
        lambda m: m.group(1) or f"[{round(duration_seconds(m.group(2)) * 1000) - 1}ms]",
        rules,
    )


def emulated(source: Path, target: Path) -> int:
    """A copy of a rendered folder whose rules use left-open ranges; the number of ranges shortened."""
    shutil.copytree(source, target)
    count = 0
    for path in (target / "prometheus" / "rules").glob("*.yml"):
        text = path.read_text()
        count += sum(1 for match in _RANGE.finditer(text) if match.group(2))
        path.write_text(left_open(text))
    return count


def promtool_tests(folder: Path) -> subprocess.CompletedProcess[str]:
    tests = sorted((folder / "prometheus" / "tests").glob("*.yml"))
    assert {"featurestore_test.yml", "featurestore_windows_test.yml", "featurestore_period_test.yml"} <= {
        path.name for path in tests
    }
    return parallel.run_rule_tests(require_tool("promtool"), tests)


def test_left_open_emulation_shortens_every_range_by_one_millisecond() -> None:
    assert left_open('rate(x[5m]) / sum_over_time(y{a="[1h]"}[30d])') == (
        'rate(x[299999ms]) / sum_over_time(y{a="[1h]"}[2591999999ms])'
    )


@pytest.mark.parametrize("profile", ["production", "test"])
def test_the_generated_tests_pass_under_prometheus_3_left_open_ranges(profile: str, tmp_path: Path) -> None:
    source = DEFAULT_OUT if profile == "production" else tmp_path / "rendered"
    if profile != "production":
        assert main(["--profile", profile, "--out", str(source)]) == 0
    shortened = emulated(source, tmp_path / "left-open")
    assert shortened > 40
    result = promtool_tests(tmp_path / "left-open")
    assert result.returncode == 0, result.stdout + result.stderr
