"""The data flow runs one way (STYLE.md): featurestore imports none of the other packages, and nothing imports the
generators at run time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("featurestore", "slos", "generators", "service")
FORBIDDEN = {
    "featurestore": {"service", "generators", "slos", "bench"},
    "slos": {"service", "generators", "bench"},
    "service": {"generators", "bench"},
    "generators": {"service", "bench"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_lies_upstream_of_it(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((REPO / package).rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


# `make stack` runs a real Prometheus on the rendered files: a dev tool, not the service's request path.
ALLOWED_READERS = {"service/stack.py"}


def test_nothing_outside_the_generators_and_the_tests_reads_rendered() -> None:
    readers = [
        str(path.relative_to(REPO))
        for package in ("featurestore", "slos", "service")
        for path in sorted((REPO / package).rglob("*.py"))
        if '"rendered' in path.read_text(encoding="utf-8") or "'rendered" in path.read_text(encoding="utf-8")
    ]
    assert [path for path in readers if path not in ALLOWED_READERS] == []
