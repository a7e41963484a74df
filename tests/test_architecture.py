"""The data flow runs one way (STYLE.md): featurestore imports none of the other packages, nothing imports the
generators or the dev stack at run time, and what the image ships (service and what it imports) is production code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("featurestore", "slos", "generators", "service", "devstack", "bench", "docsgen")
# devstack (make stack), bench (make profile) and docsgen (the generated tables of docs/) are dev tools outside the
# distribution: production never imports them.
DEV_TOOLS = {"devstack", "bench", "docsgen"}
FORBIDDEN = {
    "featurestore": {"service", "generators", "slos", *DEV_TOOLS},
    "slos": {"service", "generators", *DEV_TOOLS},
    "service": {"generators", *DEV_TOOLS},
    "generators": {"service", *DEV_TOOLS},
    "devstack": {"bench", "docsgen"},
    "bench": {"devstack", "docsgen"},
    "docsgen": {"devstack"},  # reads the committed reports in bench/results/
}


# Packages that could be imported at run time by name (a `-m` subprocess, import_module). "service" and "slos" are
# also ordinary words in labels, paths and prefixes, so only these are looked for in strings.
RUN_NAMES = {"generators", "devstack", "bench", "docsgen"}
# What only the benchmark uses (bench/held_lock.py owns it): the production interfaces carry none of it.
BENCHMARK_NAMES = re.compile(
    r"\b(?:LockScope|GLOBAL|GLOBAL_LOCK_SYMBOL|global_key|p_global_key|hold_ms|hold_s|p_hold_s|pg_sleep|Recording)\b"
    r"|\.recording\(|(?i:\w*hold_ms\w*)"
)
PRODUCTION_INTERFACES = ("featurestore/manifest", "featurestore/store.py", "featurestore/instruments.py")


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
        "from bench.held_lock import HeldLockStores",
        'subprocess.run([sys.executable, "-m", "bench"])',
    ],
)
def test_the_import_check_sees_the_dev_stack_or_the_generators_imported_from_the_service(
    source: str, tmp_path: Path
) -> None:
    path = tmp_path / "module.py"
    path.write_text(source + "\n")
    assert imported_packages(path) & FORBIDDEN["service"]


def benchmark_names(text: str) -> set[str]:
    return set(BENCHMARK_NAMES.findall(text))


def test_the_production_interfaces_carry_no_benchmark_knob() -> None:
    """The global-lock baseline, the hold inside the lock and the load generator's recordings are bench/'s."""
    paths = [path for name in PRODUCTION_INTERFACES for path in sorted((REPO / name).rglob("*.py"))] + [
        REPO / name for name in PRODUCTION_INTERFACES if name.endswith(".py")
    ]
    found = {str(path.relative_to(REPO)): sorted(benchmark_names(path.read_text(encoding="utf-8"))) for path in paths}
    assert {path: names for path, names in found.items() if names} == {}


@pytest.mark.parametrize(
    "source",
    [
        "def insert(self, entry, *, lock: LockScope = LockScope.SYMBOL) -> None: ...",
        "def insert(self, entry, *, hold_ms: float = 0.0) -> None: ...",
        "PERFORM pg_sleep(p_hold_s);",
        "with self.instruments.recording() as observed:",
        "DEFAULT_HOLD_MS = 5.0",
    ],
)
def test_the_knob_check_sees_a_benchmark_name(source: str) -> None:
    assert benchmark_names(source)


def test_nothing_outside_the_generators_the_dev_stack_and_the_tests_reads_rendered() -> None:
    readers = [
        str(path.relative_to(REPO))
        for package in ("featurestore", "slos", "service")
        for path in sorted((REPO / package).rglob("*.py"))
        if '"rendered' in path.read_text(encoding="utf-8") or "'rendered" in path.read_text(encoding="utf-8")
    ]
    assert readers == []


def module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """First-party module -> the first-party modules it imports (TYPE_CHECKING imports included).

    `from package import name` is an edge to `package.name` when that is a module, else to `package`.
    """
    modules = {module_name(path, root): path for package in packages for path in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{node.module}" if node.module else package
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    edges.add(target if target in modules else base)
        graph[module] = {edge for edge in edges if edge in modules and edge != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_imports_itself_through_others() -> None:
    """A type two modules need lives in a third (STYLE.md); imports under TYPE_CHECKING count too."""
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_a_circle_closed_by_a_type_checking_import_or_one_inside_a_function(
    tmp_path: Path,
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "report.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.compare import Options\n"
    )
    (package / "compare.py").write_text("from pkg.report import Report\nfrom . import loader\n")
    (package / "loader.py").write_text("def load():\n    from pkg import sloth\n")
    (package / "sloth.py").write_text("from .loader import load\n")
    assert cycles(import_graph(tmp_path, ("pkg",))) == [["pkg.compare", "pkg.report"], ["pkg.loader", "pkg.sloth"]]


def test_the_metric_catalog_and_the_conventions_load_without_the_stores_runtime() -> None:
    """The generators read names from featurestore.metrics and featurestore.conventions: importing them must not pull
    in prometheus_client, pyarrow, psycopg or DuckDB (featurestore/__init__ imports FeatureStore on first use)."""
    heavy = ("prometheus_client", "pyarrow", "psycopg", "duckdb", "featurestore.store")
    probe = (
        "import sys, featurestore.metrics, featurestore.conventions, generators.__main__; "
        f"print(','.join(name for name in {heavy!r} if name in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"importing the catalog loaded {loaded}"
