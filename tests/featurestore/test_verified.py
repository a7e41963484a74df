"""The frames a process has verified: hits without a manifest query, and the invalidation rule of verified.py (a file
deleted, damaged in place, replaced or touched; a key forgotten; a row deleted by verify --repair; the bound)."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from featurestore import FeatureStore, files
from featurestore.files import FrameFiles
from featurestore.instruments import build
from featurestore.keys import FrameKey
from featurestore.manifest.base import ManifestEntry
from featurestore.manifest.memory import MemoryManifest
from featurestore.settings import FeatureStoreSettings
from featurestore.verified import FileIdentity, VerifiedFrame, VerifiedFrames
from featurestore.verify import verify
from tests.featurestore.test_store import PARAMS, Counting, frame, make_store


class CountingManifest(MemoryManifest):
    """The in-memory manifest, counting the lookups that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, symbol: str, feature: str, params_digest: str) -> ManifestEntry | None:
        self.gets += 1
        return super().get(symbol, feature, params_digest)


class CountingHash:
    """hashlib.sha256 as files.py calls it, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def sha256(self, data: Any) -> Any:
        self.calls += 1
        return hashlib.sha256(data)


def published(tmp_path: Path, registry: CollectorRegistry) -> tuple[FeatureStore, CountingManifest, Path]:
    """A store that published AAPL/returns once, its manifest, and the frame's file."""
    manifest = CountingManifest()
    store = make_store(tmp_path, registry, manifest)
    store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(1.0)))
    [entry] = store.entries()
    manifest.gets = 0
    return store, manifest, tmp_path / entry.path


def test_a_published_frame_is_served_again_without_asking_the_manifest_or_hashing_it(
    tmp_path: Path, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, manifest, _path = published(tmp_path, registry)
    hashing = CountingHash()
    monkeypatch.setattr(files, "hashlib", hashing)
    compute = Counting(frame(9.0))
    for _ in range(3):
        assert store.get_or_compute("AAPL", "returns", PARAMS, compute).equals(frame(1.0))
    assert compute.calls == 0 and manifest.gets == 0 and hashing.calls == 0
    assert registry.get_sample_value("featurestore_hits_total", {"symbol": "AAPL"}) == 3


def other_frame_of_the_same_size(data: bytes) -> bytes:
    """Valid Parquet of another frame with as many bytes as `data`: only the sha256 tells them apart."""
    for value in (2.0, 4.0, 8.0, 16.0, 0.5, 0.25):  # snappy sizes vary by a byte or two with the values
        sink = pa.BufferOutputStream()
        pq.write_table(frame(value), sink, **files.PARQUET_OPTIONS)
        other: bytes = sink.getvalue().to_pybytes()
        if len(other) == len(data) and other != data:
            return other
    raise AssertionError("no other frame of the same size")


class CountingParquet:
    """pyarrow.parquet as files.py calls it, counting the frames parsed."""

    def __init__(self) -> None:
        self.parsed = 0

    def ParquetFile(self, source: Any) -> Any:
        self.parsed += 1
        return pq.ParquetFile(source)


def test_a_frame_hit_again_is_not_parsed_again_while_its_file_keeps_its_identity(
    tmp_path: Path, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, manifest, _path = published(tmp_path, registry)
    parquet = CountingParquet()
    monkeypatch.setattr(files, "pq", parquet)
    first = store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0)))
    again = [store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0))) for _ in range(3)]
    assert first.equals(frame(1.0)) and all(table is first for table in again)
    assert parquet.parsed == 1 and manifest.gets == 0


def test_with_no_memory_for_kept_tables_every_hit_parses_its_file_again(
    tmp_path: Path, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path, kept_tables_mb=0)
    store = FeatureStore(MemoryManifest(), FrameFiles(tmp_path), settings=settings, instruments=build(registry))
    store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(1.0)))
    parquet = CountingParquet()
    monkeypatch.setattr(files, "pq", parquet)
    for _ in range(3):
        assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0))).equals(frame(1.0))
    assert parquet.parsed == 3


@pytest.mark.parametrize("parsed_before", [False, True], ids=["before any hit", "after a hit kept its table"])
@pytest.mark.parametrize(
    "damage", ["deleted", "truncated", "rewritten in place, mtime set back", "replaced by another file"]
)
def test_a_hit_without_the_manifest_still_detects_a_damaged_or_deleted_file_and_recomputes(
    tmp_path: Path, registry: CollectorRegistry, damage: str, parsed_before: bool
) -> None:
    store, manifest, path = published(tmp_path, registry)
    if parsed_before:
        assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0))).equals(frame(1.0))
    before = path.stat()
    data = path.read_bytes()
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(data[:-7])
    elif damage == "rewritten in place, mtime set back":
        with path.open("r+b") as handle:  # the same inode, size and mtime: only ctime tells
            handle.write(other_frame_of_the_same_size(data))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        other = path.with_name("other")
        other.write_bytes(other_frame_of_the_same_size(data))
        os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
        other.replace(path)
    compute = Counting(frame(5.0))
    assert store.get_or_compute("AAPL", "returns", PARAMS, compute).equals(frame(5.0))
    assert compute.calls == 1 and manifest.gets >= 1
    reason = "missing" if damage == "deleted" else "corrupt"
    assert registry.get_sample_value("featurestore_recomputed_total", {"reason": reason}) == 1
    assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0))).equals(frame(5.0))


