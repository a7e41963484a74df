from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.metrics import COMPONENT_DUCKDB, COMPONENT_METRICS
from service.exporter import LocalExporter
from service.slo import evaluate, report
from service.window import SampleRing
from slos.loader import load_specs
from slos.models import SLO
from tests.service.conftest import API, service_of
from tests.service.test_window import Clock

SPEC = {slo.name: slo for slo in load_specs().slos}


def ring_with(clock: Clock) -> tuple[Instruments, SampleRing]:
    instruments = build_instruments(CollectorRegistry())
    exporter = LocalExporter(instruments, 300.0, clock)
    ring = SampleRing(instruments.registry, window_s=300.0, clock=clock, source=lambda: exporter.read().samples())
    ring.record()
    return instruments, ring


def status(slo: SLO, ring: SampleRing) -> dict[str, object]:
    return evaluate(slo, ring.window()).to_json()


def floor(slo: SLO) -> int:
    """The SLO's `min_events` (1 without): the events a test records for `/slo` to judge it."""
    return slo.min_events or 1


def test_slo_reports_exactly_the_specs_thresholds_and_operators(client: TestClient) -> None:
    body = client.get(f"{API}/slo").json()
    assert {name: (line["threshold"], line["op"]) for name, line in body["slos"].items()} == {
        slo.name: (slo.status_threshold, str(slo.status_op)) for slo in SPEC.values()
    }
    lines = body["slos"].values()
    if all(line["compliant"] for line in lines):
        assert (body["overall_compliant"], body["overall_status"]) == (True, "compliant")
    assert body["overall_compliant"] is not True or not body["slos_without_data"]
    assert body["window_seconds"] == 300.0


def test_a_quantile_slo_is_the_interpolated_quantile_of_the_window() -> None:
    clock = Clock()
    instruments, ring = ring_with(clock)
    for _ in range(floor(SPEC["manifest_insert_p95_ms"])):
        instruments.observe_insert("postgresql", "AAPL", 3.0)  # all in the (2, 5] bucket
    line = status(SPEC["manifest_insert_p95_ms"], ring)
    assert line["current"] == pytest.approx(2 + 3 * 0.95)
    assert line["compliant"] is True
    assert line["no_data"] is False
    for _ in range(floor(SPEC["manifest_insert_p99_ms"])):
        instruments.observe_insert("postgresql", "AAPL", 30.0)  # p99 lands in (25, 50]
    assert status(SPEC["manifest_insert_p99_ms"], ring)["compliant"] is False


def test_observations_older_than_the_window_no_longer_break_the_slo() -> None:
    clock = Clock()
    instruments, ring = ring_with(clock)
    waits = floor(SPEC["advisory_lock_wait_p95_ms"])
    for _ in range(waits):
        instruments.observe_lock_wait("AAPL", 800.0)
    assert status(SPEC["advisory_lock_wait_p95_ms"], ring)["compliant"] is False
    for _ in range(70):
        clock.now += 5
        ring.record()
    for _ in range(waits):
        instruments.observe_lock_wait("AAPL", 0.1)
    line = status(SPEC["advisory_lock_wait_p95_ms"], ring)
    assert line["compliant"] is True
    assert line["current"] == pytest.approx(0.25 * 0.95)


def test_no_data_in_the_window_is_null_and_neither_compliant_nor_violated() -> None:
    _, ring = ring_with(Clock())
    line = status(SPEC["manifest_read_p95_ms"], ring)
    assert line == {
        "threshold": 2.0,
        "current": None,
        "compliant": None,
        "op": "<",
        "kind": "quantile",
        "no_data": True,
        "insufficient_data": False,
        "min_events": SPEC["manifest_read_p95_ms"].min_events,
        "events": None,
    }
    assert status(SPEC["http_availability_percent"], ring)["no_data"] is True
    assert status(SPEC["manifest_insert_under_5ms_percent"], ring)["no_data"] is True


def test_the_availability_slo_counts_5xx_over_all_requests_of_the_window() -> None:
    instruments, ring = ring_with(Clock())
    for index in range(1000):
        instruments.record_http("/api/v1/monitoring/health", "GET", 500 if index < 2 else 200, 1.0)
    line = status(SPEC["http_availability_percent"], ring)
    assert line["current"] == pytest.approx(99.8)
    assert line["threshold"] == 99.9
    assert line["compliant"] is False


