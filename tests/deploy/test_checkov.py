"""checkov, as `make lint` runs it (`.checkov.yaml`), finds nothing on rendered/kubernetes/ and the Dockerfile, and
every check the config skips says why beside it."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, unavailable

CONFIG = REPO / ".checkov.yaml"
CHECKOV = REPO / ".venv" / "tools" / "bin" / "checkov"
SCANS = {
    "kubernetes": ["-d", "rendered/kubernetes", "--framework", "kubernetes"],
    "dockerfile": ["-f", "Dockerfile", "--framework", "dockerfile"],
}


def checkov() -> str:
    if not CHECKOV.is_file():
        unavailable(f"{CHECKOV.relative_to(REPO)} is missing: make tools installs checkov")
    return str(CHECKOV)


def start(binary: str, cwd: Path, arguments: list[str]) -> subprocess.Popen[str]:
    """One scan from `cwd`, where checkov reads `.checkov.yaml` as `make lint` does; the scans run side by side."""
    command = [binary, *arguments, "--output", "json"]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def report(process: subprocess.Popen[str]) -> dict[str, Any]:
    """checkov's JSON report of a scan that read something."""
    out, err = process.communicate(timeout=300)
    assert process.returncode in (0, 1), err[-3000:]  # 1: failed checks, reported by the caller
    found = json.loads(out)
    assert isinstance(found, dict) and found.get("check_type"), f"checkov scanned nothing: {found}"
    return found


@pytest.fixture(scope="module")
def reports() -> dict[str, dict[str, Any]]:
    """The two scans of the repository, run at once."""
    binary = checkov()
    running = {name: start(binary, REPO, arguments) for name, arguments in SCANS.items()}
    try:
        return {name: report(process) for name, process in running.items()}
    finally:
        for process in running.values():
            process.kill()
            process.wait()


def failures(report: dict[str, Any]) -> list[str]:
    return [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in report["results"]["failed_checks"]]


@pytest.mark.parametrize("framework", sorted(SCANS))
def test_checkov_passes_with_the_committed_config(reports: dict[str, dict[str, Any]], framework: str) -> None:
    found = reports[framework]
    summary = found["summary"]
    assert found["check_type"] == framework
    # It read the files: a scan of nothing passes nothing.
    assert summary["parsing_errors"] == 0 and summary["resource_count"] > 0 and summary["passed"] > 0
    assert failures(found) == []


def test_every_skipped_check_has_its_reason_beside_it() -> None:
    skipped = yaml.safe_load(CONFIG.read_text())["skip-check"]
    beside = re.finditer(r"^[ \t]*- (CKV\w+)[ \t]*#[ \t]*(.*)$", CONFIG.read_text(), re.MULTILINE)
    lines = {match.group(1): match.group(2) for match in beside}
    assert skipped and sorted(skipped) == sorted(lines)
    assert all(len(reason.split()) >= 5 for reason in lines.values()), lines


def test_make_lint_runs_the_pinned_checkov_on_both(reports: dict[str, dict[str, Any]]) -> None:
    makefile = (REPO / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:") : makefile.index("\n\n", makefile.index("\nlint:"))]
    for arguments in SCANS.values():
        assert f"$(TOOLS)/bin/checkov {' '.join(arguments)}" in lint
    tools = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]["tools"]
    assert f"checkov=={reports['kubernetes']['summary']['checkov_version']}" in tools
