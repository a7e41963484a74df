"""The promtool runner's lean Go runtime: set for every Go tool the tests start, unless the environment says
otherwise."""

from __future__ import annotations

import os

import pytest

from tests.promtool import parallel


def test_the_lean_runtime_fills_what_the_environment_leaves_unset_and_keeps_what_it_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOGC", "100")
    monkeypatch.setenv("GOMAXPROCS", "")
    parallel.lean_go_runtime()
    assert os.environ["GOGC"] == "100"
    assert os.environ["GOMAXPROCS"] == parallel.LEAN_GO_RUNTIME["GOMAXPROCS"]
