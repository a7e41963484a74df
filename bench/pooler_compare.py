"""`--compare`'s pooler part: the same workload directly on PostgreSQL and through a local PgBouncer in transaction
mode, in alternating slices (ABBA), then a fleet with more client connections than the server admits, through it.

Each slice runs in a fresh schema; PgBouncer (see pgbouncer.py) is started per slice with its server connections on
that schema. While a slice runs, a sampler reads how many server connections it holds: PgBouncer's SHOW POOLS through
the pooler (and its clients' longest wait for one, `maxwait`), pg_stat_activity rows of the run's application_name
directly.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from bench.held_lock import HeldLockStores, run_json
from bench.pgbouncer import LocalPgBouncer, PgBouncerUnavailable, pgbouncer_binary
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.result import LoadResult, merge
from featurestore.loadtest.runner import SPARE_CONNECTIONS, NotEnoughConnections, check_connections, run_load
from featurestore.loadtest.schema import scratch_schema

Progress = Callable[[str], None]
SAMPLE_INTERVAL_S = 0.25
DIRECT, POOLED = "direct", "pgbouncer"


@dataclass(frozen=True)
class PoolerOptions:
    """The pooler comparison: PgBouncer's server pool, and the fleet (processes x pool each) run through it."""

    server_pool: int = 20
    fleet_workers: int = 40
    fleet_pool_size: int = 4


@dataclass(frozen=True)
class PoolerRun:
    """One workload on one path, with the server connections it held (peak) and, through PgBouncer, client waits."""

    path: str
    result: LoadResult
    server_connections: int
    client_wait_ms: float | None = None  # peak of SHOW POOLS maxwait: the longest a client waited for a server
    stores: HeldLockStores = field(default_factory=HeldLockStores)

    @property
    def client_connections(self) -> int:
        return self.result.config.connections()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "client_connections": self.client_connections,
            "server_connections_peak": self.server_connections,
            "client_wait_ms_peak": self.client_wait_ms,
            **run_json(self.result, self.stores.scope, self.stores.hold_ms),
        }


@dataclass(frozen=True)
class PoolerReport:
    options: PoolerOptions
    direct: PoolerRun | None = None
    pooled: PoolerRun | None = None
    fleet: PoolerRun | None = None
    fleet_direct: str = ""  # what a direct fleet run gets from the connection check
    skipped: str = ""  # why there is no comparison (no pgbouncer on this machine)

    def bad(self) -> int:
        """Errors, duplicates and fallback inserts through the pooler (side by side and fleet); the goal is 0."""
        runs = [run.result for run in (self.pooled, self.fleet) if run is not None]
        return sum(r.errors + r.duplicates + r.fallback_inserts for r in runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "server_pool": self.options.server_pool,
            "direct": self.direct.to_json() if self.direct else None,
            "pgbouncer": self.pooled.to_json() if self.pooled else None,
            "fleet": self.fleet.to_json() if self.fleet else None,
            "fleet_direct": self.fleet_direct,
            "skipped": self.skipped,
        }

    def render(self) -> list[str]:
        if self.skipped:
            return ["", f"pooler comparison skipped: {self.skipped}"]
        lines = [
            "",
            f"Direct vs PgBouncer (pool_mode = transaction, server pool {self.options.server_pool}), same workload:",
            f"{'':30}{'p50':>8}{'p95':>8}{'p99':>8}{'ops/s':>8}{'errors':>8}{'dupl.':>7}{'clients':>9}{'servers':>9}"
            f"{'wait':>8}",
        ]
        for label, run in (
            ("direct", self.direct),
            ("through PgBouncer", self.pooled),
            ("fleet through PgBouncer", self.fleet),
        ):
            if run is None:
                continue
            r, p = run.result, run.result.insert_latency_ms
            wait = f"{run.client_wait_ms:.0f}ms" if run.client_wait_ms is not None else "-"
            kind = f"{r.config.workers}x{r.config.pool_size if r.config.processes else 1}"
            lines.append(
                f"{label + ' (' + kind + ')':<30}{p.p50:>8.2f}{p.p95:>8.2f}{p.p99:>8.2f}{r.throughput_ops_s:>8.0f}"
                f"{r.errors:>8}{r.duplicates:>7}{run.client_connections:>9}{run.server_connections:>9}{wait:>8}"
            )
        lines.append(
            "insert latency in ms (lock wait included); clients: connections the workers opened; servers: peak "
            "PostgreSQL connections the run held; wait: peak time a client waited for a server connection (maxwait)"
        )
        if self.fleet_direct:
            lines.append(f"the same fleet directly: {self.fleet_direct}")
        return lines