def test_the_latency_budget_slo_is_the_share_of_inserts_within_the_threshold_bucket() -> None:
    instruments, ring = ring_with(Clock())
    for index in range(100):
        instruments.observe_insert("duckdb", "MSFT", 4.0 if index < 90 else 8.0)
    line = status(SPEC["manifest_insert_under_5ms_percent"], ring)
    assert line["current"] == pytest.approx(90.0)
    assert line["compliant"] is False


def test_gauge_slos_divide_scale_and_aggregate_like_their_rules() -> None:
    instruments, ring = ring_with(Clock())
    assert status(SPEC["pool_utilization_percent"], ring)["no_data"] is True  # 0 / 0
    instruments.set_pool(total=4, active=3, waiting=0)
    assert status(SPEC["pool_utilization_percent"], ring)["current"] == pytest.approx(75.0)
    instruments.set_pool(total=4, active=4, waiting=2)
    assert status(SPEC["pool_utilization_percent"], ring)["compliant"] is False

    instruments.set_health(COMPONENT_DUCKDB, True)
    instruments.set_health(COMPONENT_METRICS, True)
    assert status(SPEC["health_status"], ring)["current"] == 1.0
    instruments.set_health(COMPONENT_METRICS, False)
    line = status(SPEC["health_status"], ring)
    assert (line["current"], line["compliant"]) == (0.0, False)

    for hit in [True] * 97 + [False] * 3:
        instruments.record_lookup("AAPL", hit=hit)
    line = status(SPEC["hit_ratio_percent"], ring)
    assert (line["current"], line["compliant"]) == (pytest.approx(97.0), True)


def test_overall_compliance_is_false_when_any_slo_is_broken() -> None:
    instruments, ring = ring_with(Clock())
    for _ in range(floor(SPEC["manifest_read_p95_ms"])):
        instruments.observe_read("duckdb", "AAPL", 40.0)
    body = report([SPEC["manifest_read_p95_ms"], SPEC["manifest_insert_p95_ms"]], ring.window(), 300.0)
    assert (body["overall_compliant"], body["overall_status"]) == (False, "violated")
    assert body["slos"]["manifest_insert_p95_ms"]["compliant"] is None  # no inserts in the window


def test_without_any_data_overall_compliance_is_null_and_the_status_no_data(duckdb_client: TestClient) -> None:
    # The busiest pool's share reads 0 without any pool, not NaN: a max over processes must not meet a NaN.
    without_pool = [slo for name, slo in SPEC.items() if name != "busiest_pool_utilization_percent"]
    body = report(without_pool, ring_with(Clock())[1].window(), 300.0)
    assert (body["overall_compliant"], body["overall_status"]) == (None, "no_data")
    assert body["slos_without_data"] == sorted(slo.name for slo in without_pool)
    # An idle service: some gauges have data (health, the DuckDB pool), most SLOs have none; never "compliant".
    idle = duckdb_client.get(f"{API}/slo").json()
    assert idle["overall_compliant"] is None
    assert idle["overall_status"] in {"no_data", "partial_data"}
    assert idle["slos_without_data"]
    assert all(idle["slos"][name]["compliant"] is None for name in idle["slos_without_data"])


def test_every_slo_met_with_data_is_compliant_and_one_without_data_is_partial() -> None:
    instruments, ring = ring_with(Clock())
    for _ in range(max(floor(SPEC["manifest_read_p95_ms"]), floor(SPEC["manifest_insert_p95_ms"]))):
        instruments.observe_read("duckdb", "AAPL", 0.5)
        instruments.observe_insert("duckdb", "AAPL", 1.0)
    both = [SPEC["manifest_read_p95_ms"], SPEC["manifest_insert_p95_ms"]]
    body = report(both, ring.window(), 300.0)
    assert (body["overall_compliant"], body["overall_status"], body["slos_without_data"]) == (True, "compliant", [])
    body = report([*both, SPEC["advisory_lock_wait_p95_ms"]], ring.window(), 300.0)
    assert (body["overall_compliant"], body["overall_status"]) == (None, "partial_data")
    assert body["slos_without_data"] == ["advisory_lock_wait_p95_ms"]


