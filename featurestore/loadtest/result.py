"""What a load run measured: per-operation samples, their percentiles, and the JSON the CLI and the service print."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from featurestore.loadtest.config import LoadConfig
from featurestore.loadtest.cpu import CpuTimes
from featurestore.loadtest.messages import InsertSample, LookupSample
from featurestore.metrics import takes_advisory_lock


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of ascending `ordered`, linearly interpolated (numpy's default); 0.0 when empty."""
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def percentiles_json(values: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 / p99 of `values` for JSON, rounded; each null when there is no value (never a made-up 0)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    return dict(Percentiles.of(values).to_json())


@dataclass(frozen=True)
class Percentiles:
    """p50 / p95 / p99 in milliseconds (0.0 when no operation completed)."""

    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Percentiles:
        ordered = sorted(values)
        return cls(percentile(ordered, 50), percentile(ordered, 95), percentile(ordered, 99))

    def to_json(self) -> dict[str, float]:
        return {"p50": round(self.p50, 3), "p95": round(self.p95, 3), "p99": round(self.p99, 3)}


@dataclass
class Samples:
    """Per-operation observations of one worker (or merged over many).

    A read-mix run adds its lookups: `hits`, `misses` and every manifest read the store observed (`read_ms`); its
    inserts are those of its misses. `lock_wait_ms` holds the advisory-lock waits of PostgreSQL inserts only, the
    ones the store observes as advisory_lock_wait_time_ms (a DuckDB insert takes no advisory lock).
    """

    insert_ms: list[float] = field(default_factory=list)
    lock_wait_ms: list[float] = field(default_factory=list)
    publish_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: dict[str, str] = field(default_factory=dict)
    backends: Counter[str] = field(default_factory=Counter)
    not_inserted: int = 0
    hits: int = 0
    misses: int = 0
    read_ms: list[float] = field(default_factory=list)

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def inserts(self) -> int:
        return len(self.insert_ms)

    @property
    def operations(self) -> int:
        """Completed lookups in a read-mix run, else completed publishes (a read mix inserts only on its misses)."""
        return self.lookups or self.inserts

    def add_insert(self, sample: InsertSample) -> None:
        self.insert_ms.append(sample.insert_ms)
        if takes_advisory_lock(sample.backend):
            self.lock_wait_ms.append(sample.lock_wait_ms)
        self.publish_ms.append(sample.publish_ms)
        self.backends[sample.backend] += 1
        if not sample.inserted:
            self.not_inserted += 1

    def add_lookup(self, sample: LookupSample) -> None:
        if sample.hit:
            self.hits += 1
        else:
            self.misses += 1
        self.read_ms.extend(ms for _backend, ms in sample.reads)

    def add_error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        self.error_examples.setdefault(kind, message[:300])

    def extend(self, other: Samples) -> None:
        self.insert_ms.extend(other.insert_ms)
        self.lock_wait_ms.extend(other.lock_wait_ms)
        self.publish_ms.extend(other.publish_ms)
        self.errors.update(other.errors)
        for kind, message in other.error_examples.items():
            self.error_examples.setdefault(kind, message)
        self.backends.update(other.backends)
        self.not_inserted += other.not_inserted
        self.hits += other.hits
        self.misses += other.misses
        self.read_ms.extend(other.read_ms)


@dataclass(frozen=True)
class LoadResult:
    """One load run (or several slices of the same workload merged): counts, timings and the config that made them.

    `operations` counts completed publishes (completed lookups in a read-mix run); `duration_s` runs from the start
    barrier to the last worker's end, so `throughput_ops_s` includes the operations still in flight at the deadline.
    """

    config: LoadConfig
    samples: Samples
    duration_s: float
    per_worker_operations: tuple[int, ...]
    duplicates: int
    client_cpu_s: float = 0.0  # CPU of the workers' processes (or of the one process, for threads) while they ran
    # The whole machine's CPU while the workers ran (workers, PostgreSQL, kernel; cpu.py); None off Linux.
    machine_cpu: CpuTimes | None = None

    @property
    def client_cpu_ms_per_op(self) -> float:
        return self.client_cpu_s * 1000.0 / self.operations if self.operations else 0.0

    @property
    def machine_cpu_ms_per_op(self) -> float | None:
        """Busy CPU of the whole machine per operation: what the operation costs everywhere, not in the workers only."""
        if self.machine_cpu is None or not self.operations:
            return None
        return self.machine_cpu.busy * 1000.0 / self.operations

    @property
    def operations(self) -> int:
        return self.samples.operations

    @property
    def errors(self) -> int:
        return sum(self.samples.errors.values())

    @property
    def throughput_ops_s(self) -> float:
        return self.operations / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def insert_latency_ms(self) -> Percentiles:
        return Percentiles.of(self.samples.insert_ms)

    @property
    def lock_wait_ms(self) -> Percentiles:
        return Percentiles.of(self.samples.lock_wait_ms)

    @property
    def publish_latency_ms(self) -> Percentiles:
        return Percentiles.of(self.samples.publish_ms)

    @property
    def read_latency_ms(self) -> Percentiles:
        return Percentiles.of(self.samples.read_ms)

    @property
    def fallback_inserts(self) -> int:
        """Inserts that went to another backend than the configured one (PostgreSQL down or out of connections)."""
        return sum(count for backend, count in self.samples.backends.items() if backend != self.config.backend)

    @property
    def backend(self) -> str:
        """The backend that took most inserts (differs from the config's when PostgreSQL fell back to DuckDB)."""
        if not self.samples.backends:
            return self.config.backend
        return self.samples.backends.most_common(1)[0][0]

    def to_json(self) -> dict[str, Any]:
        config = self.config
        return {
            "backend": self.backend,
            "workers": config.workers,
            "processes": config.processes,
            "symbols": len(config.symbol_names()),
            "think_ms": config.think_ms,
            "read_fraction": config.read_fraction,
            "duration_s": round(self.duration_s, 3),
            "operations": self.operations,
            "errors": self.errors,
            "errors_by_kind": dict(sorted(self.samples.errors.items())),
            "error_examples": dict(sorted(self.samples.error_examples.items())),
            "duplicates": self.duplicates,
            "not_inserted": self.samples.not_inserted,
            "inserts": self.samples.inserts,
            "lookups": self.samples.lookups,
            "hits": self.samples.hits,
            "misses": self.samples.misses,
            "manifest_reads": len(self.samples.read_ms),
            "inserts_by_backend": dict(sorted(self.samples.backends.items())),
            "fallback_inserts": self.fallback_inserts,
            "throughput_ops_s": round(self.throughput_ops_s, 2),
            "insert_latency_ms": percentiles_json(self.samples.insert_ms),
            "lock_waits": len(self.samples.lock_wait_ms),
            "lock_wait_ms": percentiles_json(self.samples.lock_wait_ms),
            "publish_latency_ms": percentiles_json(self.samples.publish_ms),
            "read_latency_ms": percentiles_json(self.samples.read_ms),
            "client_cpu_ms_per_op": round(self.client_cpu_ms_per_op, 3),
            "machine_cpu_ms_per_op": _rounded(self.machine_cpu_ms_per_op, 3),
            "machine_busy_fraction": _rounded(self.machine_cpu.busy_fraction, 4) if self.machine_cpu else None,
            "per_worker_operations": list(self.per_worker_operations),
        }


def merge(results: Sequence[LoadResult]) -> LoadResult:
    """Slices of one workload as one result: samples pooled, durations and per-worker counts added up."""
    if not results:
        raise ValueError("nothing to merge")
    samples = Samples()
    for result in results:
        samples.extend(result.samples)
    workers = max(len(result.per_worker_operations) for result in results)
    per_worker = [0] * workers
    for result in results:
        for index, count in enumerate(result.per_worker_operations):
            per_worker[index] += count
    return LoadResult(
        config=results[0].config,
        samples=samples,
        duration_s=sum(result.duration_s for result in results),
        per_worker_operations=tuple(per_worker),
        duplicates=sum(result.duplicates for result in results),
        client_cpu_s=sum(result.client_cpu_s for result in results),
        machine_cpu=_sum_cpu([result.machine_cpu for result in results]),
    )


def _sum_cpu(parts: Sequence[CpuTimes | None]) -> CpuTimes | None:
    """The slices' machine CPU added up; None when any slice has none (a partial sum would understate it)."""
    total = CpuTimes(0.0, 0.0)
    for part in parts:
        if part is None:
            return None
        total += part
    return total if parts else None


def _rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None
