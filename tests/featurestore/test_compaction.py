"""featurestore.compaction: ended processes' files fold into one file per kind, and a crash between any two steps
(the process simply stops, as under SIGKILL) loses nothing and counts nothing twice, at the next read and after the
next compaction."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import Counter, Gauge, Histogram, values

from featurestore import compaction, value_files
from featurestore.fleet import Aggregate, FleetReader
from featurestore.multiprocess import ENV, alive_file, value_class

ENDED = {"11-aaaa": 3, "12-bbbb": 5}
LIVE = "13-cccc"
# A compaction of the two ended processes: the last step once per process.
STEPS = [*compaction.STEPS[:-1], "alive_removed", "alive_removed"]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(ENV, str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    for identity, hits in {**ENDED, LIVE: 7}.items():
        values.ValueClass = value_class(lambda identity=identity: identity)
        counter = Counter("featurestore_hits", "Cache hits", ["symbol"], registry=None)
        histogram = Histogram("lock_wait_ms", "Lock wait", buckets=(1.0, 10.0), registry=None)
        gauge = Gauge("pool_active", "Lent out", registry=None, multiprocess_mode="livesum")
        counter.labels(identity).inc(hits)
        counter.labels("SHARED").inc(hits)
        for _ in range(hits):
            histogram.observe(5.0)
        gauge.set(1)
        values.ValueClass.close_all_files()
        alive_file(tmp_path, identity).touch()
    live = os.open(alive_file(tmp_path, LIVE), os.O_RDONLY)
    fcntl.flock(live, fcntl.LOCK_SH)  # a process still running
    yield tmp_path
    os.close(live)


def _check_exact(aggregate: Aggregate) -> None:
    samples = {(name, tuple(sorted(labels.items()))): value for name, labels, value in aggregate.samples()}
    total = sum(ENDED.values()) + 7
    assert samples[("featurestore_hits_total", (("symbol", "SHARED"),))] == total
    for identity, hits in {**ENDED, LIVE: 7}.items():
        assert samples[("featurestore_hits_total", (("symbol", identity),))] == hits
    assert samples[("lock_wait_ms_count", ())] == total
    assert samples[("lock_wait_ms_bucket", (("le", "10.0"),))] == total
    assert samples[("lock_wait_ms_sum", ())] == 5.0 * total


def _folder_after_compaction(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.endswith(".lock"))


def test_ended_processes_fold_into_one_file_per_kind_and_a_live_one_is_left_alone(folder: Path) -> None:
    reader = FleetReader(folder)
    _check_exact(reader.read())
    steps: list[str] = []
    assert compaction.compact(folder, steps.append) == sorted(ENDED)
    assert steps == STEPS
    assert _folder_after_compaction(folder) == [
        "counter_13-cccc.db",
        "counter_compacted.db",
        "gauge_livesum_13-cccc.db",
        "histogram_13-cccc.db",
        "histogram_compacted.db",
        "process_13-cccc.alive",
    ]
    aggregate = reader.read()
    _check_exact(aggregate)
    assert aggregate.total("pool_active") == 1.0  # the live process's gauge only
    assert compaction.compact(folder) == []


@pytest.mark.parametrize("crash_at", range(1, len(STEPS) + 1))
def test_a_compaction_killed_after_any_step_loses_and_doubles_nothing(folder: Path, crash_at: int) -> None:
    calls: list[str] = []

    def crash(step: str) -> None:
        calls.append(step)
        if len(calls) == crash_at:
            os._exit(3)  # no cleanup, no unwinding: the kernel releases the locks, as for SIGKILL

    child = os.fork()
    if child == 0:
        try:
            compaction.compact(folder, crash)
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    reader = FleetReader(folder)
    _check_exact(reader.read())  # what the crash left, read as it is
    compaction.compact(folder)
    _check_exact(reader.read())
    assert [name for name in _folder_after_compaction(folder) if LIVE not in name] == [
        "counter_compacted.db",
        "histogram_compacted.db",
    ]
    _, absorbed = value_files.read_values((folder / "counter_compacted.db").read_bytes())
    assert absorbed <= set(ENDED)


def test_a_source_file_that_cannot_be_parsed_is_left_in_place_and_the_rest_is_compacted(folder: Path) -> None:
    (folder / "counter_11-aaaa.db").write_bytes(b"\xff" * 64)
    compaction.compact(folder)
    assert (folder / "counter_11-aaaa.db").exists()
    aggregate = FleetReader(folder).read()
    assert list(aggregate.skipped) == ["counter_11-aaaa.db"]
    assert aggregate.total("featurestore_hits") == 2 * (5 + 7)  # the rest, compacted or live
