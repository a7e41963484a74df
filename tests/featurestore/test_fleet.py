"""featurestore.fleet reads a multiprocess metrics folder into what prometheus_client's MultiProcessCollector
serves, sample for sample, and keeps up with files that grow or go."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess, values
from prometheus_client.parser import text_string_to_metric_families

from featurestore.fleet import FleetReader
from featurestore.instruments import Instruments, build
from featurestore.multiprocess import ENV, value_class

Samples = set[tuple[str, tuple[tuple[str, str], ...], float]]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A metrics folder and prometheus_client writing to it, as with PROMETHEUS_MULTIPROC_DIR set at start."""
    path = tmp_path / "metrics"
    path.mkdir()
    monkeypatch.setenv(ENV, str(path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    yield path
    values.ValueClass.close_all_files()  # type: ignore[attr-defined]


def as_process(pid: int | str) -> Callable[[], Instruments]:
    """Instruments as process `pid` would build them (prometheus_client names its files by this identity)."""

    def make() -> Instruments:
        values.ValueClass = value_class(lambda: pid)
        return build(CollectorRegistry())

    return make


def parsed(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def collector_text(folder: Path) -> str:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(folder))
    return generate_latest(registry).decode()


def exercise(instruments: Instruments, scale: int) -> None:
    for index in range(scale):
        instruments.observe_insert("postgresql", f"S{index}", 0.4 * index)
        instruments.observe_read("duckdb", f"S{index}", 3.0)
        instruments.observe_lock_wait(f"S{index}", 0.1)
        instruments.record_lookup(f"S{index}", hit=index % 2 == 0)
    instruments.set_pool(2, scale % 3, 0)
    instruments.set_health("duckdb", scale % 2 == 0)
    instruments.count_insert_error("postgresql", "lock_timeout")
    instruments.set_fallback_pending(scale)
    instruments.record_http("/api/v1/monitoring/metrics", "GET", 200, 2.0)


def test_the_aggregate_is_what_multiprocess_collector_serves_for_every_family_and_gauge_mode(folder: Path) -> None:
    for pid, scale in ((101, 3), (102, 5), (103, 2)):
        exercise(as_process(pid)(), scale)
    aggregate = FleetReader(folder).read()
    expected = parsed(collector_text(folder))
    assert parsed(aggregate.text()) == expected
    assert {(name, tuple(sorted(labels.items())), value) for name, labels, value in aggregate.samples()} == expected
    assert aggregate.total("featurestore_hits") == 2 + 3 + 1  # even indexes of 3, 5 and 2 lookups
    assert ("pg_manifest_pool_connections_total", (), 6.0) in expected  # livesum
    assert ("pg_manifest_pool_max_utilization_ratio", (), 1.0) in expected  # livemax: 2 of 2 at scale 5


def test_a_later_read_sees_appended_series_and_drops_removed_files(folder: Path) -> None:
    reader = FleetReader(folder)
    first = as_process(201)()
    exercise(first, 2)
    reader.read()
    exercise(first, 4)  # new symbols: entries appended to the same files
    exercise(as_process(202)(), 1)
    assert parsed(reader.read().text()) == parsed(collector_text(folder))
    multiprocess.mark_process_dead(201, str(folder))  # its live gauges go, its counters stay
    after = parsed(reader.read().text())
    assert after == parsed(collector_text(folder))
    assert ("pg_manifest_pool_connections_total", (), 2.0) in after
