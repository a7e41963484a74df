"""Fixtures of the dev stack's tests."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool


@pytest.fixture(scope="module")
def binaries() -> None:
    """The real Prometheus and Alertmanager (Debian's packages)."""
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