def test_a_file_touched_but_intact_is_hashed_again_once_and_still_served_without_the_manifest(
    tmp_path: Path, registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, manifest, path = published(tmp_path, registry)
    hashing = CountingHash()
    monkeypatch.setattr(files, "hashlib", hashing)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    compute = Counting(frame(9.0))
    for _ in range(3):
        assert store.get_or_compute("AAPL", "returns", PARAMS, compute).equals(frame(1.0))
    assert hashing.calls == 1  # verified again after the change, then remembered with the new identity
    assert compute.calls == 0 and manifest.gets == 0


def test_a_forgotten_key_asks_the_manifest_again(tmp_path: Path, registry: CollectorRegistry) -> None:
    store, manifest, _path = published(tmp_path, registry)
    store.forget("AAPL", "returns", PARAMS)
    assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0))).equals(frame(1.0))
    assert manifest.gets == 1
    store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0)))
    assert manifest.gets == 1  # verified by that read: remembered again


def test_a_row_that_verify_repair_deleted_for_its_corrupt_file_is_recomputed_here(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    store, _manifest, path = published(tmp_path, registry)
    path.write_bytes(path.read_bytes()[:-7] + b"garbage")
    with make_store(tmp_path, CollectorRegistry(), store.manifest) as repairer:  # type: ignore[arg-type]
        assert verify(repairer, repair=True, min_age_s=0).corrupt_files
    assert not path.exists() and not list(store.entries())
    compute = Counting(frame(5.0))
    assert store.get_or_compute("AAPL", "returns", PARAMS, compute).equals(frame(5.0))
    assert compute.calls == 1


def test_a_key_published_first_by_another_writer_is_served_with_that_writers_frame(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    manifest = CountingManifest()
    store = make_store(tmp_path, registry, manifest)
    store.publish("AAPL", "returns", PARAMS, frame(1.0))
    store.forget("AAPL", "returns", PARAMS)
    outcome = store.publish("AAPL", "returns", PARAMS, frame(2.0))  # loses: the first row stays
    assert not outcome.inserted
    assert store.get_or_compute("AAPL", "returns", PARAMS, Counting(frame(9.0))).equals(frame(1.0))
    assert manifest.gets == 1


def test_the_verified_frames_keep_the_most_recently_used_within_their_bound() -> None:
    frames = VerifiedFrames(limit=2)
    keys = [FrameKey.of("AAPL", "returns", {"n": n}) for n in range(3)]
    identity = FileIdentity(1, 2, 3, 4, 5)
    for key in keys[:2]:
        entry = ManifestEntry(key.symbol, key.feature, key.params_digest, 1, "p", 1, 3, "0" * 64, datetime.now(UTC))
        frames.remember(key, VerifiedFrame(entry, "/p", identity))
    assert frames.get(keys[0]) is not None  # now the most recent
    frames.remember(keys[2], VerifiedFrame(frames.get(keys[0]).entry, "/p", identity))  # type: ignore[union-attr]
    assert frames.get(keys[1]) is None and frames.get(keys[0]) is not None and len(frames) == 2


def test_the_verified_frames_keep_parsed_tables_within_their_byte_budget_most_recent_first() -> None:
    table = frame(1.0)
    frames = VerifiedFrames(table_bytes=2 * table.nbytes)
    keys = [FrameKey.of("AAPL", "returns", {"n": n}) for n in range(3)]
    identity = FileIdentity(1, 2, 3, 4, 5)
    for key in keys:
        entry = ManifestEntry(key.symbol, key.feature, key.params_digest, 1, "p", 1, 3, "0" * 64, datetime.now(UTC))
        frames.remember(key, VerifiedFrame(entry, "/p", identity, table))
        frames.get(keys[0])  # the first stays the most recently used
    kept = [frames.get(key) for key in keys]
    assert [frame is not None and frame.table is not None for frame in kept] == [True, False, True]
    assert len(frames) == 3 and frames.table_bytes == 2 * table.nbytes
    frames.forget(keys[0])
    assert frames.table_bytes == table.nbytes
