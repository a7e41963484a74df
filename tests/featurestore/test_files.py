"""Frames are published atomically under the cache folder, verified when read, and never land outside it."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from featurestore.errors import InvalidName
from featurestore.files import FolderHandles, FrameFiles, FrameUnreadable, links_unnamed_files
from featurestore.keys import FrameKey
from featurestore.layout import is_temp_name
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
    assert stored.path.startswith(f"frames/AAPL/returns/{KEY.params_digest}-") and stored.path.endswith(".parquet")
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
    names = [p.name for p in (tmp_path / "frames" / "AAPL" / "returns").iterdir()]
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
    (files.root / "frames").mkdir()
    (files.root / "frames" / "EVIL").symlink_to(outside)
    with pytest.raises(InvalidName):
        files.write(FrameKey.of("EVIL", "returns", {}), frame())
    assert list(outside.iterdir()) == []


def _open_fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


def test_a_folder_removed_behind_the_store_is_created_again_and_its_old_descriptor_closed(tmp_path: Path) -> None:
    before = _open_fds()
    files = FrameFiles(tmp_path)
    files.write(KEY, frame())
    shutil.rmtree(tmp_path / "frames" / "AAPL")
    stored = files.write(KEY, frame(2.0))
    assert (tmp_path / stored.path).is_file() and stored.created
    assert len(_open_fds() - before) == 1  # the new folder's descriptor; the removed folder's one is closed
    files.close()
    assert _open_fds() - before == set()


def test_a_folder_descriptor_is_closed_on_eviction_only_once_no_publish_uses_it(tmp_path: Path) -> None:
    folders = [tmp_path / name for name in "abc"]
    for folder in folders:
        folder.mkdir()
    before = _open_fds()
    handles = FolderHandles(limit=1)
    with handles.use(str(folders[0])) as held:
        for other in folders[1:]:
            with handles.use(str(other)):
                pass
        # Beyond the limit, but the first folder's descriptor is in use: it stays open and still names the folder.
        assert os.path.samestat(os.fstat(held), folders[0].stat())
    assert len(_open_fds() - before) == 1  # released: only `limit` descriptors stay open
    handles.close()
    assert _open_fds() - before == set()


def test_publishes_from_many_threads_each_land_whole_while_folders_are_evicted(tmp_path: Path) -> None:
    files = FrameFiles(tmp_path)
    files._handles = FolderHandles(limit=2)  # far fewer than the folders used, so eviction runs constantly
    keys = [FrameKey.of(f"S{n % 7}", "returns", {"n": n}) for n in range(280)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        stored = list(pool.map(lambda key: (key, files.write(key, frame(float(key.params_digest[0] == "a")))), keys))
    for key, frame_file in stored:
        entry = ManifestEntry(
            key.symbol, key.feature, key.params_digest, 1, frame_file.path, frame_file.rows, frame_file.bytes,
            frame_file.sha256, datetime.now(UTC),
        )  # fmt: skip
        assert files.read(entry).num_rows == 3
    files.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="O_TMPFILE and /proc/self/fd are Linux's")
def test_on_linux_a_frame_is_written_unnamed_and_linked_under_its_name_without_a_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert links_unnamed_files(tmp_path) and list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    files = FrameFiles(tmp_path)
    monkeypatch.setattr(os, "replace", None)  # the temp file + rename path would fail: the link path must be taken
    entry = entry_for(files, frame())
    assert files.read(entry).equals(frame())
    assert [p.name for p in (tmp_path / "frames" / "AAPL" / "returns").iterdir()] == [Path(entry.path).name]


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed file and link", "temp file and rename"])
def test_republishing_the_same_bytes_replaces_a_corrupt_file_of_that_name(tmp_path: Path, unnamed: bool) -> None:
    files = FrameFiles(tmp_path)
    files._unnamed = unnamed and files._unnamed
    entry = entry_for(files, frame())
    path = tmp_path / entry.path
    path.write_bytes(b"junk")
    again = files.write(KEY, frame())
    assert again.path == entry.path and not again.created
    assert files.read(entry).equals(frame())
    assert not any(is_temp_name(p.name) for p in path.parent.iterdir())


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed file and link", "temp file and rename"])
def test_a_publish_that_fails_before_its_file_is_durable_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    files = FrameFiles(tmp_path)
    files._unnamed = unnamed and files._unnamed
    files.write(FrameKey.of("AAPL", "returns", {"other": 1}), frame())  # the folder exists
    before = sorted(p.name for p in (tmp_path / "frames" / "AAPL" / "returns").iterdir())

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        files.write(KEY, frame())
    assert sorted(p.name for p in (tmp_path / "frames" / "AAPL" / "returns").iterdir()) == before
