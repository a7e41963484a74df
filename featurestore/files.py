"""The cache folder: where frames live on disk, how they are published atomically and verified when read.

Layout: `<cache_dir>/<symbol>/<feature>/<params_digest>-<sha256[:16]>.parquet`. The file name carries the content
hash, so two writers of the same key with different bytes (a lease that expired, a replay after an outage) never
overwrite each other's file: the manifest row says which one is current, the loser's file is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import FeatureStoreError, InvalidName
from featurestore.keys import FrameKey, validate_digest
from featurestore.manifest.base import ManifestEntry

PARQUET_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
FALLBACK_FOLDER = "fallback"
MANIFEST_FILE = "manifest.duckdb"
MAX_REMEMBERED_FOLDERS = 4096
# Frames are small and read whole: column statistics (row-group pruning) and dictionary pages buy nothing and cost
# about a quarter of the Parquet encoding time; snappy costs next to nothing over no compression.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "snappy", "use_dictionary": False, "write_statistics": False}


class FrameUnreadable(FeatureStoreError):
    """A manifest row whose file is missing (`reason="missing"`) or does not match its size or sha256 (`corrupt`)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class StoredFrame:
    """A frame written to the cache folder: its path relative to the folder, row count, size and sha256."""

    path: str
    rows: int
    bytes: int
    sha256: str
    created: bool = True  # False when an identical file was already there (so it may be another row's)


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def fsync_dir(folder: Path | str) -> None:
    """Make a rename or a new entry in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FrameFiles:
    """Reads and writes Parquet frames under one cache folder; no path ever resolves outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._folders: dict[tuple[str, str], str] = {}  # (symbol, feature) -> resolved folder that exists

    def relative_path(self, key: FrameKey, sha256: str) -> str:
        validate_digest(sha256)
        return f"{key.symbol}/{key.feature}/{key.params_digest}-{sha256[:16]}{PARQUET_SUFFIX}"

    def resolve(self, relative: str) -> Path:
        """The absolute path of `relative`, refusing anything that would land outside the cache folder."""
        if "\0" in relative:
            raise InvalidName("a cache path must not contain NUL")
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidName(f"cache path {relative[:80]!r} resolves outside the cache folder")
        return path

    def write(self, key: FrameKey, table: pa.Table) -> StoredFrame:
        """Publish `table` atomically: temp file in the same folder, fsync, rename, fsync the folder."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **PARQUET_OPTIONS)
        data = sink.getvalue()
        sha256 = hashlib.sha256(data).hexdigest()  # of the bytes in memory: the file is never read back
        relative = self.relative_path(key, sha256)
        name = relative.rpartition("/")[2]
        try:
            return self._publish(self._folder(key), name, relative, data, table.num_rows, sha256)
        except FileNotFoundError:
            # The remembered folder was removed behind our back (cache cleared): find or create it again, once.
            self._folders.pop((key.symbol, key.feature), None)
            return self._publish(self._folder(key), name, relative, data, table.num_rows, sha256)

    def _publish(self, folder: str, name: str, relative: str, data: pa.Buffer, rows: int, sha256: str) -> StoredFrame:
        path = f"{folder}/{name}"
        temp = f"{folder}/.{name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(memoryview(data))
                handle.flush()
                os.fsync(handle.fileno())
            existed = os.path.exists(path)
            os.replace(temp, path)  # replaces a symlink at `path`, never follows it
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        fsync_dir(folder)
        return StoredFrame(relative, rows, data.size, sha256, created=not existed)

    def _folder(self, key: FrameKey) -> str:
        """The key's folder (`<root>/<symbol>/<feature>`), resolved inside the cache folder and created if missing.

        Resolving walks every component with lstat (about a third of a publish's CPU time on this machine), so a
        folder is resolved once per process and remembered; symbol and feature are validated names and the file
        name is ours, so the file's path cannot leave a folder that resolved inside the cache folder.
        """
        parts = (key.symbol, key.feature)
        folder = self._folders.get(parts)
        if folder is None:
            resolved = self.resolve(f"{key.symbol}/{key.feature}")
            self._make_folders(resolved)
            if len(self._folders) >= MAX_REMEMBERED_FOLDERS:
                self._folders.clear()
            folder = self._folders[parts] = str(resolved)
        return folder

    def read(self, entry: ManifestEntry) -> pa.Table:
        """The frame of `entry`, after checking its size and sha256; FrameUnreadable when it is missing or corrupt."""
        path = self.resolve(entry.path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FrameUnreadable(f"{entry.path} is missing", "missing") from None
        if len(data) != entry.bytes:
            raise FrameUnreadable(f"{entry.path} has {len(data)} bytes, the manifest says {entry.bytes}", "corrupt")
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise FrameUnreadable(f"{entry.path} does not match its sha256", "corrupt")
        try:
            return pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as exc:
            raise FrameUnreadable(f"{entry.path} is not readable Parquet: {exc}", "corrupt") from None

    def remove(self, relative: str) -> None:
        self.resolve(relative).unlink(missing_ok=True)

    def _make_folders(self, folder: Path) -> None:
        if folder.is_dir():
            return
        missing = [folder, *(p for p in folder.parents if p.is_relative_to(self.root) and not p.exists())]
        folder.mkdir(parents=True, exist_ok=True)
        # A new folder is durable once its parent is fsynced.
        for created in sorted(set(missing), key=lambda p: len(p.parts), reverse=True):
            fsync_dir(created.parent)
