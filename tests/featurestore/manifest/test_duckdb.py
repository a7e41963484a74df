"""The DuckDB manifest: per-symbol versions, idempotent inserts, thread-safe writes, and a clear error naming the
holder's PID when a second process opens the file."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from featurestore import FeatureStore, ManifestLocked
from featurestore.keys import params_digest
from featurestore.manifest.base import ManifestEntry
from featurestore.manifest.duckdb import DuckDBManifest
from featurestore.settings import FeatureStoreSettings
from tests.conftest import REPO


def entry(symbol: str = "AAPL", n: int = 0, path: str | None = None) -> ManifestEntry:
    digest = params_digest({"n": n})
    return ManifestEntry(
        symbol, "returns", digest, 0, path or f"{symbol}/returns/{digest}.parquet", 10, 100, "0" * 64, datetime.now(UTC)
    )


@pytest.fixture
def manifest(tmp_path: Path) -> Iterator[DuckDBManifest]:
    db = DuckDBManifest(tmp_path / "manifest.duckdb")
    yield db
    db.close()


def test_versions_count_up_per_symbol_and_an_existing_key_is_kept(manifest: DuckDBManifest) -> None:
    outcomes = [manifest.insert(entry("AAPL", 0)), manifest.insert(entry("AAPL", 1)), manifest.insert(entry("MSFT", 0))]
    again = manifest.insert(entry("AAPL", 0, path="other.parquet"))
    assert [(o.entry.symbol, o.entry.version, o.inserted) for o in outcomes] == [
        ("AAPL", 1, True), ("AAPL", 2, True), ("MSFT", 1, True)
    ]  # fmt: skip
    assert not again.inserted and again.entry == outcomes[0].entry
    assert manifest.get("AAPL", "returns", params_digest({"n": 0})) == outcomes[0].entry
    assert manifest.count_duplicates() == 0
    assert [e.version for e in manifest.entries("AAPL")] == [1, 2]


def test_replace_swaps_the_row_of_a_key_for_a_new_version(manifest: DuckDBManifest) -> None:
    manifest.insert(entry("AAPL", 0))
    replaced = manifest.insert(entry("AAPL", 0, path="new.parquet"), replace=True)
    assert replaced.inserted and replaced.entry.path == "new.parquet" and replaced.entry.version == 2
    assert [e.path for e in manifest.entries()] == ["new.parquet"]


def test_sixteen_threads_inserting_one_symbol_get_every_version_once(manifest: DuckDBManifest) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        for n in range(20):
            try:
                manifest.insert(entry("HOT", worker * 100 + n))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(e.version for e in manifest.entries("HOT")) == list(range(1, 321))


@contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    script = (
        "import sys; from pathlib import Path; from featurestore.manifest.duckdb import DuckDBManifest; "
        f"m = DuckDBManifest(Path({str(path)!r})); print('ready', flush=True); sys.stdin.readline(); m.close()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
            yield holder
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(30)


def test_a_second_process_gets_an_error_naming_the_holders_pid_and_postgresql(tmp_path: Path) -> None:
    path = tmp_path / "manifest.duckdb"
    with held_by_another_process(path) as holder:
        with pytest.raises(ManifestLocked) as caught:
            DuckDBManifest(path)
        settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)
        with pytest.raises(ManifestLocked) as via_store:
            FeatureStore.open(settings=settings)
    for error in (caught.value, via_store.value):
        assert error.pid == holder.pid
        assert f"PID {holder.pid}" in str(error) and "PostgreSQL" in str(error) and "FEATURESTORE_PG_DSN" in str(error)
    DuckDBManifest(path).close()  # free again once the holder closed it


def test_opening_the_same_file_twice_in_one_process_is_refused(manifest: DuckDBManifest) -> None:
    with pytest.raises(ManifestLocked, match="already open in this process"):
        DuckDBManifest(manifest.path)
    manifest.close()
    DuckDBManifest(manifest.path).close()


def test_health_reports_the_path_and_entry_count(manifest: DuckDBManifest) -> None:
    manifest.insert(entry())
    health = manifest.health()
    assert health.healthy and health.details == {"path": str(manifest.path), "entries": 1}
