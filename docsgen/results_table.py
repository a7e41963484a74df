"""The results table of docs/performance.md: the targets of committed `make bench --json` reports side by side."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_UNIT = re.compile(r"[\d.]+\s*(?P<unit>x|ms|%)?$")


@dataclass(frozen=True)
class Run:
    """One committed report and the column heading that names its machine and workload."""

    heading: str
    report: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Run:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        machine, workload = report["machine"], report["workload"]
        heading = f"{machine['cpus']} CPUs, {workload['workers']} workers"
        return cls(heading, report)

    def targets(self) -> dict[str, dict[str, Any]]:
        return {target["name"]: target for target in self.report["targets"]}


def _cell(target: dict[str, Any] | None) -> str:
    if target is None:
        return "not recorded"
    found = _UNIT.search(target["target"])
    unit = found.group("unit") if found and found.group("unit") else ""
    space = " " if unit in ("ms", "%") else ""
    measured = target["measured"]
    value = "-" if measured is None else f"{measured:g}{space}{unit}"
    return f"{value} {'met' if target['met'] else '**missed**'}"


def results_table(runs: list[Run]) -> str:
    """One row per target (in the order of the report with the most), one column per run; ends with a newline."""
    names: list[str] = []
    for run in sorted(runs, key=lambda run: -len(run.targets())):
        names += [name for name in run.targets() if name not in names]
    goals = {name: target["target"] for run in runs for name, target in run.targets().items()}
    lines = [
        "| target | goal | " + " | ".join(run.heading for run in runs) + " |",
        "|---|---|" + "---|" * len(runs),
    ]
    for name in names:
        cells = [_cell(run.targets().get(name)) for run in runs]
        lines.append(f"| {name} | {goals[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
