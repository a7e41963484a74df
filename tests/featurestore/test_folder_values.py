"""featurestore.folder_values: on the embedded default the store's instruments write the multiprocess layout to
<cache>/.metrics, without touching prometheus_client's process-wide value class; the folder is emptied only when no
process is alive in it; PROMETHEUS_MULTIPROC_DIR, when set, still wins."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, Counter, values
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from featurestore import FeatureStore
from featurestore.compaction import compact
from featurestore.fleet import FleetReader
from featurestore.instruments import build
from featurestore.layout import METRICS_FOLDER
from featurestore.metrics import HITS, MISSES
from featurestore.multiprocess import SYMBOLS_FILE, process_identity
from featurestore.verify import verify
from tests.conftest import REPO


def _hits(samples: object) -> float:
    return sum(value for name, labels, value in samples if name == HITS.name)  # type: ignore[attr-defined]


def test_two_registries_of_one_process_keep_their_own_values_and_add_up_in_the_folder_as_the_client_reads_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / METRICS_FOLDER
    first, second = build(default_folder=folder), build(default_folder=folder)
    try:
        for _ in range(3):
            first.record_lookup("AAPL", hit=True)
        second.record_lookup("AAPL", hit=True)
        second.record_lookup("MSFT", hit=False)
        first.set_pool(2, 1, 0)
        assert first.registry.get_sample_value(HITS.name, {"symbol": "AAPL"}) == 3  # each registry: its own
        assert second.registry.get_sample_value(HITS.name, {"symbol": "AAPL"}) == 1
        aggregate = FleetReader(folder).read()
        assert _hits(aggregate.samples()) == 4
        assert aggregate.total(MISSES.name.removesuffix("_total")) == 1
        client = CollectorRegistry()
        MultiProcessCollector(client, path=str(folder))  # type: ignore[no-untyped-call]
        assert client.get_sample_value(HITS.name, {"symbol": "AAPL"}) == 4  # prometheus_client reads the same
        assert client.get_sample_value("pg_manifest_pool_connections_total") == 2
        identity = process_identity()
        assert identity.startswith(f"{os.getpid()}-") and (folder / f"process_{identity}.alive").exists()
    finally:
        first.close()
        second.close()
    names = sorted(path.name for path in folder.iterdir())
    # Left as an ended process: counts stay, live gauges go, and the released liveness lock lets them be compacted.
    assert f"counter_{identity}.db" in names and f"process_{identity}.alive" in names
    assert not [name for name in names if name.startswith("gauge_live")], names
    assert compact(folder) == [identity]
    names = sorted(path.name for path in folder.iterdir())
    assert not [name for name in names if identity in name], names
    assert _hits(FleetReader(folder).read().samples()) == 4


def test_other_metrics_of_the_process_keep_prometheus_clients_own_in_memory_values(tmp_path: Path) -> None:
    before = values.ValueClass
    instruments = build(default_folder=tmp_path / METRICS_FOLDER)
    try:
        other = Counter("someone_elses_total", "a metric of another library", registry=CollectorRegistry())
        other.inc()
        assert values.ValueClass is before
        assert type(other._value) is values.MutexValue
        written = {key.split('"')[1] for path in (tmp_path / METRICS_FOLDER).glob("*.db")
                   for key, *_ in MmapedDict.read_all_values_from_file(str(path))}  # type: ignore[no-untyped-call]  # fmt: skip
        assert "someone_elses" not in written and "pg_manifest_pool_connections_total" in written
    finally:
        instruments.close()


def _dead_process_files(folder: Path, pid: int) -> None:
    counter = MmapedDict(str(folder / f"counter_{pid}.db"))  # type: ignore[no-untyped-call]
    counter.write_value('["featurestore_hits", "featurestore_hits_total", {"symbol": "OLD"}, "h"]', 7.0, 0.0)  # type: ignore[no-untyped-call]  # fmt: skip
    counter.close()  # type: ignore[no-untyped-call]
    (folder / f"process_{pid}.alive").touch()
    (folder / SYMBOLS_FILE).write_text("OLD\n")


def test_the_folder_is_emptied_when_a_process_registers_with_nobody_alive_there_and_never_while_one_is(
    tmp_path: Path,
) -> None:
    folder = tmp_path / METRICS_FOLDER
    folder.mkdir()
    _dead_process_files(folder, 4_000_001)
    live = os.open(folder / "process_4000002.alive", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(live, fcntl.LOCK_SH)  # another process, alive (its scrape counts the dead one's hits)
        build(default_folder=folder).close()
        assert (folder / "counter_4000001.db").exists() and (folder / SYMBOLS_FILE).exists()
    finally:
        os.close(live)  # it ended
    instruments = build(default_folder=folder)
    try:
        assert sorted(path.name for path in folder.glob("*_4000001.db")) == []
        assert not (folder / "process_4000001.alive").exists() and not (folder / "process_4000002.alive").exists()
        assert not (folder / SYMBOLS_FILE).exists()
        instruments.record_lookup("NEW", hit=True)
        assert _hits(FleetReader(folder).read().samples()) == 1
    finally:
        instruments.close()


def test_an_unusable_default_folder_leaves_the_values_in_memory_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    with caplog.at_level(logging.WARNING, logger="featurestore.instruments"):
        instruments = build(default_folder=tmp_path / "cache" / METRICS_FOLDER)
    instruments.record_lookup("AAPL", hit=True)
    assert instruments.folder is None
    assert instruments.registry.get_sample_value(HITS.name, {"symbol": "AAPL"}) == 1
    assert "metrics stay in this process's memory" in caplog.text


def test_a_store_writes_to_the_cache_folders_metrics_only_on_the_embedded_default(tmp_path: Path) -> None:
    with FeatureStore.open(cache_dir=tmp_path / "duck") as store:
        store.get_or_compute("AAPL", "f", {}, lambda: pa.table({"a": [1]}))
        assert store.instruments.folder == (tmp_path / "duck" / METRICS_FOLDER).resolve()
        report = verify(store, min_age_s=0)
        assert report.ok and report.files == 1, report  # the frame; the metrics folder is not the cache's
    assert _hits(FleetReader(tmp_path / "duck" / METRICS_FOLDER).read().samples()) == 0  # a miss, and it closed
    assert FleetReader(tmp_path / "duck" / METRICS_FOLDER).read().total(MISSES.name.removesuffix("_total")) == 1


CHILD = """
import sys
from pathlib import Path
import pyarrow as pa
from featurestore import FeatureStore
with FeatureStore.open(cache_dir=Path(sys.argv[1])) as store:
    store.get_or_compute("AAPL", "f", {}, lambda: pa.table({"a": [1]}))
"""


def test_an_explicit_prometheus_multiproc_dir_wins_over_the_default_folder(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(explicit)}
    env = {key: value for key, value in env.items() if not key.startswith("FEATURESTORE_")}
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "cache")], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert FleetReader(explicit).read().total(MISSES.name.removesuffix("_total")) == 1
    assert not (tmp_path / "cache" / METRICS_FOLDER).exists()
