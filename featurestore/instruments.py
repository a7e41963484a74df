"""The runtime instruments built from the catalog (`featurestore.metrics`): `build(registry)` creates them on an
explicit registry, and the core and the service record through `Instruments`.

Without `PROMETHEUS_MULTIPROC_DIR` the values live in this process's memory and its registry is what a scrape of it
shows. With it, prometheus_client writes every value to that folder (featurestore.multiprocess checks the folder and
holds this process's liveness lock first), the `symbol` cap bounds the union of every process's symbols, and the
exporter serves the aggregate (featurestore.fleet). On the embedded default (`build(default_folder=...)`, no
variable) this registry's values are written in the same layout to the cache folder's `.metrics`
(featurestore.folder_values), for the service on that folder. The hit ratio is not recorded here: the exporter
derives it from the hit and miss counters over its window.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from featurestore import folder_values, multiprocess
from featurestore.metrics import (
    ADVISORY_LOCK_WAIT,
    BACKENDS,
    DEFAULT_SYMBOL_CAP,
    FALLBACK_PENDING,
    FALLBACK_REPLAYED,
    HEALTH_STATUS,
    HITS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    INSERT_ERRORS,
    INSERT_ERRORS_TOTAL,
    MANIFEST_INSERT_LATENCY,
    MANIFEST_READ_LATENCY,
    MISSES,
    OTHER_SYMBOL,
    POOL_ACTIVE,
    POOL_MAX_UTILIZATION,
    POOL_TOTAL,
    POOL_WAITING,
    RECOMPUTE_REASONS,
    RECOMPUTED,
    RECORDED,
    SYMBOL_LABELS_FOLDED,
    MetricKind,
    MetricSpec,
)

log = logging.getLogger(__name__)


class SymbolLabels:
    """Bounds the `symbol` label: the first `cap` distinct symbols keep their name, later ones become `__other__`.

    With `admit` (a folder shared by several processes), "first" means first across all of them: a symbol this
    process has not seen yet is admitted only if the shared union has room, so the aggregate scrape holds at most
    `cap` symbols plus `__other__`. The union never shrinks, so once it refused one symbol it is full for good.
    """

    def __init__(self, cap: int, folded: Counter | None = None, admit: Callable[[str], bool] | None = None) -> None:
        if cap < 0:
            raise ValueError(f"symbol label cap must be >= 0, got {cap}")
        self.cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._folded = folded
        self._admit = admit
        self._full = False
        self._logged: set[str] = set()  # the reasons already logged, each once per process

    def __call__(self, symbol: str) -> str:
        if symbol in self._seen:
            return symbol
        with self._lock:
            if symbol in self._seen:
                return symbol
            if len(self._seen) < self.cap and not self._full:
                if self._admit is None or self._admitted(symbol):
                    self._seen.add(symbol)
                    return symbol
            if len(self._seen) >= self.cap or self._full:
                self._log_once(
                    "full",
                    "symbol %r and every later new symbol are counted under %r: the symbol label cap of %d is "
                    "reached (FEATURESTORE_SYMBOL_LABEL_CAP)",
                    symbol,
                    OTHER_SYMBOL,
                    self.cap,
                )
        if self._folded is not None:
            self._folded.inc()
        return OTHER_SYMBOL

    def _admitted(self, symbol: str) -> bool:
        assert self._admit is not None
        try:
            admitted = self._admit(symbol)
        except OSError as exc:
            # The shared list cannot be read now: fold this observation, never fail the caller's work.
            self._log_once(
                "unreadable",
                "symbol %r is counted under %r: the shared symbol list cannot be used (%s); a folder shared by "
                "several users needs them in one group with write access to it",
                symbol,
                OTHER_SYMBOL,
                exc,
            )
            return False
        self._full = not admitted
        return admitted

    def _log_once(self, reason: str, message: str, *args: object) -> None:
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning(message, *args)


def _instrument(
    spec: MetricSpec, registry: CollectorRegistry, classes: folder_values.MetricClasses | None = None
) -> Counter | Gauge | Histogram:
    if spec.kind is MetricKind.HISTOGRAM:
        histogram = classes.histogram if classes is not None else Histogram
        return histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)
    if spec.kind is MetricKind.COUNTER:
        counter = classes.counter if classes is not None else Counter
        return counter(spec.name, spec.help, spec.labels, registry=registry)
    mode: Any = spec.multiprocess_mode
    if not mode:
        raise ValueError(f"gauge {spec.name} needs a multiprocess_mode in the catalog")
    gauge = classes.gauge if classes is not None else Gauge
    return gauge(spec.name, spec.help, spec.labels, registry=registry, multiprocess_mode=mode)


def pool_utilization(total: int, active: int, waiting: int) -> float:
    """Share of a pool's capacity lent out, 1 while callers queue (PostgreSQLPoolExhausted's condition); 0 without
    a pool."""
    if waiting > 0 or 0 < total <= active:
        return 1.0
    return active / total if total > 0 else 0.0


@dataclass
class Instruments:
    """The live instruments of one registry, with the recording calls the core and the service make.

    `Instruments.disabled()` records nothing; the benchmark uses it to measure what instrumentation costs.
    `folder` is the multiprocess metrics folder the values are written to (None: this process's memory).
    """

    registry: CollectorRegistry
    families: dict[str, Counter | Gauge | Histogram]
    symbols: SymbolLabels
    enabled: bool = True
    folder: Path | None = None
    owned_folder: Path | None = None  # a default folder this registry acquired: close() releases it
    # Labelled children by (family name, raw label values): a hit skips the symbol cap and prometheus_client's
    # `.labels()` (validation, a lock, a dict lookup). Only values already admitted are cached, so a symbol beyond
    # the cap goes through `SymbolLabels` on every call and the folded counter still counts each observation.
    _children: dict[tuple[str, str | None, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def disabled(cls) -> Instruments:
        return cls(CollectorRegistry(auto_describe=True), {}, SymbolLabels(0), enabled=False)

    @property
    def multiprocess(self) -> bool:
        return self.folder is not None

    def close(self) -> None:
        """Stop writing to the default metrics folder (idempotent; nothing to do otherwise)."""
        folder, self.owned_folder = self.owned_folder, None
        if folder is not None:
            folder_values.release(folder)

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

    def initialize_series(self) -> None:
        """Create every series whose label values are bounded, at zero, so that "no traffic yet" reads as zero rates
        and not as missing metrics (the `*MetricsAbsent` alerts); `symbol` families get their `__other__` series.

        The exporter calls this once at start; worker processes need not (their series add up with its zeros)."""
        if not self.enabled:
            return
        for backend in BACKENDS:
            self._hist(MANIFEST_INSERT_LATENCY).labels(backend, OTHER_SYMBOL)
            self._hist(MANIFEST_READ_LATENCY).labels(backend, OTHER_SYMBOL)
            for error in INSERT_ERRORS:
                self._counter(INSERT_ERRORS_TOTAL).labels(backend, error)
        self._hist(ADVISORY_LOCK_WAIT).labels(OTHER_SYMBOL)
        self._counter(HITS).labels(OTHER_SYMBOL)
        self._counter(MISSES).labels(OTHER_SYMBOL)
        for reason in RECOMPUTE_REASONS:
            self._counter(RECOMPUTED).labels(reason)

    def observe_insert(self, backend: str, symbol: str, ms: float) -> None:
        if self.enabled:
            self._symbol_child(MANIFEST_INSERT_LATENCY, backend, symbol).observe(ms)

    def observe_lock_wait(self, symbol: str, ms: float) -> None:
        if self.enabled:
            self._symbol_child(ADVISORY_LOCK_WAIT, None, symbol).observe(ms)

    def observe_read(self, backend: str, symbol: str, ms: float) -> None:
        if self.enabled:
            self._symbol_child(MANIFEST_READ_LATENCY, backend, symbol).observe(ms)

    def record_lookup(self, symbol: str, *, hit: bool) -> None:
        if self.enabled:
            self._symbol_child(HITS if hit else MISSES, None, symbol).inc()

    def count_insert_error(self, backend: str, error: str) -> None:
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
            self._gauge(POOL_MAX_UTILIZATION).set(pool_utilization(total, active, waiting))

    def set_health(self, component: str, healthy: bool) -> None:
        if self.enabled:
            self._gauge(HEALTH_STATUS).labels(component).set(1 if healthy else 0)

    def forget_health(self, component: str) -> None:
        """Drop a component's health series (in memory only: the multiprocess mode cannot remove a child)."""
        if self.enabled and not self.multiprocess:
            try:
                self._gauge(HEALTH_STATUS).remove(component)
            except KeyError:
                pass

    def clear_pool(self) -> None:
        """A closed store's pool gauges: zero, which adds nothing to the fleet's sums (live gauges cannot be removed
        from a file while the process lives)."""
        self.set_pool(0, 0, 0)

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


def build(
    registry: CollectorRegistry | None = None,
    symbol_cap: int = DEFAULT_SYMBOL_CAP,
    *,
    default_folder: Path | None = None,
) -> Instruments:
    """Create every recorded catalog instrument on `registry` (a fresh one by default; never the global registry).

    With `PROMETHEUS_MULTIPROC_DIR` set, the folder is checked (MetricsFolderError names the problem) and this
    process registers as alive there before any value is written. Without it, `default_folder` (the embedded
    default's, featurestore.folder_values) gets this registry's values; `Instruments.close()` leaves it. A default
    folder that cannot be used is logged and the values stay in memory: metrics never stop the store."""
    folder = multiprocess.metrics_folder()
    admit = None
    classes = None
    if folder is not None:
        multiprocess.register_process(folder)
    elif default_folder is not None:
        try:
            classes = folder_values.acquire(default_folder)
            folder = classes.files.folder
        except OSError as exc:
            log.warning(
                "metrics stay in this process's memory: the metrics folder %s is unusable: %s", default_folder, exc
            )
    if folder is not None:
        admit = multiprocess.SharedSymbols(folder, symbol_cap).admit
    registry = registry if registry is not None else CollectorRegistry()
    families = {spec.name: _instrument(spec, registry, classes) for spec in RECORDED}
    folded = families[SYMBOL_LABELS_FOLDED.name]
    assert isinstance(folded, Counter)
    instruments = Instruments(registry, families, SymbolLabels(symbol_cap, folded, admit), folder=folder)
    if classes is not None:
        instruments.owned_folder = folder
    return instruments
