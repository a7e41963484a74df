"""The metric catalog exposes exactly the guide's names, types, labels and millisecond buckets, on an explicit
registry, with the symbol label bounded."""

from __future__ import annotations

import math

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from featurestore import metrics
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.loadtest.messages import InsertSample
from featurestore.loadtest.result import Samples

# The guide's families (name, type, labels): the contract the dashboards, alerts and service build on.
GUIDE = {
    "manifest_insert_latency_ms": ("histogram", ("backend", "symbol")),
    "advisory_lock_wait_time_ms": ("histogram", ("symbol",)),
    "manifest_read_latency_ms": ("histogram", ("backend", "symbol")),
    "featurestore_hit_ratio": ("gauge", ()),
    "featurestore_hits_total": ("counter", ("symbol",)),
    "featurestore_misses_total": ("counter", ("symbol",)),
    "pg_manifest_pool_connections_total": ("gauge", ()),
    "pg_manifest_pool_connections_active": ("gauge", ()),
    "featurestore_health_check_status": ("gauge", ("component",)),
}
GUIDE_THRESHOLDS_MS = (1.0, 2.0, 5.0, 10.0, 25.0)


@pytest.mark.parametrize(("name", "expected"), GUIDE.items())
def test_the_guide_metric_is_in_the_catalog_with_its_type_and_labels(
    name: str, expected: tuple[str, tuple[str, ...]]
) -> None:
    spec = metrics.BY_NAME[name]
    assert (spec.kind.value, spec.labels) == expected


@pytest.mark.parametrize("name", [n for n, (kind, _) in GUIDE.items() if kind == "histogram"])
def test_latency_histograms_have_every_guide_threshold_as_a_bucket_and_reach_seconds(name: str) -> None:
    buckets = metrics.BY_NAME[name].buckets
    assert set(GUIDE_THRESHOLDS_MS) <= set(buckets)
    assert list(buckets) == sorted(buckets)
    assert max(buckets) >= 5000.0


def test_every_family_is_exposed_on_the_registry_given_and_none_on_the_global_one() -> None:
    before = set(REGISTRY._names_to_collectors)  # the only way to list the global registry
    registry = CollectorRegistry()
    instruments = build_instruments(registry)
    instruments.observe_insert("postgresql", "AAPL", 3.0)
    instruments.observe_lock_wait("AAPL", 0.4)
    instruments.observe_read("duckdb", "AAPL", 0.2)
    instruments.record_lookup("AAPL", hit=True)
    instruments.record_lookup("AAPL", hit=False)
    instruments.set_pool(4, 1, 0)
    instruments.set_health("postgresql", True)
    instruments.count_insert_error("postgresql", "lock_timeout")
    instruments.count_recompute("corrupt")
    instruments.set_fallback_pending(0)
    instruments.count_replayed()
    instruments.record_http("/api/v1/monitoring/health", "GET", 200, 1.0)
    assert set(REGISTRY._names_to_collectors) == before

    scraped = {family.name: family for family in text_string_to_metric_families(_scrape(registry))}
    assert metrics.HIT_RATIO.name not in scraped  # derived by the exporter (service/exporter.py), never recorded
    for spec in metrics.RECORDED:
        # The text parser strips a counter's _total; our gauges ending in _total keep it.
        family = scraped.get(spec.name) or scraped.get(spec.name.removesuffix("_total"))
        assert family is not None, spec.name
        assert family.type == spec.kind.value, spec.name
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            assert set(sample.labels) - {"le"} == set(spec.labels), sample


