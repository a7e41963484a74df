"""`promtool test rules` on every core: promtool runs one test group after another, and its groups are independent
(each starts from its own input series), so the groups of each file are dealt out to `jobs` files that run at once.
Every group runs exactly once; the result fails when any part fails, with every part's output."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

JOBS = min(2, os.cpu_count() or 1)

# The Go tools the tests start (promtool above all) run on one OS thread and collect garbage at 4x the live heap:
# several promtool processes and test workers share two cores, where Go's parallel collector only added CPU (the
# promtool tests took 27 % less CPU, at about 250 MB peak per promtool). A value already in the environment wins
# (`GOGC=100 make test` measures the default collector).
LEAN_GO_RUNTIME = {"GOMAXPROCS": "1", "GOGC": "400"}


def lean_go_runtime() -> None:
    """Set LEAN_GO_RUNTIME in this process's environment, for every Go tool it starts."""
    for name, value in LEAN_GO_RUNTIME.items():
        if not os.environ.get(name):
            os.environ[name] = value


_REPEAT = re.compile(r"x(\d+)")


def _samples(values: str) -> int:
    """How many samples a promtool `values` text expands to (`0+30x45` is 46, `1 2 _x3` is 5)."""
    return sum(int(found.group(1)) + 1 if (found := _REPEAT.search(part)) else 1 for part in values.split())


def _weight(group: dict[str, Any]) -> int:
    """A group's rough cost: every evaluation step (as many as its longest series has samples) evaluates every rule
    over every series."""
    series = group.get("input_series", [])
    steps = max((_samples(str(item.get("values", ""))) for item in series), default=1)
    return steps * (len(series) + 10)


def split(path: Path, jobs: int) -> list[dict[str, Any]]:
    """The test file at `path` as up to `jobs` files of its groups (heaviest first, each to the lightest part), with
    its rule files made absolute so the parts can live anywhere."""
    data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    data["rule_files"] = [str((path.parent / rule).resolve()) for rule in data.get("rule_files", [])]
    parts: list[list[dict[str, Any]]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for group in sorted(data.get("tests", []), key=_weight, reverse=True):
        lightest = loads.index(min(loads))
        parts[lightest].append(group)
        loads[lightest] += _weight(group)
    return [{**data, "tests": groups} for groups in parts if groups]


def run_rule_tests(promtool: str, files: Sequence[Path], jobs: int = JOBS) -> subprocess.CompletedProcess[str]:
    """`promtool test rules FILES...`, its groups spread over `jobs` promtool processes."""
    with tempfile.TemporaryDirectory(prefix="promtool-parallel-") as scratch:
        commands: list[list[str]] = [[promtool, "test", "rules"] for _ in range(jobs)]
        for index, path in enumerate(files):
            for job, part in enumerate(split(Path(path), jobs)):
                target = Path(scratch) / f"{job}" / f"{index}-{Path(path).name}"
                target.parent.mkdir(exist_ok=True)
                target.write_text(yaml.dump(part, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), width=10_000))
                commands[job].append(str(target))
        started = [command for command in commands if len(command) > 3]
        with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
            results = list(pool.map(_run, started))
    code = next((result.returncode for result in results if result.returncode != 0), 0)
    out = "".join(result.stdout for result in results)
    err = "".join(result.stderr for result in results)
    return subprocess.CompletedProcess([promtool, "test", "rules", *map(str, files)], code, out, err)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
