"""The deployment checklist (docs/deployment.md) runs: its offline blocks on rendered/, its live blocks against a real
stack. The blocks are found by their markers, `<!-- checklist: KIND -->`, wherever the page puts them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.runner import Stack, StackConfig
from tests.conftest import REPO, require_tool

CHECKLIST = REPO / "docs" / "deployment.md"
_BLOCK = re.compile(r"^<!-- checklist: (\w+) -->\n```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
KINDS = {"env", "offline", "live", "cluster"}


def checklist(kind: str | None = None) -> list[str]:
    """The bash blocks of the checklist, in order, optionally only those of one kind."""
    return [body for found, body in _BLOCK.findall(CHECKLIST.read_text()) if kind is None or found == kind]


def _run(script: str, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment with this interpreter's `python` first on PATH, as in an activated venv."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, **extra}


def test_the_checklist_has_every_kind_of_block_and_each_is_valid_bash() -> None:
    kinds = [found for found, _ in _BLOCK.findall(CHECKLIST.read_text())]
    assert set(kinds) == KINDS
    for body in checklist():
        result = subprocess.run(["bash", "-n", "-c", body], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr


@pytest.mark.promtool
def test_the_offline_checklist_passes_on_the_committed_bundle() -> None:
    require_tool("promtool")
    require_tool("amtool")
    result = _run("\n".join(checklist("offline")), _env(), timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def live_stack(binaries: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The committed production bundle on free ports, DuckDB, with 1 s scrapes so the first one comes quickly."""
    config = StackConfig(state_dir=tmp_path_factory.mktemp("stack"), rendered_dir=REPO / "rendered")
    with Stack(config.with_free_ports().with_test_timings()) as stack:
        yield stack


@pytest.mark.e2e
def test_the_live_checklist_passes_against_a_running_stack(live_stack: Stack) -> None:
    require_tool("jq")
    urls = live_stack.urls
    assert urls is not None
    env = _env(PROMETHEUS_URL=urls.prometheus, ALERTMANAGER_URL=urls.alertmanager, FEATURESTORE_URL=urls.service)
    env.pop("FEATURESTORE_PG_DSN", None)
    script = "\n".join([*checklist("env"), *checklist("live")])
    result = _run(script, env, timeout_s=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "query failed" not in result.stdout
