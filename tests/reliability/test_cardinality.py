"""100,000 distinct symbols: the exported series stay under the cap the catalog implies, and memory stays flat.

The 100,000 go through `Instruments` directly (every symbol-labelled recording call); a slice of real
get_or_compute calls on PostgreSQL shows the store records through the same cap.
"""

from __future__ import annotations

import gc
from collections import Counter as Tally
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from featurestore import FeatureStore, metrics
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.metrics import (
    BACKENDS,
    CATALOG,
    COMPONENTS,
    INSERT_ERRORS,
    LABEL_BACKEND,
    LABEL_COMPONENT,
    LABEL_ERROR,
    LABEL_REASON,
    LABEL_SYMBOL,
    OTHER_SYMBOL,
    RECOMPUTE_REASONS,
    SYMBOL_LABELS_FOLDED,
    MetricKind,
    MetricSpec,
)
from tests.reliability import workers

SYMBOLS = 100_000
FIRST_MEASURE = 10_000
CAP = 100
# Generous: 90,000 more symbols must not cost what 90,000 label children would (~2 KB each, 180 MB and more).
RSS_GROWTH_LIMIT_KB = 16 * 1024
STORE_SYMBOLS = 1_000  # real get_or_compute misses, each a Parquet file and a manifest row: about 10 ms apiece
STORE_FIRST_MEASURE = 250
STORE_RSS_GROWTH_LIMIT_KB = 16 * 1024

pytestmark = pytest.mark.fault


