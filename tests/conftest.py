"""Shared fixtures. Tests that need PostgreSQL or a Prometheus binary skip locally when it is missing,
and fail when CI=true: CI must never report a green run that did not test against the real thing."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry

import devstack.runner
import generators.__main__
from bench.pgbouncer import LocalPgBouncer
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.loadtest.schema import dsn_with_schema
from tests import xdist_groups
from tests.promtool import parallel
from tests.renders import cached_render

DEFAULT_TEST_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parent.parent
DEBIAN_PACKAGES = "prometheus prometheus-alertmanager pgbouncer"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: tests that need it fail instead of skipping)", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Path of a binary (promtool, amtool, prometheus, ...) or skip/fail as `unavailable` says."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not on PATH (apt-get install --no-install-recommends {DEBIAN_PACKAGES})")
    assert path is not None
    return path


# A test that reaches one of these fixtures, directly or through another, carries the marker: `-m "not postgres"`
# (make check) then leaves out every test that needs PostgreSQL, whether or not the test says so itself.
MARKER_OF_FIXTURE = {"pg_dsn": "postgres", "binaries": "e2e"}


# Tests that start a server process of their own (the service, PgBouncer, an HTTP child), by node id prefix: they
# are `server` tests, which make check leaves out with the postgres, promtool, e2e and fault ones.
SERVER_TESTS = (
    "tests/service/test_main.py::",
    "tests/test_readme.py::test_the_first_frame_snippet_runs_as_written_beside_the_service",
    "tests/deploy/test_dockerfile.py::test_the_images_command_serves_the_app",
    "tests/devstack/test_process.py::test_a_child_is_ready_when_its_url_answers",
    "tests/generators/test_pooler.py::test_debians_pgbouncer_runs",
    "tests/reliability/test_fleet.py::",
)


# `make test` runs the suite on three pytest-xdist workers (`--dist loadgroup`, tests/xdist_groups.py) on two cores: a
# third worker keeps both cores busy while one of them waits on a stack (an alert's `for:`, a scrape interval). A
# group's tests run on one worker, one after another, in file order; the workers run three groups (or ungrouped tests)
# at once.
# - "postgresql": the tests that reach the shared PostgreSQL, except the faults and the end-to-end stacks that open
#   few connections. One at a time: a symbol's advisory lock is one per database whatever the schema, and tests read
#   who holds a symbol's lock while others publish; and the ones that open many connections at once
#   (MANY_CONNECTIONS: the 64-process race, PgBouncer's server pool of 20, the fleet e2e's ~20) must not add up: this
#   group's peak (66 of max_connections 100) plus the two groups beside it (a stack e2e's ~8, a fault's few) stays
#   under 90.
# - "fault": the tests that inject a fault (SIGKILL, a throwaway PostgreSQL cluster stopped under 32 writers, a
#   growing file raced by scrapes), one at a time: two at once would starve the timing each of them judges.
# - an end-to-end test (marker e2e) or one that starts a server without PostgreSQL: a group of its module, so its
#   module fixtures (a stack, a load run) are built once, on one worker. Such a module keeps to itself: its own schema
#   (`module_schema_dsn`) and symbols, free ports, at most ~10 connections (more: MANY_CONNECTIONS).
# - the rest (promtool, renders, models, pure functions): no group, dealt out test by test.
# A new test needs nothing more than its markers or fixtures; one that opens more than ten connections at once adds
# its node id prefix to MANY_CONNECTIONS, and `@pytest.mark.xdist_group("...")` on a test is kept as it is.
SERIAL_MARKERS = ("postgres", "e2e", "fault", "server")
POSTGRESQL_GROUP, FAULT_GROUP = "postgresql", "fault"
MANY_CONNECTIONS = (
    "tests/featurestore/test_singleflight.py::",  # 64 processes, a connection each
    "tests/bench/test_compare.py::",  # make bench's pooler part: a fleet behind PgBouncer
    "tests/e2e/test_fleet.py::",  # 4 workers' pools of 4, their lease renewals and the service
)
MANY_CONNECTIONS_FIXTURES = ("pooled",)  # PgBouncer's server pool of 20


def xdist_group(item: pytest.Item) -> str | None:
    """The group a test runs in, by the rules above; None for a test that needs no group."""
    fixtures = getattr(item, "fixturenames", ())
    if item.nodeid.startswith(MANY_CONNECTIONS) or any(name in fixtures for name in MANY_CONNECTIONS_FIXTURES):
        return POSTGRESQL_GROUP
    if item.get_closest_marker("fault") is not None:
        return FAULT_GROUP
    if item.get_closest_marker("e2e") is not None:
        return item.nodeid.split("::", 1)[0]
    if item.get_closest_marker("postgres") is not None:
        return POSTGRESQL_GROUP
    if item.get_closest_marker("server") is not None:
        return item.nodeid.split("::", 1)[0]
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for fixture, marker in MARKER_OF_FIXTURE.items():
            if fixture in fixtures and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
        if item.nodeid.startswith(SERVER_TESTS):
            item.add_marker(pytest.mark.server)
        group = xdist_group(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_configure(config: pytest.Config) -> None:
    parallel.lean_go_runtime()
    if not config.pluginmanager.is_registered(xdist_groups):  # `-p tests.xdist_groups` may have loaded it already
        config.pluginmanager.register(xdist_groups, "tests.xdist_groups")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the real PostgreSQL the tests use (FEATURESTORE_TEST_PG_DSN)."""
    dsn = os.environ.get("FEATURESTORE_TEST_PG_DSN", DEFAULT_TEST_PG_DSN)
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL does not answer at FEATURESTORE_TEST_PG_DSN: {exc}".strip())
    return dsn