def test_an_slo_below_its_min_events_reads_insufficient_data_not_violated() -> None:
    slo = SPEC["http_availability_percent"]
    assert slo.min_events is not None
    instruments, ring = ring_with(Clock())
    for index in range(3):
        instruments.record_http("/api/v1/monitoring/health", "GET", 500 if index == 0 else 200, 1.0)
    body = report([slo], ring.window(), 300.0)
    line = body["slos"][slo.name]
    assert line["current"] == pytest.approx(100 * 2 / 3)
    assert (line["compliant"], line["insufficient_data"], line["no_data"]) == (None, True, False)
    assert (line["events"], line["min_events"]) == (3, slo.min_events)
    assert (body["overall_compliant"], body["overall_status"]) == (None, "insufficient_data")
    assert body["slos_with_insufficient_data"] == [slo.name]

    for _ in range(slo.min_events):
        instruments.record_http("/api/v1/monitoring/health", "GET", 200, 1.0)
    line = report([slo], ring.window(), 300.0)["slos"][slo.name]
    assert (line["compliant"], line["insufficient_data"]) == (False, False)  # 1 in 103 failed: judged, and broken


def test_the_quickstarts_traffic_reads_as_insufficient_data_not_violated(duckdb_client: TestClient) -> None:
    # The README's quickstart: one miss that computes and inserts the frame, then one hit that reads it.
    with service_of(duckdb_client).store.borrowed() as store:
        for _ in range(2):
            store.get_or_compute("AAPL", "returns_5m", {"window": 5}, compute=lambda: pa.table({"close": [1.0, 2.0]}))
    body = duckdb_client.get(f"{API}/slo").json()
    assert body["overall_status"] != "violated"
    assert body["overall_compliant"] is None
    slos = body["slos"]
    for name, events in (
        ("manifest_insert_p95_ms", 1),
        ("manifest_insert_under_5ms_percent", 1),
        ("hit_ratio_percent", 2),
    ):
        assert (slos[name]["insufficient_data"], slos[name]["compliant"]) == (True, None), name
        assert (slos[name]["events"], slos[name]["min_events"]) == (events, SPEC[name].min_events)
    assert slos["hit_ratio_percent"]["current"] == 50.0  # one miss, one hit: shown, not judged
    assert set(body["slos_with_insufficient_data"]) >= {"manifest_insert_p95_ms", "hit_ratio_percent"}


def _busy_then_quiet(clock: Clock, instruments: Instruments, ring: SampleRing, record: Callable[[bool], None]) -> None:
    """A busy 5 minutes with few failures, then a quiet 5 minutes failing often: `record(failed)` per event."""
    for index in range(10_000):
        record(index < 5)
    for _ in range(70):
        clock.now += 5
        ring.record()
    for index in range(10):
        record(index < 2)


def test_the_period_figures_divide_the_bad_events_since_start_by_all_events_not_the_windows_ratios() -> None:
    clock = Clock()
    instruments, ring = ring_with(clock)
    _busy_then_quiet(
        clock, instruments, ring, lambda failed: instruments.record_http("/x", "GET", 500 if failed else 200, 1.0)
    )
    slo = SPEC["http_availability_percent"]
    body = report([slo], ring.window(), 300.0)["slos"][slo.name]
    assert body["current"] == pytest.approx(80.0)  # the last 5 minutes alone: 2 of 10 failed
    period = body["period"]
    assert (period["period"], period["since"], period["events"], period["bad_events"]) == (
        "30d",
        "process_start",
        10_010,
        7,
    )
    assert period["error_ratio"] == pytest.approx(7 / 10_010)  # the two windows' ratios averaged: 10 %
    assert period["budget_remaining"] == pytest.approx(1 - 7 / 10_010 / 0.001, abs=1e-6)


def test_the_latency_budgets_period_figures_count_the_inserts_over_the_threshold_as_bad_events() -> None:
    clock = Clock()
    instruments, ring = ring_with(clock)
    _busy_then_quiet(
        clock, instruments, ring, lambda slow: instruments.observe_insert("duckdb", "MSFT", 8.0 if slow else 4.0)
    )
    slo = SPEC["manifest_insert_under_5ms_percent"]
    period = report([slo], ring.window(), 300.0)["slos"][slo.name]["period"]
    assert (period["events"], period["bad_events"]) == (10_010, 7)
    assert period["budget_remaining"] == pytest.approx(1 - 7 / 10_010 / 0.05, abs=1e-6)


def test_only_slos_counting_events_report_period_figures_and_without_events_they_are_null() -> None:
    _, ring = ring_with(Clock())
    body = report(list(SPEC.values()), ring.window(), 300.0)["slos"]
    assert {name for name, line in body.items() if "period" in line} == {
        "http_availability_percent",
        "manifest_insert_under_5ms_percent",
    }
    period = body["http_availability_percent"]["period"]
    assert (period["events"], period["error_ratio"], period["budget_remaining"]) == (0, None, None)
