"""Fixtures of the end-to-end tests: the test-profile render (one per session) and a PostgreSQL schema per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.runner import render_profile
from tests.conftest import fresh_schema, require_tool


@pytest.fixture(scope="session")
def test_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m generators --profile test` rendered into a temporary folder: short windows and `for:`."""
    return render_profile("test", tmp_path_factory.mktemp("rendered-test"))


@pytest.fixture(scope="module")
def module_schema_dsn(pg_dsn: str) -> Iterator[str]:
    """Like `pg_schema_dsn`, for a stack that serves a whole module: a fresh schema, dropped afterwards."""
    with fresh_schema(pg_dsn, "e2e") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def binaries() -> None:
    """The real Prometheus and Alertmanager (Debian's packages)."""
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
