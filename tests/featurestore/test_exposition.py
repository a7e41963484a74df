"""The scrape writer writes what prometheus_client writes for the same registry, minus the `_created` series, and
promtool reads it."""

from __future__ import annotations

import re
import subprocess

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from featurestore import metrics
from featurestore.exposition import TextExposition, supported
from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from tests.conftest import require_tool

CREATED_LINE = re.compile(r"^(# (HELP|TYPE) )?[a-zA-Z_:][a-zA-Z0-9_:]*_created[ {]")
# promtool's lints that the catalog accepts on purpose (see featurestore/metrics.py): the guide's `_ms` names and the
# guide's pool-capacity gauge ending in `_total`.
ACCEPTED_LINTS = (
    re.compile(r"^\w+_ms metric names should not contain abbreviated units$"),
    re.compile(rf'^{metrics.POOL_TOTAL.name} non-counter metrics should not have "_total" suffix$'),
)


def reference(registry: CollectorRegistry) -> str:
    """generate_latest's body without its `_created` families."""
    text = generate_latest(registry).decode()
    return "".join(f"{line}\n" for line in text.splitlines() if not CREATED_LINE.match(line))


def drive(instruments: Instruments, symbols: range) -> None:
    for index in symbols:
        symbol = f"SYM{index:03d}"
        for backend in metrics.BACKENDS:
            instruments.observe_insert(backend, symbol, 0.1 * index)
            instruments.observe_read(backend, symbol, 3.0)
        instruments.observe_lock_wait(symbol, 12_345_678.9)  # a sum in Go's exponent form
        instruments.record_lookup(symbol, hit=index % 3 != 0)


def every_family_recorded(cap: int = 5) -> Instruments:
    instruments = build_instruments(CollectorRegistry(), symbol_cap=cap)
    drive(instruments, range(cap + 2))
    instruments.set_pool(4, 2, 1)
    instruments.set_health(metrics.COMPONENT_POSTGRESQL, True)
    instruments.set_health(metrics.COMPONENT_DUCKDB, False)
    instruments.count_insert_error(metrics.BACKEND_POSTGRESQL, "lock_timeout")
    instruments.count_recompute("corrupt")
    instruments.set_fallback_pending(3)
    instruments.count_replayed(2)
    instruments.record_http('/weird/"quoted"\\path\nline', "GET", 404, float("inf"))
    return instruments


def comparable(samples: list[Sample]) -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    return [(s.name, tuple(sorted(s.labels.items())), repr(s.value)) for s in samples]


def test_the_body_is_generate_latest_byte_for_byte_without_the_created_series() -> None:
    instruments = every_family_recorded()
    writer = TextExposition(instruments)
    assert writer.fast

    first = writer.render().decode()
    assert first == reference(instruments.registry)
    assert "_created" not in first

    drive(instruments, range(2, 4))  # cached children with new values
    instruments.record_http("/another", "POST", 201, 2.0)  # a child that appears after the first scrape
    instruments.set_pool(4, 4, 9)
    assert writer.render().decode() == reference(instruments.registry)


def test_the_body_parses_to_the_same_samples_as_prometheus_clients() -> None:
    instruments = every_family_recorded()
    ours = list(text_string_to_metric_families(TextExposition(instruments).render().decode()))
    theirs = [
        family
        for family in text_string_to_metric_families(generate_latest(instruments.registry).decode())
        if not family.name.endswith("_created")
    ]
    assert [(family.name, family.type, family.documentation) for family in ours] == [
        (family.name, family.type, family.documentation) for family in theirs
    ]
    for mine, reference_family in zip(ours, theirs, strict=True):
        assert comparable(mine.samples) == comparable(reference_family.samples), mine.name
    assert sum(len(family.samples) for family in ours) > 500


def test_the_guides_buckets_and_labels_are_in_the_body() -> None:
    instruments = build_instruments(CollectorRegistry())
    instruments.observe_insert(metrics.BACKEND_POSTGRESQL, "AAPL", 3.0)
    body = TextExposition(instruments).render().decode()
    for bound in ("1.0", "2.0", "5.0", "10.0", "25.0"):
        line = f'manifest_insert_latency_ms_bucket{{backend="postgresql",le="{bound}",symbol="AAPL"}}'
        assert f"{line} {1.0 if float(bound) >= 3.0 else 0.0}\n" in body


def test_a_registry_whose_internals_it_does_not_know_is_written_by_prometheus_client() -> None:
    instruments = build_instruments(CollectorRegistry())
    pool_total = instruments.families[metrics.POOL_TOTAL.name]
    assert isinstance(pool_total, Gauge)
    pool_total.set_function(lambda: 0.5)
    assert not supported(instruments)
    writer = TextExposition(instruments)
    assert not writer.fast
    assert writer.render() == generate_latest(instruments.registry)


@pytest.mark.promtool
def test_promtool_reads_the_body_and_reports_only_the_lints_the_catalog_accepts() -> None:
    promtool = require_tool("promtool")
    body = TextExposition(every_family_recorded()).render()
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False)
    lints = [line for line in (result.stdout + result.stderr).decode().splitlines() if line.strip()]
    assert lints, "promtool reported nothing: the pool-capacity gauge lint is expected"
    assert [line for line in lints if not any(pattern.match(line) for pattern in ACCEPTED_LINTS)] == []
    assert any(metrics.POOL_TOTAL.name in line for line in lints)
