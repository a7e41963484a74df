"""service/exporter.py: featurestore_hit_ratio is hits / lookups over the trailing window, across every process."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry

from featurestore.instruments import build
from service.exporter import HitRatioWindow, LocalExporter
from tests.service.test_window import Clock

WINDOW_S = 300.0
PER_S = 100  # lookups per second


def feed(window: HitRatioWindow, clock: Clock, totals: list[float], seconds: int, hit: float) -> float:
    """`seconds` of traffic at `hit`, read every 15 s like a scrape; the last ratio read."""
    ratio = math.nan
    for _ in range(0, seconds, 15):
        clock.now += 15
        totals[0] += 15 * PER_S * hit
        totals[1] += 15 * PER_S * (1 - hit)
        ratio = window.ratio(totals[0], totals[1])
    return ratio


def test_after_a_day_at_97_percent_the_ratio_falls_below_95_within_minutes_of_a_drop_to_50() -> None:
    clock = Clock()
    window = HitRatioWindow(WINDOW_S, clock)
    totals = [0.0, 0.0]
    assert feed(window, clock, totals, 86400, 0.97) == pytest.approx(0.97)
    # A lifetime ratio would read 95.1 % after an hour at 50 %; the window is below 95 % within a minute.
    assert feed(window, clock, totals, 60, 0.50) < 0.95
    assert feed(window, clock, totals, 3600, 0.50) == pytest.approx(0.5)
    assert feed(window, clock, totals, 600, 0.97) == pytest.approx(0.97)  # and recovers within one window


def test_no_lookup_in_the_window_is_nan_so_an_idle_fleet_raises_no_alert() -> None:
    clock = Clock()
    window = HitRatioWindow(WINDOW_S, clock)
    assert math.isnan(window.ratio(0.0, 0.0))
    totals = [0.0, 0.0]
    assert feed(window, clock, totals, 60, 0.9) == pytest.approx(0.9)
    for _ in range(0, 600, 15):  # ten quiet minutes: the counters stand still
        clock.now += 15
        ratio = window.ratio(totals[0], totals[1])
    assert math.isnan(ratio)


def test_counters_that_start_over_restart_the_window() -> None:
    clock = Clock()
    window = HitRatioWindow(WINDOW_S, clock)
    window.ratio(900.0, 100.0)
    clock.now += 15
    assert window.ratio(1800.0, 200.0) == 0.9
    clock.now += 15
    assert math.isnan(window.ratio(0.0, 0.0))  # the folder was emptied: not a negative increase


def test_the_local_exporter_derives_the_ratio_from_the_registrys_counters() -> None:
    clock = Clock()
    instruments = build(CollectorRegistry())
    exporter = LocalExporter(instruments, WINDOW_S, clock)
    assert math.isnan(exporter.read().hit_ratio)
    for hit in [True] * 3 + [False]:
        instruments.record_lookup("AAPL", hit=hit)
    clock.now += 15
    view = exporter.read()
    assert view.hit_ratio == 0.75
    assert b"\nfeaturestore_hit_ratio 0.75\n" in view.render()
    assert ("featurestore_hit_ratio", {}, 0.75) in list(view.samples())
