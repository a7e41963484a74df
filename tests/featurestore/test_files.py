"""Frames are published atomically under the cache folder, verified when read, and never land outside it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from featurestore.errors import InvalidName
from featurestore.files import FrameFiles, FrameUnreadable, is_temp_name
from featurestore.keys import FrameKey
from featurestore.manifest.base import ManifestEntry

KEY = FrameKey.of("AAPL", "returns", {"window": 20})


def frame(value: float = 1.0) -> pa.Table:
    return pa.table({"ts": pa.array([1, 2, 3], type=pa.int64()), "value": [value, value * 2, value * 3]})


def entry_for(files: FrameFiles, table: pa.Table) -> ManifestEntry:
    stored = files.write(KEY, table)
    return ManifestEntry(
        KEY.symbol, KEY.feature, KEY.params_digest, 1, stored.path, stored.rows, stored.bytes, stored.sha256,
        datetime.now(UTC),
    )  # fmt: skip


def test_a_written_frame_reads_back_equal_and_its_checksum_is_the_file_bytes(tmp_path: Path) -> None:
    files = FrameFiles(tmp_path)
    table = frame()
    stored = files.write(KEY, table)
    path = tmp_path / stored.path
    assert stored.path.startswith(f"AAPL/returns/{KEY.params_digest}-") and stored.path.endswith(".parquet")
    assert stored.rows == 3 and stored.bytes == path.stat().st_size
    assert stored.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stored.created
    entry = ManifestEntry(
        "AAPL", "returns", KEY.params_digest, 1, stored.path, 3, stored.bytes, stored.sha256, datetime.now(UTC)
    )
    assert files.read(entry).equals(table)


def test_publishing_leaves_no_temp_file_and_the_same_bytes_twice_reuse_one_file(tmp_path: Path) -> None:
    files = FrameFiles(tmp_path)
    first = files.write(KEY, frame())
    second = files.write(KEY, frame())
    other = files.write(KEY, frame(2.0))
    names = [p.name for p in (tmp_path / "AAPL" / "returns").iterdir()]
    assert not any(is_temp_name(name) for name in names)
    assert first.path == second.path and not second.created
    assert other.path != first.path
    assert sorted(names) == sorted({Path(first.path).name, Path(other.path).name})


def test_a_missing_file_is_reported_as_missing(tmp_path: Path) -> None:
    files = FrameFiles(tmp_path)
    entry = entry_for(files, frame())
    (tmp_path / entry.path).unlink()
    with pytest.raises(FrameUnreadable) as caught:
        files.read(entry)
    assert caught.value.reason == "missing"


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "append"])
def test_a_damaged_file_is_reported_as_corrupt(tmp_path: Path, damage: str) -> None:
    files = FrameFiles(tmp_path)
    entry = entry_for(files, frame())
    path = tmp_path / entry.path
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[:-10]
    else:
        data += b"junk"
    path.write_bytes(bytes(data))
    with pytest.raises(FrameUnreadable) as caught:
        files.read(entry)
    assert caught.value.reason == "corrupt"


@pytest.mark.parametrize("relative", ["../outside.parquet", "AAPL/../../x", "/etc/passwd", "", "a\0b"])
def test_a_path_that_resolves_outside_the_cache_folder_is_refused(tmp_path: Path, relative: str) -> None:
    files = FrameFiles(tmp_path / "cache")
    with pytest.raises(InvalidName):
        files.resolve(relative)


def test_a_symlinked_folder_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    files = FrameFiles(tmp_path / "cache")
    (files.root / "EVIL").symlink_to(outside)
    with pytest.raises(InvalidName):
        files.write(FrameKey.of("EVIL", "returns", {}), frame())
    assert list(outside.iterdir()) == []