def test_bucket_boundaries_in_a_scrape_are_the_catalog_ms_buckets() -> None:
    registry = CollectorRegistry()
    build_instruments(registry).observe_insert("postgresql", "AAPL", 3.0)
    bounds = [
        float(sample.labels["le"])
        for family in text_string_to_metric_families(_scrape(registry))
        if family.name == "manifest_insert_latency_ms"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    ]
    assert bounds == [*metrics.LATENCY_BUCKETS_MS, math.inf]
    assert (
        registry.get_sample_value(
            "manifest_insert_latency_ms_bucket", {"backend": "postgresql", "symbol": "AAPL", "le": "5.0"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            "manifest_insert_latency_ms_bucket", {"backend": "postgresql", "symbol": "AAPL", "le": "2.0"}
        )
        == 0
    )


def test_symbols_beyond_the_cap_are_folded_into_other_and_counted() -> None:
    registry = CollectorRegistry()
    instruments = build_instruments(registry, symbol_cap=3)
    for symbol in ["S0", "S1", "S2", "S3", "S4", "S0", "S4"]:
        instruments.record_lookup(symbol, hit=True)
    hits = {
        symbol: registry.get_sample_value("featurestore_hits_total", {"symbol": symbol})
        for symbol in ["S0", "S1", "S2", "S3", "S4", metrics.OTHER_SYMBOL]
    }
    assert hits == {"S0": 2.0, "S1": 1.0, "S2": 1.0, "S3": None, "S4": None, metrics.OTHER_SYMBOL: 3.0}
    assert registry.get_sample_value("featurestore_symbol_labels_folded_total") == 3.0


def test_the_default_cap_is_100_symbols_per_process() -> None:
    registry = CollectorRegistry()
    instruments = build_instruments(registry)
    for index in range(150):
        instruments.observe_read("duckdb", f"SYM{index}", 1.0)
    labelled = {
        sample.labels["symbol"]
        for family in text_string_to_metric_families(_scrape(registry))
        if family.name == "manifest_read_latency_ms"
        for sample in family.samples
    }
    assert len(labelled) == 101 and metrics.OTHER_SYMBOL in labelled
    assert registry.get_sample_value("featurestore_symbol_labels_folded_total") == 50.0


def test_disabled_instruments_record_nothing() -> None:
    instruments = Instruments.disabled()
    instruments.observe_insert("postgresql", "AAPL", 1.0)
    instruments.record_lookup("AAPL", hit=True)
    assert _scrape(instruments.registry) == ""


def _scrape(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_cached_children_keep_each_backend_and_family_apart_and_fold_every_call_past_the_cap() -> None:
    registry = CollectorRegistry()
    instruments = build_instruments(registry, symbol_cap=1)
    for _ in range(3):  # the second and third calls go through the child cache
        instruments.observe_insert("postgresql", "AAPL", 1.5)
        instruments.observe_insert("duckdb", "AAPL", 30.0)
        instruments.observe_read("postgresql", "AAPL", 0.7)
        instruments.observe_lock_wait("AAPL", 0.3)
        instruments.observe_insert("postgresql", "MSFT", 3.0)  # past the cap of 1
        instruments.observe_lock_wait("MSFT", 0.3)
        instruments.record_lookup("MSFT", hit=False)

    def count(family: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"{family}_count", labels)

    assert count("manifest_insert_latency_ms", backend="postgresql", symbol="AAPL") == 3.0
    assert (
        registry.get_sample_value("manifest_insert_latency_ms_sum", {"backend": "postgresql", "symbol": "AAPL"}) == 4.5
    )
    assert count("manifest_insert_latency_ms", backend="duckdb", symbol="AAPL") == 3.0
    assert count("manifest_read_latency_ms", backend="postgresql", symbol="AAPL") == 3.0
    assert count("manifest_read_latency_ms", backend="duckdb", symbol="AAPL") is None
    assert count("advisory_lock_wait_time_ms", symbol="AAPL") == 3.0
    assert count("manifest_insert_latency_ms", backend="postgresql", symbol=metrics.OTHER_SYMBOL) == 3.0
    assert count("manifest_insert_latency_ms", backend="postgresql", symbol="MSFT") is None
    assert registry.get_sample_value("featurestore_misses_total", {"symbol": metrics.OTHER_SYMBOL}) == 3.0
    assert registry.get_sample_value("featurestore_symbol_labels_folded_total") == 9.0


def test_only_postgresql_inserts_wait_for_an_advisory_lock_and_the_load_generator_counts_only_those() -> None:
    assert [backend for backend in metrics.BACKENDS if metrics.takes_advisory_lock(backend)] == ["postgresql"]
    samples = Samples()
    samples.add_insert(InsertSample("AAPL", "postgresql", 2.0, 0.5, 2.5))
    samples.add_insert(InsertSample("AAPL", "duckdb", 3.0, 0.0, 3.5))
    assert samples.lock_wait_ms == [0.5]
