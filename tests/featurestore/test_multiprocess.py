"""featurestore.multiprocess: the folder is checked before anything is written, the symbol cap bounds the union of
every process's symbols, and only the live gauges of processes that ended are removed."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, values

from featurestore import FeatureStore
from featurestore.compaction import compact
from featurestore.errors import MetricsFolderError
from featurestore.fleet import FleetReader
from featurestore.instruments import SymbolLabels, build
from featurestore.metrics import OTHER_SYMBOL
from featurestore.multiprocess import ENV, metrics_folder
from featurestore.settings import FeatureStoreSettings
from tests.conftest import REPO, unavailable
from tests.featurestore.test_fleet import as_process, folder  # noqa: F401  (the fixture)

CHILD = """
import sys
from featurestore.instruments import SymbolLabels, build
instruments = build()
instruments.set_pool(2, 2, 0)
instruments.record_lookup("AAPL", hit=True)
print("ready", flush=True)
sys.stdin.read()
"""


def test_the_symbol_cap_bounds_the_union_of_64_processes_each_seeing_1000_symbols(folder: Path) -> None:  # noqa: F811
    for pid in range(1000, 1064):
        instruments = as_process(pid)()
        for index in range(1000):
            instruments.record_lookup(f"P{pid}_S{index}", hit=False)
    aggregate = FleetReader(folder).read()
    symbols = {labels["symbol"] for name, labels, _ in aggregate.samples() if name == "featurestore_misses_total"}
    assert len(symbols) == 101 and OTHER_SYMBOL in symbols  # the default cap of 100, and the fold
    assert aggregate.total("featurestore_misses") == 64_000  # folded, not lost
    assert aggregate.total("featurestore_symbol_labels_folded") == 64_000 - 100


def test_a_folder_that_is_missing_or_set_after_prometheus_client_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    with pytest.raises(MetricsFolderError, match="set after prometheus_client was imported"):
        build(CollectorRegistry())  # this test process imported prometheus_client without the variable
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    monkeypatch.setenv(ENV, str(tmp_path / "missing"))
    with pytest.raises(MetricsFolderError, match="is not a directory: whoever starts the workers creates it"):
        metrics_folder()
    monkeypatch.delenv(ENV)
    with pytest.raises(MetricsFolderError, match="unset after prometheus_client was imported"):
        metrics_folder()


def test_a_process_killed_with_sigkill_loses_its_live_gauges_and_keeps_its_counts_and_a_live_one_keeps_all(
    tmp_path: Path,
) -> None:
    env = {**os.environ, ENV: str(tmp_path)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        killed, alive = children
        reader = FleetReader(tmp_path)
        assert compact(tmp_path) == []
        before = reader.read()
        assert (before.total("pg_manifest_pool_connections_active"), before.total("featurestore_hits")) == (4.0, 2.0)

        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        (killed_identity,) = compact(tmp_path)
        assert killed_identity.startswith(f"{killed.pid}-")
        assert compact(tmp_path) == []
        after = reader.read()
        assert list(tmp_path.glob(f"*_{killed.pid}-*")) == []  # live gauges gone, counts compacted, lock file gone
        assert list(tmp_path.glob(f"gauge_live*_{alive.pid}-*.db")) != []
        assert after.total("pg_manifest_pool_connections_active") == 2.0  # the live process's only
        assert after.total("featurestore_hits") == 2.0  # the killed process's count stays
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()


def test_the_pool_gauges_sum_capacity_and_use_and_the_busiest_pool_shows_alone(folder: Path) -> None:  # noqa: F811
    for pid in (301, 302):
        as_process(pid)().set_pool(2, 1, 0)  # two pools, each half lent out
    half = FleetReader(folder).read()
    assert (half.total("pg_manifest_pool_connections_total"), half.total("pg_manifest_pool_connections_active")) == (
        4.0,
        2.0,
    )
    assert half.total("pg_manifest_pool_max_utilization_ratio") == 0.5  # not 1: no pool is exhausted
    as_process(303)().set_pool(2, 2, 0)
    assert FleetReader(folder).read().total("pg_manifest_pool_max_utilization_ratio") == 1.0


def test_a_shared_symbol_list_that_cannot_be_read_folds_the_observation_instead_of_failing_the_caller() -> None:
    def unreadable(symbol: str) -> bool:
        raise PermissionError(f"cannot open the list for {symbol}")

    labels = SymbolLabels(10, admit=unreadable)
    assert labels("AAPL") == OTHER_SYMBOL
    calls: list[str] = []
    labels._admit = lambda symbol: calls.append(symbol) or True
    assert labels("AAPL") == "AAPL"  # not marked full: the next symbol asks again


def test_a_folded_symbol_is_logged_once_with_why(caplog: pytest.LogCaptureFixture) -> None:
    labels = SymbolLabels(1)
    with caplog.at_level(logging.WARNING, logger="featurestore.instruments"):
        assert [labels(symbol) for symbol in ("AAPL", "MSFT", "IBM", "MSFT")] == ["AAPL", *[OTHER_SYMBOL] * 3]
    assert [record.getMessage() for record in caplog.records] == [
        f"symbol 'MSFT' and every later new symbol are counted under {OTHER_SYMBOL!r}: the symbol label cap of 1 is "
        "reached (FEATURESTORE_SYMBOL_LABEL_CAP)"
    ]
    caplog.clear()

    def unreadable(symbol: str) -> bool:
        raise PermissionError(13, "Permission denied", "symbol_labels.txt")

    shared = SymbolLabels(10, admit=unreadable)
    with caplog.at_level(logging.WARNING, logger="featurestore.instruments"):
        assert shared("AAPL") == shared("MSFT") == OTHER_SYMBOL
    (message,) = [record.getMessage() for record in caplog.records]
    assert "the shared symbol list cannot be used" in message and "Permission denied" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a worker as another user")
def test_a_folder_shared_by_two_unix_users_of_one_group_serves_both_users_symbols_and_compacts_their_files() -> None:
    group = grp.getgrnam("users").gr_gid
    other_user = pwd.getpwnam("nobody").pw_uid
    with tempfile.TemporaryDirectory(prefix="metrics-users-") as name:
        folder = Path(name)
        os.chown(folder, 0, group)
        os.chmod(folder, 0o2775)  # group-writable, and new files take the folder's group (setgid)
        # The other user cannot enter root's home, where this interpreter may live: the system's same minor version,
        # with this environment's packages on its path.
        interpreter = shutil.which(f"python{sys.version_info[0]}.{sys.version_info[1]}", path="/usr/bin:/usr/local/bin")
        if interpreter is None:
            unavailable("no system python of this minor version for the other user")
        assert interpreter is not None
        site = sysconfig.get_paths()["purelib"]
        env = {**os.environ, ENV: str(folder), "HOME": "/tmp", "PYTHONPATH": os.pathsep.join([str(REPO), site])}
        command = ["-m", "tests.reliability.metrics_writers", "lookups"]
        first = subprocess.Popen(
            [sys.executable, *command, "3", "AAPL"], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        second = subprocess.Popen(
            [interpreter, *command, "4", "MSFT"], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            user=other_user, group=group, umask=0o022,
        )  # fmt: skip
        try:
            for worker in (first, second):
                assert worker.stdout is not None and worker.stdout.readline().strip()
                assert worker.stdin is not None
                worker.stdin.close()
                assert worker.wait(timeout=60) == 0
            shared = {path.name: path.stat() for path in folder.iterdir() if not path.name.endswith((".db", ".alive"))}
            assert {name: stat.S_IMODE(info.st_mode) for name, info in shared.items()} == {"symbol_labels.txt": 0o664}
            assert {info.st_gid for info in shared.values()} == {group}
            owners = {path.stat().st_uid for path in folder.glob("counter_*.db")}
            assert owners == {0, other_user}
            assert compact(folder) != []  # the service may remove both users' files: the folder is group-writable
            aggregate = FleetReader(folder).read()
            hits = {
                labels["symbol"]: value
                for name, labels, value in aggregate.samples()
                if name.startswith("featurestore_hits")
            }
            assert hits == {"AAPL": 3.0, "MSFT": 4.0}  # the second user's symbol is admitted, not folded
            assert list(folder.glob("counter_*-*.db")) == [] and aggregate.skipped == {}
        finally:
            for worker in (first, second):
                if worker.poll() is None:
                    worker.kill()
                worker.wait(timeout=60)
                if worker.stdout is not None:
                    worker.stdout.close()


@pytest.mark.postgres
def test_a_store_closed_in_a_process_that_lives_on_takes_its_pool_out_of_the_fleets_gauges_at_once(
    folder: Path,  # noqa: F811
    pg_schema_dsn: str,
    tmp_path: Path,
) -> None:
    settings = FeatureStoreSettings(pool_sample_interval_s=0.05, cache_dir=tmp_path / "cache")
    store = FeatureStore.open(pg_schema_dsn, settings=settings, instruments=build(CollectorRegistry()))
    reader = FleetReader(folder)
    deadline = time.monotonic() + 30
    while reader.read().total("pg_manifest_pool_connections_total") == 0:
        assert time.monotonic() < deadline, "the pool gauges were never sampled"
        time.sleep(0.05)
    store.close()
    aggregate = reader.read()
    assert aggregate.total("pg_manifest_pool_connections_total") == 0
    assert aggregate.total("pg_manifest_pool_max_utilization_ratio") == 0
