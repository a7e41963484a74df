"""The benchmark report's arithmetic, on made-up runs: the CPU ceiling of the throughput workload, and the table's
machine CPU row. Never timing assertions."""

from __future__ import annotations

import pytest

from bench.report import CpuCeiling, _side_by_side, slo_targets
from featurestore.loadtest import LoadConfig, LoadResult
from featurestore.loadtest.cpu import CpuTimes
from featurestore.loadtest.messages import InsertSample
from featurestore.loadtest.result import Samples
from slos import load_specs
from slos.models import QuantileObjective


def run(operations: int, duration_s: float, *, client_s: float, machine: CpuTimes | None) -> LoadResult:
    samples = Samples()
    for _ in range(operations):
        samples.add_insert(InsertSample("S", "postgresql", 1.0, 0.0, 1.5))
    config = LoadConfig(backend="postgresql", dsn="postgresql://x", workers=1, duration_s=duration_s)
    return LoadResult(config, samples, duration_s, (operations,), 0, client_cpu_s=client_s, machine_cpu=machine)


def test_the_ceiling_is_the_same_cost_per_publish_with_every_cpu_busy() -> None:
    # 1,000 publishes in 1 s on 2 CPUs, 95 % busy: 1.9 CPU-s, 1.9 ms per publish, 1.2 ms of it in the workers.
    symbol = run(1000, 1.0, client_s=1.2, machine=CpuTimes(busy=1.9, idle=0.1))
    ceiling = CpuCeiling.of(symbol, global_ops_s=150.0, target_ratio=8.0)
    assert ceiling.busy_fraction == pytest.approx(0.95)
    assert ceiling.machine_ms_per_op == pytest.approx(1.9)
    assert ceiling.client_ms_per_op == pytest.approx(1.2)
    assert ceiling.ceiling_ops_s == pytest.approx(1000 / 0.95)
    assert ceiling.ceiling_ratio == pytest.approx(1000 / 0.95 / 150)
    # 8x of 150 ops/s is 1,200 ops/s: the 2 CPU-s there are per second leave 1.667 ms per publish.
    assert ceiling.needed_ms_per_op == pytest.approx(2000 / 1200)
    text = ceiling.render()
    assert "95% busy at 1.90 ms of CPU per publish" in text and "(1.20 ms in the workers" in text
    assert "every CPU busy, at most 1053 ops/s, a ratio of 7.0x" in text and "8x needs <= 1.67 ms per publish" in text
    assert ceiling.to_json()["needed_machine_cpu_ms_per_op"] == 1.667


def test_the_table_shows_machine_cpu_per_publish_and_a_dash_where_it_was_not_measured() -> None:
    symbol = run(1000, 1.0, client_s=1.2, machine=CpuTimes(busy=1.9, idle=0.1))
    global_ = run(150, 1.0, client_s=0.3, machine=None)
    row = next(line for line in _side_by_side(symbol, global_) if line.startswith("machine CPU (ms/op)"))
    assert row.split()[-2:] == ["1.90", "-"]


def test_the_slo_run_is_held_to_the_thresholds_the_spec_states() -> None:
    slos = load_specs().slos
    thresholds = {
        (slo.objective.metric, slo.objective.quantile): slo.objective.threshold
        for slo in slos
        if isinstance(slo.objective, QuantileObjective)
    }
    targets = {target.name: target for target in slo_targets(run(100, 1.0, client_s=0.1, machine=None), slos)}
    assert targets["SLO run insert p95"].target == f"< {thresholds[('manifest_insert_latency_ms', 0.95)]:g} ms"
    assert targets["SLO run insert p99"].target == f"< {thresholds[('manifest_insert_latency_ms', 0.99)]:g} ms"
    assert targets["SLO run lock wait p95"].target == f"< {thresholds[('advisory_lock_wait_time_ms', 0.95)]:g} ms"
    assert all(target.met for target in targets.values())  # 1 ms inserts, no lock wait


def test_a_changed_spec_threshold_changes_the_target() -> None:
    slo = next(slo for slo in load_specs().slos if slo.name == "manifest_insert_p95_ms")
    assert isinstance(slo.objective, QuantileObjective)
    tight = slo.model_copy(update={"objective": slo.objective.model_copy(update={"threshold": 0.5})})
    (target,) = slo_targets(run(100, 1.0, client_s=0.1, machine=None), [tight])
    assert (target.name, target.target, target.met) == ("SLO run insert p95", "< 0.5 ms", False)
