from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from featurestore.instruments import Instruments
from featurestore.instruments import build as build_instruments
from featurestore.metrics import LATENCY_BUCKETS_MS, MANIFEST_INSERT_LATENCY
from service.window import SampleRing, histogram_quantile
from tests.conftest import require_tool

INF = float("inf")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # The toolchain notes' promtool case: 60 observations, all in (5, 10] → p95 = 5 + 5 * 0.95.
    assert histogram_quantile(0.95, [(1.0, 0), (5.0, 0), (10.0, 60), (INF, 60)]) == pytest.approx(9.75)


def test_the_first_bucket_starts_at_zero_and_the_inf_bucket_answers_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.5, [(2.0, 10), (INF, 10)]) == pytest.approx(1.0)
    assert histogram_quantile(0.99, [(1.0, 1), (5.0, 2), (INF, 100)]) == 5.0


def test_no_observations_or_no_inf_bucket_is_no_data() -> None:
    assert histogram_quantile(0.95, [(1.0, 0), (INF, 0)]) is None
    assert histogram_quantile(0.95, [(1.0, 3), (5.0, 4)]) is None
    assert histogram_quantile(0.95, []) is None


@pytest.mark.promtool
def test_the_quantile_equals_what_promtool_evaluates_for_the_same_buckets(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rng = random.Random(4)
    bounds = [*LATENCY_BUCKETS_MS, INF]
    cases = []
    for case in range(4):
        counts, total = [], 0
        for _ in bounds:
            total += rng.choice([0, 0, 1, 7, 30])
            counts.append(total)
        counts[-1] += 1  # at least one observation
        cases.append((f"h{case}", dict(zip(bounds, counts, strict=True))))
    series, tests = [], []
    for name, buckets in cases:
        for bound, count in buckets.items():
            label = "+Inf" if bound == INF else repr(bound)
            series.append({"series": f'{name}_bucket{{le="{label}"}}', "values": f"0+{count}x10"})
        for q in (0.5, 0.95, 0.99):
            # rate() over [5m] at 10m sees a constant per-minute increase: the buckets' shares are `buckets`.
            ours = histogram_quantile(q, list(buckets.items()))
            assert ours is not None
            # promtool compares floats exactly; rate() divides, so allow a relative rounding error of 1e-9.
            expr = f"abs(histogram_quantile({q}, rate({name}_bucket[5m])) - {ours!r}) <= bool {ours * 1e-9!r}"
            tests.append({"expr": expr, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 1}]})
    (tmp_path / "rules.yml").write_text("groups: []\n")
    test_file = tmp_path / "quantile_test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yml"],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
            }
        )
    )
    run = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def insert_ring(clock: Clock) -> tuple[Instruments, SampleRing]:
    instruments = build_instruments(CollectorRegistry())
    ring = SampleRing(instruments.registry, window_s=300.0, clock=clock)
    ring.record()
    return instruments, ring


def test_the_window_forgets_observations_older_than_the_window() -> None:
    clock = Clock()
    instruments, ring = insert_ring(clock)
    for _ in range(100):
        instruments.observe_insert("postgresql", "AAPL", 400.0)  # a slow start, long ago
    for _ in range(80):  # 400 s of snapshots every 5 s
        clock.now += 5
        ring.record()
    for _ in range(10):
        instruments.observe_insert("postgresql", "AAPL", 0.8)
    window = ring.window()
    assert window.seconds == pytest.approx(300.0)
    assert window.increase_total(f"{MANIFEST_INSERT_LATENCY.name}_count") == 10
    p95 = window.quantiles(0.95, MANIFEST_INSERT_LATENCY.name)[()]
    assert p95 is not None and p95 <= 1.0
    # The process-lifetime histogram would say otherwise.
    lifetime = instruments.registry.get_sample_value(
        f"{MANIFEST_INSERT_LATENCY.name}_count", {"backend": "postgresql", "symbol": "AAPL"}
    )
    assert lifetime == 110


def test_a_process_younger_than_the_window_is_measured_from_its_first_snapshot() -> None:
    clock = Clock()
    instruments, ring = insert_ring(clock)
    clock.now += 20
    instruments.observe_insert("duckdb", "MSFT", 3.0)
    window = ring.window()
    assert window.seconds == pytest.approx(20.0)
    assert window.increases(f"{MANIFEST_INSERT_LATENCY.name}_count", by=("symbol",)) == {("MSFT",): 1.0}


def test_the_ring_keeps_only_what_the_window_needs() -> None:
    clock = Clock()
    _, ring = insert_ring(clock)
    for _ in range(1000):
        clock.now += 5
        ring.record()
    assert len(ring) == 300 // 5 + 1


def test_bucket_share_counts_events_at_or_under_a_boundary_and_refuses_a_non_boundary() -> None:
    clock = Clock()
    instruments, ring = insert_ring(clock)
    for ms in (1.0, 4.0, 5.0, 6.0):
        instruments.observe_insert("duckdb", "IBM", ms)
    window = ring.window()
    assert window.bucket_share(MANIFEST_INSERT_LATENCY.name, 5.0) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="not a bucket boundary"):
        window.bucket_share(MANIFEST_INSERT_LATENCY.name, 7.0)
