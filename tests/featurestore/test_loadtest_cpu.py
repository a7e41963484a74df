"""The machine's CPU during a load run (featurestore/loadtest/cpu.py): /proc/stat read right, and a run's window
covering its workers' CPU and nothing before it."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace

import pytest

from featurestore.loadtest import LoadConfig, run_load
from featurestore.loadtest.cpu import CpuTimes, machine_cpu_times, parse_proc_stat, since
from featurestore.loadtest.result import merge

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")

PROC_STAT = """\
cpu  1000 50 400 8000 300 20 30 200 0 0
cpu0 500 25 200 4000 150 10 15 100 0 0
intr 123
"""


def test_proc_stat_busy_leaves_out_idle_iowait_and_steal() -> None:
    times = parse_proc_stat(PROC_STAT, ticks_per_second=100)
    assert times == CpuTimes(busy=15.0, idle=83.0, steal=2.0)  # user+nice+system+irq+softirq; idle+iowait; steal
    assert times.total == 100.0
    assert times.busy_fraction == pytest.approx(15 / 98)  # of the time the machine had: steal is not ours
    with pytest.raises(ValueError, match="no 'cpu' line"):
        parse_proc_stat("intr 1\n", 100)


def test_cpu_times_subtract_and_add_by_field() -> None:
    a, b = CpuTimes(3.0, 5.0, 1.0), CpuTimes(1.0, 2.0, 0.5)
    assert a - b == CpuTimes(2.0, 3.0, 0.5)
    assert a + b == CpuTimes(4.0, 7.0, 1.5)
    assert CpuTimes(0.0, 0.0).busy_fraction == 0.0


@linux_only
def test_cpu_spent_in_this_process_shows_as_machine_busy_time() -> None:
    started = time.monotonic()
    start, cpu = machine_cpu_times(), time.process_time()
    while time.monotonic() < started + 0.3:
        pass
    spent, cpu = since(start), time.process_time() - cpu
    elapsed = time.monotonic() - started
    assert spent is not None
    # Ticks are 10 ms and per-CPU accounting is sampled: a margin, but our own spinning is part of the machine's.
    assert spent.busy >= 0.8 * cpu - 0.05
    assert spent.total <= (os.cpu_count() or 1) * (elapsed + 0.1)  # the window's CPU time, not the time since boot


@linux_only
@pytest.mark.postgres
def test_a_process_run_measures_the_machine_while_its_workers_ran(pg_schema_dsn: str) -> None:
    config = LoadConfig(backend="postgresql", dsn=pg_schema_dsn, workers=2, processes=True, duration_s=1.0, symbols=2)
    started = time.monotonic()
    result = run_load(config)
    elapsed = time.monotonic() - started
    machine = result.machine_cpu
    assert machine is not None and result.machine_cpu_ms_per_op is not None
    # The workers' own CPU is part of the machine's busy time in the same window ...
    assert machine.busy >= 0.8 * result.client_cpu_s - 0.05
    assert result.machine_cpu_ms_per_op >= 0.8 * result.client_cpu_ms_per_op - 0.05
    # ... and the window is the run's, not the time since boot.
    assert machine.total <= (os.cpu_count() or 1) * (elapsed + 1.0)
    document = result.to_json()
    assert document["machine_cpu_ms_per_op"] == round(result.machine_cpu_ms_per_op, 3)
    assert 0.0 < document["machine_busy_fraction"] <= 1.0
    # Slices merge by adding their CPU; one slice without a reading makes the merged figure unknown, not smaller.
    assert merge([result, result]).machine_cpu == machine + machine
    assert merge([result, replace(result, machine_cpu=None)]).machine_cpu is None
