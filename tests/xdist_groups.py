"""Which pytest-xdist worker runs what: every test of a group on one worker, one after another, as `make test`'s
`--dist loadgroup` promises.

pytest-xdist's own loadgroup writes a test's group into the node id as it is collected (`…::test@group`) and reads it
back from there when it deals out the work; pytest 9.2's structured node ids no longer take that write, so the groups
are silently lost and every test is dealt out alone (both workers then run "one worker" tests at once, and a module's
fixtures are built on both). Here the workers write each collected test's group to a file the controller named, and the
controller's scheduler reads the groups from there: the same loadgroup scheduling, whatever pytest does to node ids.

A plugin: tests/conftest.py registers it; `pytest -p tests.xdist_groups` loads it anywhere else.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling

GROUPS_FILE = "featurestore_xdist_groups"  # the key of the workers' input that names the folder of the group files


def group_of(item: pytest.Item) -> str | None:
    """The `xdist_group` of a test (the names of several, joined, as pytest-xdist does), or None."""
    marks = item.iter_markers("xdist_group")
    names = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")) for mark in marks}
    return "_".join(sorted(names)) or None


@pytest.hookimpl(trylast=True)  # after every other plugin and conftest has marked the tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: record the group of every grouped test where the controller reads it."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is None or GROUPS_FILE not in workerinput:
        return
    groups = {item.nodeid: group for item in items if (group := group_of(item)) is not None}
    folder = Path(workerinput[GROUPS_FILE])
    partial = folder / f"{workerinput['workerid']}.json.partial"
    partial.write_text(json.dumps(groups))
    os.replace(partial, folder / f"{workerinput['workerid']}.json")


class FileGroupScheduling(LoadGroupScheduling):
    """loadgroup, with each test's group read from the files the workers wrote while collecting."""

    def __init__(self, config: pytest.Config, log: Any, folder: Path) -> None:
        super().__init__(config, log)
        self.folder = folder
        self._groups: dict[str, str] | None = None

    @property
    def groups(self) -> dict[str, str]:
        """Node id to group of every grouped test; read once every worker has finished collecting."""
        if self._groups is None:
            self._groups = {}
            for path in sorted(self.folder.glob("*.json")):
                self._groups.update(json.loads(path.read_text()))
        return self._groups

    def _split_scope(self, nodeid: str) -> str:
        return self.groups.get(nodeid, nodeid)


class GroupTimes:
    """On the controller: each group's time (the sum of its tests' setup, call and teardown), printed at the end: the
    longest group is the floor of the run's wall time."""

    UNGROUPED = "(no group)"

    def __init__(self, scheduler: FileGroupScheduling) -> None:
        self.scheduler = scheduler
        self.seconds: dict[str, float] = {}
        self.tests: dict[str, int] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        group = self.scheduler.groups.get(report.nodeid, self.UNGROUPED)
        self.seconds[group] = self.seconds.get(group, 0.0) + report.duration
        self.tests[group] = self.tests.get(group, 0) + (report.when == "call")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.section("time per xdist group (setup + call + teardown)")
        for group, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:8.1f} s  {self.tests[group]:4d} tests  {group}")


_FOLDER = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dist", "no") == "loadgroup" and not hasattr(config, "workerinput"):
        config.stash[_FOLDER] = Path(tempfile.mkdtemp(prefix="xdist-groups-"))


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    folder = node.config.stash.get(_FOLDER, None)
    if folder is not None:
        node.workerinput[GROUPS_FILE] = str(folder)


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before pytest-xdist's own, which would pick its loadgroup
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> FileGroupScheduling | None:
    folder = config.stash.get(_FOLDER, None)
    if folder is None:
        return None
    scheduler = FileGroupScheduling(config, log, folder)
    config.pluginmanager.register(GroupTimes(scheduler), "tests.xdist_groups.times")
    return scheduler
