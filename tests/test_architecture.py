"""The data flow runs one way (STYLE.md): featurestore imports none of the other packages, nothing imports the
generators or the dev stack at run time, and what the image ships (service and what it imports) is production code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("featurestore", "slos", "generators", "service", "devstack", "bench")
# devstack (make stack) and bench (make profile) are dev tools outside the distribution: production never imports them.
DEV_TOOLS = {"devstack", "bench"}
FORBIDDEN = {
    "featurestore": {"service", "generators", "slos", *DEV_TOOLS},
    "slos": {"service", "generators", *DEV_TOOLS},
    "service": {"generators", *DEV_TOOLS},
    "generators": {"service", *DEV_TOOLS},
    "devstack": {"bench"},
    "bench": {"devstack"},
}


# Packages that could be imported at run time by name (a `-m` subprocess, import_module). "service", "slos" and
# "bench" are also ordinary words in labels, paths and prefixes, so only these two are looked for in strings.
RUN_NAMES = {"generators", "devstack"}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages `path` imports, or names as a module in a string (`import_module("x")`, `-m x`).

    Imports under `if TYPE_CHECKING:` count: a type a module needs belongs to a module it may import.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            head, *rest = node.value.split(".")
            # `python -m generators`, import_module("devstack.cli"): a run-time import that `import` does not show.
            if head in RUN_NAMES and all(part.isidentifier() for part in rest):
                names.add(head)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_lies_upstream_of_it(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((REPO / package).rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize(
    "source",
    [
        "import devstack.runner",
        "from devstack.process import free_port",
        "from generators.render import render",
        "if TYPE_CHECKING:\n    from generators.profile import Profile",
        'subprocess.run([sys.executable, "-m", "generators"])',
        'importlib.import_module("devstack.cli")',
    ],
)
def test_the_import_check_sees_the_dev_stack_or_the_generators_imported_from_the_service(
    source: str, tmp_path: Path
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source + "\n")
    assert imported_packages(path) & FORBIDDEN["service"]


def test_nothing_outside_the_generators_the_dev_stack_and_the_tests_reads_rendered() -> None:
    readers = [
        str(path.relative_to(REPO))
        for package in ("featurestore", "slos", "service")
        for path in sorted((REPO / package).rglob("*.py"))
        if '"rendered' in path.read_text(encoding="utf-8") or "'rendered" in path.read_text(encoding="utf-8")
    ]
    assert readers == []
