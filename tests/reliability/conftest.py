"""Fixtures of the fault tests: a throwaway PostgreSQL cluster (session) and a fresh database in it (per test)."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import unavailable
from tests.reliability.cluster import SERVER_USER, ThrowawayCluster, find_bindir


@pytest.fixture(scope="session")
def throwaway_cluster() -> Iterator[ThrowawayCluster]:
    """A PostgreSQL cluster of our own that tests may kill and restart; stopped and deleted after the session."""
    bindir = find_bindir()
    if bindir is None:
        unavailable("no PostgreSQL server binaries (initdb, pg_ctl) in pg_config --bindir or /usr/lib/postgresql/*/bin")
    assert bindir is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("runuser is missing: root cannot run postgres itself")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            unavailable(f"no {SERVER_USER!r} OS user to run the throwaway cluster as")
    cluster = ThrowawayCluster.create(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def throwaway_dsn(throwaway_cluster: ThrowawayCluster) -> Iterator[str]:
    """A DSN of a fresh database in the throwaway cluster (restarted first if an earlier test left it down)."""
    throwaway_cluster.ensure_running()
    name = throwaway_cluster.create_database()
    try:
        yield throwaway_cluster.dsn(name)
    finally:
        throwaway_cluster.ensure_running()
        throwaway_cluster.drop_database(name)
