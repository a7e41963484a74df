"""The metric catalog: the one place where metric and label names are written, as plain data.

`CATALOG` (a tuple of `MetricSpec`) is importable without prometheus_client: the generators read it to validate specs
and to name series; tests compare `rendered/` and a live scrape against it. The runtime instruments built from it
(`Instruments`, `build(registry)`, `SymbolLabels`) live in `featurestore.instruments`, which imports
this module (never the other way round: tests/test_architecture.py fails on an import circle).

Several processes, one scrape: with `PROMETHEUS_MULTIPROC_DIR` set, every process writes its samples to that folder and
the exporter (the service) serves their aggregate. `MetricSpec.multiprocess_mode` says how a gauge aggregates there
(prometheus_client's modes; `live*` drops a dead process's value); counters and histograms are summed. Families in
`DERIVED` are computed by the exporter and never recorded by a process.

Latency is observed in milliseconds (the guide's `_ms` names are a deliberate exception to Prometheus's base-unit
rule), with explicit ms buckets that contain every threshold of the guide (1, 2, 5, 10, 25 ms) and reach seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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
# PostgreSQL inserts under the symbol's advisory lock; DuckDB serializes every write and takes none, so only the
# inserts of these backends observe advisory_lock_wait_time_ms.
ADVISORY_LOCK_BACKENDS = frozenset({BACKEND_POSTGRESQL})
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
    # How a gauge's values of several processes combine (prometheus_client's multiprocess_mode); unused otherwise.
    multiprocess_mode: str = ""

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
HIT_RATIO = MetricSpec(
    "featurestore_hit_ratio",
    MetricKind.GAUGE,
    "Cache hits / (hits + misses) over the SLO window (5m), across every process of this exporter; NaN without lookups",
)
METRICS_FILES_SKIPPED = MetricSpec(
    "featurestore_metrics_files_skipped",
    MetricKind.GAUGE,
    "Files of the metrics folder the last read skipped because they could not be parsed (their values are not served)",
)
HITS = MetricSpec("featurestore_hits_total", MetricKind.COUNTER, "Cache hits", (LABEL_SYMBOL,))
MISSES = MetricSpec("featurestore_misses_total", MetricKind.COUNTER, "Cache misses (frame computed)", (LABEL_SYMBOL,))
# A gauge ending in _total fails `promtool check metrics`; the guide's name is the contract, so it stays.
# Pool gauges: summed over the live processes (capacity, lent out, queued of every pool); the busiest pool's share
# lent out is the highest of any one process, so one exhausted worker shows without a label per pid.
POOL_TOTAL = MetricSpec(
    "pg_manifest_pool_connections_total",
    MetricKind.GAUGE,
    "Capacity of the manifest pools (max_size), summed over live processes",
    multiprocess_mode="livesum",
)
POOL_ACTIVE = MetricSpec(
    "pg_manifest_pool_connections_active",
    MetricKind.GAUGE,
    "Manifest pool connections lent out to callers, summed over live processes",
    multiprocess_mode="livesum",
)
POOL_WAITING = MetricSpec(
    "pg_manifest_pool_requests_waiting",
    MetricKind.GAUGE,
    "Callers queued for a manifest pool connection, summed over live processes",
    multiprocess_mode="livesum",
)
POOL_MAX_UTILIZATION = MetricSpec(
    "pg_manifest_pool_max_utilization_ratio",
    MetricKind.GAUGE,
    "Share of its manifest pool's capacity the busiest live process has lent out (0-1; 1 while callers queue)",
    multiprocess_mode="livemax",
)
HEALTH_STATUS = MetricSpec(
    "featurestore_health_check_status",
    MetricKind.GAUGE,
    "Component health from the last check: 1 healthy, 0 unhealthy",
    (LABEL_COMPONENT,),
    multiprocess_mode="livemostrecent",
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
    multiprocess_mode="livesum",
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
    POOL_MAX_UTILIZATION,
    HEALTH_STATUS,
    INSERT_ERRORS_TOTAL,
    FALLBACK_PENDING,
    FALLBACK_REPLAYED,
    RECOMPUTED,
    SYMBOL_LABELS_FOLDED,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    METRICS_FILES_SKIPPED,
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOG}
# Computed by the exporter (the hit ratio over the window from the hit and miss counters; the files its read skipped).
DERIVED: tuple[MetricSpec, ...] = (HIT_RATIO, METRICS_FILES_SKIPPED)
RECORDED: tuple[MetricSpec, ...] = tuple(spec for spec in CATALOG if spec not in DERIVED)


def takes_advisory_lock(backend: str) -> bool:
    """Whether an insert on `backend` waits for an advisory lock (and so observes the lock-wait histogram)."""
    return backend in ADVISORY_LOCK_BACKENDS


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
