"""`make test`'s groups hold: on two pytest-xdist workers every test of a group runs on one worker, in file order,
and a module fixture of a group is built once (tests/xdist_groups.py); ungrouped tests may run on either."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, xdist_group

MODULE = """
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("{group}")
LOG = Path(__file__).parent / "ran.log"


def note(what):
    with LOG.open("a") as log:
        log.write(f"{{what}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")


@pytest.fixture(scope="module")
def built():
    note("built {group}")


@pytest.mark.parametrize("index", range(6))
def test_in_group(built, index):
    note(f"ran {group} {{index}}")
"""

LOOSE = """
import pytest


@pytest.mark.parametrize("index", range(12))
def test_loose(index):
    pass
"""


def test_each_group_runs_on_one_worker_in_order_builds_its_module_fixture_once_and_has_its_time_printed(
    tmp_path: Path,
) -> None:
    for group in ("alpha", "beta"):
        (tmp_path / f"test_{group}.py").write_text(textwrap.dedent(MODULE.format(group=group)))
    (tmp_path / "test_loose.py").write_text(LOOSE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    command = [sys.executable, "-m", "pytest", "-p", "tests.xdist_groups", "-p", "no:cacheprovider"]
    command += ["-n", "2", "--dist", "loadgroup", "-q", str(tmp_path)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split() for line in (tmp_path / "ran.log").read_text().splitlines()]
    for group in ("alpha", "beta"):
        mine = [line for line in lines if line[1] == group]
        assert [line[0] for line in mine].count("built") == 1, mine
        assert len({line[-1] for line in mine}) == 1, f"group {group} ran on more than one worker: {mine}"
        assert [int(line[2]) for line in mine if line[0] == "ran"] == list(range(6))
        assert f"   6 tests  {group}" in result.stdout  # the time per group, printed at the end


class Item:
    """Just what `xdist_group` reads of a collected test."""

    def __init__(self, nodeid: str, fixtures: tuple[str, ...] = (), markers: tuple[str, ...] = ()) -> None:
        self.nodeid, self.fixturenames, self.markers = nodeid, fixtures, markers

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


@pytest.mark.parametrize(
    ("item", "group"),
    [
        (Item("tests/featurestore/test_singleflight.py::test_race", ("pg_schema_dsn",), ("postgres",)), "postgresql"),
        (Item("tests/bench/test_compare.py::test_x", ("pg_dsn",)), "postgresql"),
        (Item("tests/featurestore/test_store_pooler.py::test_x", ("pooled",), ("postgres", "fault")), "postgresql"),
        (Item("tests/reliability/test_outage.py::test_x", (), ("fault", "postgres")), "fault"),
        (Item("tests/service/test_app.py::test_x", ("pg_dsn",), ("postgres",)), "postgresql"),
        (Item("tests/test_readme.py::test_x", ("pg_dsn",), ("postgres", "server")), "postgresql"),
        (Item("tests/service/test_main.py::test_x", (), ("server",)), "tests/service/test_main.py"),
        (Item("tests/e2e/test_monitoring_stack.py::test_x", (), ("e2e",)), "tests/e2e/test_monitoring_stack.py"),
        (Item("tests/e2e/test_fleet.py::test_x", ("pg_dsn",), ("e2e", "postgres")), "postgresql"),
        (Item("tests/generators/test_rules.py::test_x"), None),
    ],
    ids=[
        "many connections",
        "bench",
        "pgbouncer",
        "fault",
        "postgres",
        "server on postgres",
        "server",
        "stack",
        "fleet: many connections",
        "pure",
    ],
)
def test_a_test_is_grouped_by_what_it_shares(item: Item, group: str | None) -> None:
    assert xdist_group(item) == group  # type: ignore[arg-type]
