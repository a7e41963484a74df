"""The metric catalog: the one place where metric and label names are written.

The catalog is plain data (`CATALOG`, a tuple of `MetricSpec`) plus `build(registry)`, which creates the instruments
on an explicit registry. The core and the service record through `Instruments`; the generators read `CATALOG` to
validate specs and to name series; tests compare `rendered/` and a live scrape against it.

Latency is observed in milliseconds (the guide's `_ms` names are a deliberate exception to Prometheus's base-unit
rule), with explicit ms buckets that contain every threshold of the guide (1, 2, 5, 10, 25 ms) and reach seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Label names.
LABEL_BACKEND = "backend"
LABEL_SYMBOL = "symbol"
LABEL_COMPONENT = "component"
LABEL_ERROR = "error"
LABEL_REASON = "reason"
LABEL_ROUTE = "route"
LABEL_METHOD = "method"
LABEL_STATUS_CLASS = "status_class"

# Bounded label values.
BACKEND_POSTGRESQL = "postgresql"
BACKEND_DUCKDB = "duckdb"
BACKENDS = (BACKEND_POSTGRESQL, BACKEND_DUCKDB)
COMPONENT_POSTGRESQL = "postgresql"
COMPONENT_DUCKDB = "duckdb"
COMPONENT_METRICS = "metrics"
COMPONENTS = (COMPONENT_POSTGRESQL, COMPONENT_DUCKDB, COMPONENT_METRICS)
OTHER_SYMBOL = "__other__"
INSERT_ERRORS = ("lock_timeout", "pool_timeout", "unavailable", "other")
RECOMPUTE_REASONS = ("missing", "corrupt")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

DEFAULT_SYMBOL_CAP = 100

# Every latency threshold of the guide is a boundary here: 1, 2, 5, 10, 25 ms.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
)  # fmt: skip
HTTP_BUCKETS_MS: tuple[float, ...] = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0)


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    """One metric family as it is exposed: name, type, help text, label names, buckets."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    unit: str = ""

    @property
    def sample_names(self) -> tuple[str, ...]:
        """The sample names a scrape shows for this family (without `_created`)."""
        if self.kind is MetricKind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


MANIFEST_INSERT_LATENCY = MetricSpec(
    "manifest_insert_latency_ms",
    MetricKind.HISTOGRAM,
    "Manifest insert latency in milliseconds, lock wait included",
    (LABEL_BACKEND, LABEL_SYMBOL),
    LATENCY_BUCKETS_MS,
    "ms",
)
ADVISORY_LOCK_WAIT = MetricSpec(
    "advisory_lock_wait_time_ms",
    MetricKind.HISTOGRAM,
    "Time spent waiting for the per-symbol advisory lock, in milliseconds",
    (LABEL_SYMBOL,),
    LATENCY_BUCKETS_MS,
    "ms",
)
MANIFEST_READ_LATENCY = MetricSpec(
    "manifest_read_latency_ms",
    MetricKind.HISTOGRAM,
    "Manifest lookup latency in milliseconds",
    (LABEL_BACKEND, LABEL_SYMBOL),
    LATENCY_BUCKETS_MS,
    "ms",
)
HIT_RATIO = MetricSpec("featurestore_hit_ratio", MetricKind.GAUGE, "Cache hits / (hits + misses) since start (0-1)")
HITS = MetricSpec("featurestore_hits_total", MetricKind.COUNTER, "Cache hits", (LABEL_SYMBOL,))
MISSES = MetricSpec("featurestore_misses_total", MetricKind.COUNTER, "Cache misses (frame computed)", (LABEL_SYMBOL,))
# A gauge ending in _total fails `promtool check metrics`; the guide's name is the contract, so it stays.
POOL_TOTAL = MetricSpec(
    "pg_manifest_pool_connections_total", MetricKind.GAUGE, "Capacity of the manifest pool (its max_size)"
)
POOL_ACTIVE = MetricSpec(
    "pg_manifest_pool_connections_active", MetricKind.GAUGE, "Manifest pool connections lent out to callers"
)
POOL_WAITING = MetricSpec(
    "pg_manifest_pool_requests_waiting", MetricKind.GAUGE, "Callers queued for a manifest pool connection"
)
HEALTH_STATUS = MetricSpec(
    "featurestore_health_check_status",
    MetricKind.GAUGE,
    "Component health from the last check: 1 healthy, 0 unhealthy",
    (LABEL_COMPONENT,),
)
INSERT_ERRORS_TOTAL = MetricSpec(
    "manifest_insert_errors_total",
    MetricKind.COUNTER,
    "Manifest inserts that failed, by backend and error kind",
    (LABEL_BACKEND, LABEL_ERROR),
)
FALLBACK_PENDING = MetricSpec(
    "featurestore_fallback_pending_entries",
    MetricKind.GAUGE,
    "Entries written to the DuckDB fallback that still await replay into PostgreSQL",
)
FALLBACK_REPLAYED = MetricSpec(
    "featurestore_fallback_replayed_total", MetricKind.COUNTER, "Fallback entries replayed into PostgreSQL"
)
RECOMPUTED = MetricSpec(
    "featurestore_recomputed_total",
    MetricKind.COUNTER,
    "Frames recomputed because the cached file was missing or corrupt",
    (LABEL_REASON,),
)
SYMBOL_LABELS_FOLDED = MetricSpec(
    "featurestore_symbol_labels_folded_total",
    MetricKind.COUNTER,
    f"Observations whose symbol label was folded into {OTHER_SYMBOL!r} by the cardinality cap",
)
HTTP_REQUESTS = MetricSpec(
    "featurestore_http_requests_total",
    MetricKind.COUNTER,
    "HTTP requests served by the monitoring service, by route template, method and status class",
    (LABEL_ROUTE, LABEL_METHOD, LABEL_STATUS_CLASS),
)
HTTP_REQUEST_DURATION = MetricSpec(
    "featurestore_http_request_duration_ms",
    MetricKind.HISTOGRAM,
    "HTTP request duration in milliseconds, by route template and method",
    (LABEL_ROUTE, LABEL_METHOD),
    HTTP_BUCKETS_MS,
    "ms",
)