@contextmanager
def fresh_schema(pg_dsn: str, prefix: str = "test") -> Iterator[str]:
    """A DSN whose search_path is a new schema `<prefix>_<random>`, dropped with everything in it on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield dsn_with_schema(pg_dsn, schema)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_schema_dsn(pg_dsn: str) -> Iterator[str]:
    """A DSN whose search_path is a fresh schema, dropped afterwards: each test gets its own manifest tables."""
    with fresh_schema(pg_dsn) as dsn:
        yield dsn


PGBOUNCER_SBIN = "/usr/sbin/pgbouncer"
POOLER_SERVER_POOL = 20  # PgBouncer's default_pool_size in the tests: a fifth of the shared max_connections


@dataclass(frozen=True)
class Pooled:
    """A real PgBouncer (transaction mode) in front of a fresh schema: `dsn` through it, `direct_dsn` around it."""

    bouncer: LocalPgBouncer
    dsn: str
    direct_dsn: str
    schema: str


@pytest.fixture
def pooled(pg_dsn: str) -> Iterator[Pooled]:
    """PgBouncer 1.18, `pool_mode = transaction`, server pool 20, its server connections on a fresh schema."""
    if not Path(PGBOUNCER_SBIN).exists():  # Debian installs it in /usr/sbin, often not on a user's PATH
        require_tool("pgbouncer")
    schema = f"pooler_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with LocalPgBouncer(pg_dsn, pool_size=POOLER_SERVER_POOL, search_path=schema) as bouncer:
            yield Pooled(bouncer, bouncer.dsn, dsn_with_schema(pg_dsn, schema), schema)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def instruments(registry: CollectorRegistry) -> Instruments:
    return build_instruments(registry)


def lease_expiry(dsn: str, symbol: str) -> datetime:
    """When the compute lease on `symbol` runs out, by the server's clock (these tests hold one lease per symbol)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT expires_at FROM compute_leases WHERE symbol = %s", (symbol,)).fetchone()
    assert row is not None, f"no compute lease on {symbol}"
    expiry: datetime = row[0]
    return expiry


def server_is_past(dsn: str, moment: datetime) -> bool:
    """Whether PostgreSQL's clock, which decides a lease's expiry, has passed `moment`."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT clock_timestamp() > %s", (moment,)).fetchone()
    return bool(row and row[0])


@pytest.fixture(scope="session", autouse=True)
def renders_computed_once() -> Iterator[None]:
    """`python -m generators` (`generators.__main__.main`) and the stack's test-profile render go through
    `tests.renders.cached_render` for the whole session: the same specs are rendered once, whoever asks."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generators.__main__, "render", cached_render)
        patch.setattr(devstack.runner, "render", cached_render)
        yield
