"""The whole machine's CPU time during a run, from /proc/stat (Linux): what the workers, PostgreSQL and the kernel used
together, so a CPU-bound run can say how close it came to the machine's ceiling.

A worker's own CPU (`client_cpu_s`) misses what each publish costs elsewhere on the same machine: the PostgreSQL
backend that runs the insert, the WAL writer, the kernel's block and network work. On a machine with N CPUs a
workload that keeps them busy cannot exceed N / (machine CPU per operation) operations per second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# The first line's columns: user nice system idle iowait irq softirq steal (guest and guest_nice are inside user/nice).
_IDLE_COLUMNS = (3, 4)  # idle, iowait: nothing of this machine ran
_STEAL_COLUMN = 7  # taken by the hypervisor for other guests: not ours, and not free either


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU seconds of all CPUs since boot: `busy` ran something here, `idle` ran nothing, `steal` went to
    other guests of the hypervisor."""

    busy: float
    idle: float
    steal: float = 0.0

    def __add__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.busy + other.busy, self.idle + other.idle, self.steal + other.steal)

    def __sub__(self, earlier: CpuTimes) -> CpuTimes:
        return CpuTimes(self.busy - earlier.busy, self.idle - earlier.idle, self.steal - earlier.steal)

    @property
    def total(self) -> float:
        return self.busy + self.idle + self.steal

    @property
    def busy_fraction(self) -> float:
        """Of the CPU time this machine had (steal left out: the hypervisor gave it to others), the share it was busy;
        1.0: the run was CPU-bound."""
        available = self.busy + self.idle
        return self.busy / available if available > 0 else 0.0


def parse_proc_stat(text: str, ticks_per_second: float) -> CpuTimes:
    """The `cpu` line of /proc/stat as CpuTimes; ValueError when the text has none."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(value) for value in fields[1:9]]
            ticks += [0] * (8 - len(ticks))
            idle = sum(ticks[column] for column in _IDLE_COLUMNS)
            steal = ticks[_STEAL_COLUMN]
            busy = sum(ticks) - idle - steal
            return CpuTimes(busy / ticks_per_second, idle / ticks_per_second, steal / ticks_per_second)
    raise ValueError("no 'cpu' line in /proc/stat")


def machine_cpu_times() -> CpuTimes | None:
    """The machine's CPU times now, or None where /proc/stat is not there (not Linux) or cannot be read."""
    try:
        return parse_proc_stat(PROC_STAT.read_text(), float(os.sysconf("SC_CLK_TCK")))
    except (OSError, ValueError):
        return None


def since(start: CpuTimes | None) -> CpuTimes | None:
    """The machine's CPU times spent since `start` (None when either reading is missing)."""
    now = machine_cpu_times()
    return now - start if now is not None and start is not None else None