CATALOG: tuple[MetricSpec, ...] = (
    MANIFEST_INSERT_LATENCY,
    ADVISORY_LOCK_WAIT,
    MANIFEST_READ_LATENCY,
    HIT_RATIO,
    HITS,
    MISSES,
    POOL_TOTAL,
    POOL_ACTIVE,
    POOL_WAITING,
    HEALTH_STATUS,
    INSERT_ERRORS_TOTAL,
    FALLBACK_PENDING,
    FALLBACK_REPLAYED,
    RECOMPUTED,
    SYMBOL_LABELS_FOLDED,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOG}


def find(name: str) -> MetricSpec | None:
    """The family a metric or sample name belongs to (`x_bucket` finds histogram `x`)."""
    if name in BY_NAME:
        return BY_NAME[name]
    for suffix in ("_bucket", "_sum", "_count", "_created"):
        if name.endswith(suffix):
            spec = BY_NAME.get(name.removesuffix(suffix))
            if spec is not None and (spec.kind is MetricKind.HISTOGRAM or suffix == "_created"):
                return spec
    if name.endswith("_created"):  # a counter's `_created` sample drops its `_total`
        spec = BY_NAME.get(name.removesuffix("_created") + "_total")
        if spec is not None and spec.kind is MetricKind.COUNTER:
            return spec
    return None


class SymbolLabels:
    """Bounds the `symbol` label: the first `cap` distinct symbols keep their name, later ones become `__other__`."""

    def __init__(self, cap: int, folded: Counter | None = None) -> None:
        if cap < 0:
            raise ValueError(f"symbol label cap must be >= 0, got {cap}")
        self.cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._folded = folded

    def __call__(self, symbol: str) -> str:
        if symbol in self._seen:
            return symbol
        with self._lock:
            if symbol in self._seen:
                return symbol
            if len(self._seen) < self.cap:
                self._seen.add(symbol)
                return symbol
        if self._folded is not None:
            self._folded.inc()
        return OTHER_SYMBOL


def _instrument(spec: MetricSpec, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    if spec.kind is MetricKind.HISTOGRAM:
        return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)
    if spec.kind is MetricKind.COUNTER:
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    return Gauge(spec.name, spec.help, spec.labels, registry=registry)


@dataclass
class Recording:
    """What one thread recorded inside `Instruments.recording()`: a caller's view of one store operation."""

    reads: list[tuple[str, float]] = field(default_factory=list)  # (backend, ms)
    inserts: list[tuple[str, float]] = field(default_factory=list)  # (backend, ms)
    lock_waits: list[float] = field(default_factory=list)
    insert_errors: list[str] = field(default_factory=list)