def run_pooler_compare(
    base: LoadConfig,
    stores: HeldLockStores,
    options: PoolerOptions,
    slices: int,
    cache_root: Path,
    say: Progress,
) -> PoolerReport:
    """`base` (per-symbol lock) directly and through PgBouncer in ABBA slices, then the fleet through PgBouncer."""
    dsn = base.dsn
    assert dsn is not None
    if pgbouncer_binary() is None:
        return PoolerReport(options, skipped="pgbouncer is not installed (apt-get install pgbouncer)")
    runs: dict[str, list[PoolerRun]] = {DIRECT: [], POOLED: []}
    order: list[str] = []
    for index in range(slices):
        pair = [DIRECT, POOLED]
        order.extend(pair if index % 2 == 0 else pair[::-1])
    try:
        for index, path in enumerate(order, start=1):
            say(f"compare: pooler slice {index}/{len(order)}, {path}, {base.duration_s:g} s")
            runs[path].append(_run(base, stores, path, options, cache_root / f"pooler-{index}", say))
        fleet_config = replace(base, workers=options.fleet_workers, pool_size=options.fleet_pool_size, processes=True)
        fleet_direct = _direct_verdict(dsn, fleet_config)
        say(f"compare: fleet through PgBouncer, {options.fleet_workers} processes x pool {options.fleet_pool_size}")
        fleet = _run(fleet_config, stores, POOLED, options, cache_root / "pooler-fleet", say)
    except PgBouncerUnavailable as exc:
        return PoolerReport(options, skipped=str(exc).splitlines()[0])
    return PoolerReport(options, _merged(runs[DIRECT]), _merged(runs[POOLED]), fleet, fleet_direct=fleet_direct)


def _merged(runs: list[PoolerRun]) -> PoolerRun:
    waits = [run.client_wait_ms for run in runs if run.client_wait_ms is not None]
    return PoolerRun(
        runs[0].path,
        merge([run.result for run in runs]),
        max(run.server_connections for run in runs),
        max(waits) if waits else None,
        runs[0].stores,
    )


def _direct_verdict(dsn: str, fleet: LoadConfig) -> str:
    needed = fleet.connections() + SPARE_CONNECTIONS
    try:
        check_connections(dsn, needed)
    except NotEnoughConnections as exc:
        return f"refused, NotEnoughConnections: {exc}"
    return f"the server could have taken its {needed} connections right now (no refusal to show)"


def _run(
    config: LoadConfig, stores: HeldLockStores, path: str, options: PoolerOptions, cache_dir: Path, say: Progress
) -> PoolerRun:
    assert config.dsn is not None
    tag = f"fs-bench-{uuid.uuid4().hex[:8]}"
    with _scratch(config.dsn) as (schema, direct_dsn):
        if path == DIRECT:
            dsn = make_conninfo(direct_dsn, application_name=tag)
            sampler = _Sampler(lambda: (_backends(direct_dsn, tag), None))
            result = _sampled(replace(config, dsn=dsn, cache_dir=cache_dir), stores, sampler, say)
            return PoolerRun(path, result, sampler.peak_servers, stores=stores)
        with LocalPgBouncer(config.dsn, pool_size=options.server_pool, search_path=schema) as bouncer:
            sampler = _Sampler(lambda: _pool_state(bouncer))
            result = _sampled(replace(config, dsn=bouncer.dsn, cache_dir=cache_dir), stores, sampler, say)
            return PoolerRun(path, result, sampler.peak_servers, sampler.peak_wait_ms, stores)


def _sampled(config: LoadConfig, stores: HeldLockStores, sampler: _Sampler, say: Progress) -> LoadResult:
    sampler.start()
    try:
        return run_load(config, progress=say, open_stores=stores, label=f"{stores.scope} lock, ")
    finally:
        sampler.stop()


@contextmanager
def _scratch(dsn: str) -> Iterator[tuple[str, str]]:
    """A fresh schema and a direct DSN whose search_path is it; dropped afterwards."""
    with scratch_schema(dsn, prefix="pooler") as direct_dsn:
        with psycopg.connect(direct_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT current_schema()").fetchone()
        assert row is not None
        yield str(row[0]), direct_dsn


def _backends(dsn: str, application_name: str) -> int:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name]
        ).fetchone()
    return int(row[0]) if row else 0


def _pool_state(bouncer: LocalPgBouncer) -> tuple[int, float | None]:
    pools = bouncer.pools()
    servers = sum(
        int(p.get(k) or 0) for p in pools for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
    )
    wait_ms = max(
        (int(p.get("maxwait") or 0) * 1000 + int(p.get("maxwait_us") or 0) / 1000 for p in pools), default=0.0
    )
    return servers, wait_ms


class _Sampler:
    """Polls `read` every SAMPLE_INTERVAL_S on a thread; keeps the peaks."""

    def __init__(self, read: Callable[[], tuple[int, float | None]]) -> None:
        self.read = read
        self.peak_servers = 0
        self.peak_wait_ms: float | None = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pooler-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._halt.wait(SAMPLE_INTERVAL_S):
            try:
                servers, wait_ms = self.read()
            except psycopg.Error:
                continue  # a sample lost to a busy server is not worth failing the run
            self.peak_servers = max(self.peak_servers, servers)
            if wait_ms is not None:
                self.peak_wait_ms = max(self.peak_wait_ms or 0.0, wait_ms)
