"""What a worker process tells the run's parent, as typed messages (one queue, pickled): ready after its warm-up,
batches of observations while it runs, done or failed at the end. Thread workers log the same observations."""

from __future__ import annotations

from dataclasses import dataclass, field

from featurestore.manifest.base import InsertOutcome


@dataclass(frozen=True)
class InsertSample:
    """One completed insert: where it went, how long the insert and its lock wait took, and the whole publish."""

    symbol: str
    backend: str
    insert_ms: float
    lock_wait_ms: float
    publish_ms: float
    inserted: bool = True

    @classmethod
    def of(cls, symbol: str, outcome: InsertOutcome, publish_ms: float) -> InsertSample:
        return cls(symbol, outcome.backend, outcome.latency_ms, outcome.lock_wait_ms, publish_ms, outcome.inserted)


@dataclass(frozen=True)
class ErrorSample:
    """One failed operation, by kind (errors.error_kind) with its message."""

    symbol: str
    kind: str
    message: str


@dataclass(frozen=True)
class LookupSample:
    """One completed get_or_compute: a hit or a miss, and the manifest reads it made as (backend, ms)."""

    symbol: str
    hit: bool
    reads: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Batch:
    worker: int
    inserts: list[InsertSample] = field(default_factory=list)
    errors: list[ErrorSample] = field(default_factory=list)
    lookups: list[LookupSample] = field(default_factory=list)


@dataclass(frozen=True)
class Ready:
    """The worker opened its store and warmed up: it waits at the start barrier."""

    worker: int


@dataclass(frozen=True)
class Done:
    worker: int
    ended_at: float  # time.monotonic() in the worker (one clock per machine)
    cpu_s: float  # the worker's CPU time while it ran


@dataclass(frozen=True)
class Failed:
    worker: int
    reason: str


Message = Batch | Ready | Done | Failed