@dataclass
class Instruments:
    """The live instruments of one registry, with the recording calls the core and the service make.

    `Instruments.disabled()` records nothing; the benchmark uses it to measure what instrumentation costs.
    """

    registry: CollectorRegistry
    families: dict[str, Counter | Gauge | Histogram]
    symbols: SymbolLabels
    enabled: bool = True
    _hits: int = field(default=0, repr=False)
    _misses: int = field(default=0, repr=False)
    _ratio_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Labelled children by (family name, raw label values): a hit skips the symbol cap and prometheus_client's
    # `.labels()` (validation, a lock, a dict lookup). Only values already admitted are cached, so a symbol beyond
    # the cap goes through `SymbolLabels` on every call and the folded counter still counts each observation.
    _children: dict[tuple[str, str | None, str], Any] = field(default_factory=dict, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    @classmethod
    def disabled(cls) -> Instruments:
        return cls(CollectorRegistry(auto_describe=True), {}, SymbolLabels(0), enabled=False)

    def _hist(self, spec: MetricSpec) -> Histogram:
        family = self.families[spec.name]
        assert isinstance(family, Histogram)
        return family

    def _counter(self, spec: MetricSpec) -> Counter:
        family = self.families[spec.name]
        assert isinstance(family, Counter)
        return family

    def _gauge(self, spec: MetricSpec) -> Gauge:
        family = self.families[spec.name]
        assert isinstance(family, Gauge)
        return family

    def _symbol_child(self, spec: MetricSpec, first: str | None, symbol: str) -> Any:
        """The child of `spec` for (`first`, symbol); `first` is None for a family labelled by symbol only."""
        key = (spec.name, first, symbol)
        child = self._children.get(key)
        if child is not None:
            return child
        label = self.symbols(symbol)
        family = self.families[spec.name]
        child = family.labels(label) if first is None else family.labels(first, label)
        if label == symbol != OTHER_SYMBOL:  # never cache a folded symbol: each observation of it counts as folded
            self._children[key] = child
        return child

    @contextmanager
    def recording(self) -> Iterator[Recording]:
        """Also copy this thread's reads, inserts, lock waits and insert errors into a `Recording` (the load
        generator reads what one `get_or_compute` did this way; recording works with disabled instruments too)."""
        previous = self._current_recording()
        recording = Recording()
        self._local.recording = recording
        try:
            yield recording
        finally:
            self._local.recording = previous

    def _current_recording(self) -> Recording | None:
        recording: Recording | None = getattr(self._local, "recording", None)
        return recording

    def observe_insert(self, backend: str, symbol: str, ms: float) -> None:
        if (recording := self._current_recording()) is not None:
            recording.inserts.append((backend, ms))
        if self.enabled:
            self._symbol_child(MANIFEST_INSERT_LATENCY, backend, symbol).observe(ms)

    def observe_lock_wait(self, symbol: str, ms: float) -> None:
        if (recording := self._current_recording()) is not None:
            recording.lock_waits.append(ms)
        if self.enabled:
            self._symbol_child(ADVISORY_LOCK_WAIT, None, symbol).observe(ms)

    def observe_read(self, backend: str, symbol: str, ms: float) -> None:
        if (recording := self._current_recording()) is not None:
            recording.reads.append((backend, ms))
        if self.enabled:
            self._symbol_child(MANIFEST_READ_LATENCY, backend, symbol).observe(ms)

    def record_lookup(self, symbol: str, *, hit: bool) -> None:
        if not self.enabled:
            return
        self._symbol_child(HITS if hit else MISSES, None, symbol).inc()
        with self._ratio_lock:
            if hit:
                self._hits += 1
            else:
                self._misses += 1
            ratio = self._hits / (self._hits + self._misses)
        self._gauge(HIT_RATIO).set(ratio)

    def count_insert_error(self, backend: str, error: str) -> None:
        if (recording := self._current_recording()) is not None:
            recording.insert_errors.append(error)
        if self.enabled:
            self._counter(INSERT_ERRORS_TOTAL).labels(backend, error if error in INSERT_ERRORS else "other").inc()

    def count_recompute(self, reason: str) -> None:
        if self.enabled:
            self._counter(RECOMPUTED).labels(reason).inc()

    def set_pool(self, total: int, active: int, waiting: int) -> None:
        if self.enabled:
            self._gauge(POOL_TOTAL).set(total)
            self._gauge(POOL_ACTIVE).set(active)
            self._gauge(POOL_WAITING).set(waiting)

    def set_health(self, component: str, healthy: bool) -> None:
        if self.enabled:
            self._gauge(HEALTH_STATUS).labels(component).set(1 if healthy else 0)

    def set_fallback_pending(self, entries: int) -> None:
        if self.enabled:
            self._gauge(FALLBACK_PENDING).set(entries)

    def count_replayed(self, entries: int = 1) -> None:
        if self.enabled:
            self._counter(FALLBACK_REPLAYED).inc(entries)

    def record_http(self, route: str, method: str, status: int, ms: float) -> None:
        if self.enabled:
            status_class = f"{min(max(status // 100, 1), 5)}xx"
            self._counter(HTTP_REQUESTS).labels(route, method, status_class).inc()
            self._hist(HTTP_REQUEST_DURATION).labels(route, method).observe(ms)


def build(registry: CollectorRegistry | None = None, symbol_cap: int = DEFAULT_SYMBOL_CAP) -> Instruments:
    """Create every catalog instrument on `registry` (a fresh one by default; never the global registry)."""
    registry = registry if registry is not None else CollectorRegistry()
    families = {spec.name: _instrument(spec, registry) for spec in CATALOG}
    folded = families[SYMBOL_LABELS_FOLDED.name]
    assert isinstance(folded, Counter)
    hit_ratio = families[HIT_RATIO.name]
    assert isinstance(hit_ratio, Gauge)
    # No lookup yet means no ratio: NaN compares false, so `featurestore_hit_ratio < 0.95` cannot fire on an idle
    # process, where the client's default 0 would page after 15 quiet minutes.
    hit_ratio.set(float("nan"))
    return Instruments(registry, families, SymbolLabels(symbol_cap, folded))