def rss_kb() -> int:
    """Resident set size of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("/proc/self/status has no VmRSS line")


def label_values(spec: MetricSpec, cap: int) -> int | None:
    """How many label combinations `spec` can have with the symbol label capped at `cap` names plus __other__;
    None for the HTTP families, whose labels the service bounds by route template (not recorded here)."""
    sizes = {
        LABEL_SYMBOL: cap + 1,
        LABEL_BACKEND: len(BACKENDS),
        LABEL_COMPONENT: len(COMPONENTS),
        LABEL_ERROR: len(INSERT_ERRORS),
        LABEL_REASON: len(RECOMPUTE_REASONS),
    }
    combinations = 1
    for label in spec.labels:
        if label not in sizes:
            return None
        combinations *= sizes[label]
    return combinations


def series_per_combination(spec: MetricSpec) -> int:
    """Samples per label combination: a histogram's buckets, +Inf, _sum, _count, _created; a counter's _created."""
    if spec.kind is MetricKind.HISTOGRAM:
        return len(spec.buckets) + 1 + 3
    if spec.kind is MetricKind.COUNTER:
        return 2
    return 1


def exported_series(registry: CollectorRegistry) -> Tally[str]:
    """Samples per catalog family (prometheus_client names a counter family without its `_total`)."""
    series = Tally[str]()
    for metric in registry.collect():
        family = metrics.find(metric.name) or metrics.find(f"{metric.name}_total")
        assert family is not None, f"{metric.name} is not in the catalog"
        series[family.name] += len(metric.samples)
    return series


def symbol_values(registry: CollectorRegistry) -> set[str]:
    return {
        sample.labels[LABEL_SYMBOL]
        for metric in registry.collect()
        for sample in metric.samples
        if LABEL_SYMBOL in sample.labels
    }


def drive(instruments: Instruments, start: int, stop: int) -> None:
    """Every symbol-labelled recording call, once per symbol: five observations per symbol."""
    for index in range(start, stop):
        symbol = f"SYM{index:06d}"
        instruments.observe_insert(BACKENDS[index % 2], symbol, 1.5)
        instruments.observe_lock_wait(symbol, 0.3)
        instruments.observe_read(BACKENDS[index % 2], symbol, 0.7)
        instruments.record_lookup(symbol, hit=index % 3 != 0)
        instruments.observe_insert(BACKENDS[(index + 1) % 2], symbol, 2.5)


CALLS_PER_SYMBOL = 5


def series_bounds(cap: int) -> dict[str, int]:
    """The most samples each catalog family can export with the symbol label capped at `cap`."""
    bounds: dict[str, int] = {}
    for spec in CATALOG:
        combinations = label_values(spec, cap)
        bounds[spec.name] = 0 if combinations is None else combinations * series_per_combination(spec)
    return bounds


def test_a_hundred_thousand_symbols_export_a_bounded_number_of_series_in_flat_memory() -> None:
    registry = CollectorRegistry()
    instruments = build_instruments(registry, symbol_cap=CAP)

    drive(instruments, 0, FIRST_MEASURE)
    gc.collect()
    rss_first = rss_kb()
    series_first = sum(exported_series(registry).values())
    drive(instruments, FIRST_MEASURE, SYMBOLS)
    gc.collect()
    rss_last = rss_kb()

    by_family = exported_series(registry)
    total = sum(by_family.values())
    bounds = series_bounds(CAP)
    folded = registry.get_sample_value(SYMBOL_LABELS_FOLDED.name) or 0.0
    print(
        f"\ncardinality: {SYMBOLS} symbols, cap {CAP}: {total} series exported "
        f"({series_first} after {FIRST_MEASURE}); bound {sum(bounds.values())}; folded observations {folded:.0f}; "
        f"RSS {rss_first / 1024:.1f} MiB after {FIRST_MEASURE}, {rss_last / 1024:.1f} MiB after {SYMBOLS} "
        f"(+{(rss_last - rss_first) / 1024:.1f} MiB)"
    )

    assert {name: count for name, count in by_family.items() if count > bounds[name]} == {}
    assert total == series_first, "series kept growing after the cap was reached"
    assert symbol_values(registry) == {f"SYM{index:06d}" for index in range(CAP)} | {OTHER_SYMBOL}
    assert folded == (SYMBOLS - CAP) * CALLS_PER_SYMBOL
    assert rss_last - rss_first < RSS_GROWTH_LIMIT_KB


@pytest.mark.postgres
def test_real_get_or_compute_calls_on_ten_times_the_cap_of_symbols_fold_the_rest_into_other(
    throwaway_dsn: str, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    instruments = build_instruments(registry, symbol_cap=CAP)
    cache_dir = tmp_path / "cache"
    settings = workers.settings(throwaway_dsn, cache_dir, symbol_label_cap=CAP)
    table = workers.frame(1)

    def compute() -> pa.Table:
        return table

    def miss_then_hit(store: FeatureStore, start: int, stop: int) -> None:
        for index in range(start, stop):
            store.get_or_compute(f"REAL{index:05d}", workers.FEATURE, {"window": 5}, compute)  # computed
            store.get_or_compute(f"REAL{index:05d}", workers.FEATURE, {"window": 5}, compute)  # read back

    with FeatureStore.open(throwaway_dsn, cache_dir, settings=settings, instruments=instruments) as store:
        # Both paths run before the first measure: pyarrow's first Parquet read alone costs ~17 MiB, once.
        miss_then_hit(store, 0, STORE_FIRST_MEASURE)
        gc.collect()
        rss_first = rss_kb()
        series_first = sum(exported_series(registry).values())
        miss_then_hit(store, STORE_FIRST_MEASURE, STORE_SYMBOLS)
        gc.collect()
        rss_last = rss_kb()
        stored = sum(1 for _ in store.entries())

    by_family = exported_series(registry)
    total = sum(by_family.values())
    bounds = series_bounds(CAP)
    folded = registry.get_sample_value(SYMBOL_LABELS_FOLDED.name) or 0.0
    print(
        f"\ncardinality through the store: {STORE_SYMBOLS} symbols (get_or_compute on PostgreSQL), cap {CAP}: "
        f"{total} series exported ({series_first} after {STORE_FIRST_MEASURE}); bound {sum(bounds.values())}; "
        f"folded observations {folded:.0f}; RSS {rss_first / 1024:.1f} MiB after {STORE_FIRST_MEASURE}, "
        f"{rss_last / 1024:.1f} MiB after {STORE_SYMBOLS} (+{(rss_last - rss_first) / 1024:.1f} MiB)"
    )

    assert stored == STORE_SYMBOLS
    assert {name: count for name, count in by_family.items() if count > bounds[name]} == {}
    assert total == series_first, "series kept growing after the cap was reached"
    assert symbol_values(registry) == {f"REAL{index:05d}" for index in range(CAP)} | {OTHER_SYMBOL}
    assert folded >= STORE_SYMBOLS - CAP, "a symbol past the cap was recorded without being counted as folded"
    assert rss_last - rss_first < STORE_RSS_GROWTH_LIMIT_KB
