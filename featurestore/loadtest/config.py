"""LoadConfig: one load run's workload, validated when built so that bad input fails before any worker starts.

The one validation of a workload: the CLI (argparse) and the service (`POST /test/load`) both build a LoadConfig and
report its ValueError, which names the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from featurestore.keys import validate_name
from featurestore.metrics import BACKEND_DUCKDB, BACKEND_POSTGRESQL, BACKENDS

# Every publish of a run goes under this feature name, with params unique per operation (run id, worker, sequence).
FEATURE = "loadtest"
SYMBOL_PREFIX = "LOAD"
MAX_WORKERS = 1024


@dataclass(frozen=True)
class LoadConfig:
    """The workload of one run. Raises ValueError naming the field when a value is out of range."""

    backend: str = BACKEND_DUCKDB  # "duckdb" | "postgresql"
    dsn: str | None = None
    cache_dir: Path | None = None
    workers: int = 4
    processes: bool = False  # True: workers are processes; False: threads sharing one store
    duration_s: float = 5.0
    symbols: int = 8  # ignored when symbol is set
    symbol: str | None = None
    think_ms: float = 0.0  # compute time between two inserts, randomised around the value
    pool_size: int = 1  # process mode: connections in each worker's pool (a fleet's processes x pool per process)
    # > 0: every operation is a get_or_compute, a hit on a key the worker published before with this probability
    read_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be an integer from 1 to {MAX_WORKERS}, got {self.workers!r}")
        if isinstance(self.pool_size, bool) or not isinstance(self.pool_size, int) or self.pool_size < 1:
            raise ValueError(f"pool_size must be a positive integer, got {self.pool_size!r}")
        if isinstance(self.symbols, bool) or not isinstance(self.symbols, int) or self.symbols < 1:
            raise ValueError(f"symbols must be a positive integer, got {self.symbols!r}")
        require_number(self.duration_s, "duration_s", positive=True)
        require_number(self.think_ms, "think_ms", positive=False)
        require_fraction(self.read_fraction)
        if self.symbol is not None:
            validate_name(self.symbol, "symbol")
        if self.processes and self.backend == BACKEND_DUCKDB and self.workers > 1:
            raise ValueError(
                f"{self.workers} worker processes cannot share the DuckDB manifest: a DuckDB file has one writer "
                "process at a time. Use --backend postgresql with --processes, or threads (drop --processes)."
            )
        if self.backend == BACKEND_POSTGRESQL and not self.dsn:
            raise ValueError("backend postgresql needs a dsn")
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    def connections(self) -> int:
        """Client connections the workers open: one per thread, or `pool_size` per process."""
        return self.workers * (self.pool_size if self.processes else 1)

    def symbol_names(self) -> tuple[str, ...]:
        """The symbols the workers publish to: `symbol` alone, or LOAD000 … LOAD<symbols-1>."""
        if self.symbol is not None:
            return (self.symbol,)
        width = max(3, len(str(self.symbols - 1)))
        return tuple(f"{SYMBOL_PREFIX}{index:0{width}d}" for index in range(self.symbols))


def require_fraction(value: object, name: str = "read_fraction") -> None:
    """0 <= value < 1 (every operation cannot be a hit: a worker's first lookup is a miss)."""
    require_number(value, name, positive=False)
    assert isinstance(value, int | float)
    if value >= 1:
        raise ValueError(f"{name} must be < 1, got {value!r}")


def require_number(value: object, name: str, *, positive: bool) -> None:
    """A finite number, > 0 with `positive`, else >= 0; ValueError naming `name` (the CLI and the service call it)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
