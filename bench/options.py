"""The benchmark's options (`python -m bench`): read by the run (compare.py) and printed by
the report (report.py), so neither imports the other for it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from bench.held_lock import HeldLockStores, LockScope
from bench.pooler_compare import PoolerOptions
from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.worker import StoreFactory, open_store
from featurestore.metrics import BACKEND_POSTGRESQL


@dataclass(frozen=True)
class CompareOptions:
    """The benchmark's workload; the defaults: 64 processes, 64 symbols, 100 ms think, 5 ms held inside the lock."""

    dsn: str
    workers: int = 64
    processes: bool = True
    duration_s: float = 20.0  # per lock scope, split into `slices` alternating slices
    symbols: int = 64
    think_ms: float = 100.0
    hold_ms: float = 5.0
    slices: int = 2
    slo_run: bool = True  # also the guide's SLO workload: per-symbol, no hold, half the duration
    throughput_run: bool = True  # also the same workload with no think time: the seed's throughput claim
    service_url: str | None = None  # also probe this service's health endpoint during the load
    scrape_processes: int = 64  # live processes' files in the fleet scrape probe
    ended_processes: int = 1000  # ended processes' files in the churn scrape probe
    pooler: PoolerOptions | None = field(
        default_factory=PoolerOptions
    )  # also direct vs PgBouncer, and a fleet through it (None: skip)

    def __post_init__(self) -> None:
        if self.slices < 1:
            raise ValueError(f"slices must be >= 1, got {self.slices}")
        if min(self.scrape_processes, self.ended_processes) < 1:
            raise ValueError(
                f"the scrape probes need >= 1 process, got {self.scrape_processes} live, {self.ended_processes} ended"
            )
        if not math.isfinite(self.hold_ms) or self.hold_ms < 0:
            raise ValueError(f"hold_ms must be a finite number >= 0, got {self.hold_ms!r}")
        self.load(self.dsn)  # validates the shared fields

    def stores(self, lock: LockScope, hold_ms: float | None = None) -> StoreFactory:
        """How a run of `lock` opens its stores: production's own, or the benchmark's held-lock adapter."""
        hold_ms = self.hold_ms if hold_ms is None else hold_ms
        if lock is LockScope.SYMBOL and hold_ms == 0:
            return open_store
        return HeldLockStores(lock, hold_ms)

    def load(self, dsn: str, **changes: object) -> LoadConfig:
        config = LoadConfig(
            backend=BACKEND_POSTGRESQL,
            dsn=dsn,
            workers=self.workers,
            processes=self.processes,
            duration_s=self.duration_s / self.slices,
            symbols=self.symbols,
            think_ms=self.think_ms,
        )
        return replace(config, **changes)  # type: ignore[arg-type]

    @property
    def side_s(self) -> float:
        """Seconds of each side measurement slice (bare INSERT, single worker): short for a short run."""
        return min(1.5, self.duration_s / 4)
