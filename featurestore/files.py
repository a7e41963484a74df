"""The cache folder: where frames live on disk, how they are published atomically and verified when read.

Layout: `<cache_dir>/<symbol>/<feature>/<params_digest>-<sha256[:16]>.parquet`. The file name carries the content
hash, so two writers of the same key with different bytes (a lease that expired, a replay after an outage) never
overwrite each other's file: the manifest row says which one is current, the loser's file is removed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import FeatureStoreError, InvalidName
from featurestore.keys import FrameKey, validate_digest
from featurestore.manifest.base import ManifestEntry

PARQUET_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
FALLBACK_FOLDER = "fallback"
MANIFEST_FILE = "manifest.duckdb"


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


def fsync_dir(folder: Path) -> None:
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
        pq.write_table(table, sink)
        data = sink.getvalue()
        sha256 = hashlib.sha256(data).hexdigest()
        relative = self.relative_path(key, sha256)
        path = self.resolve(relative)
        self._make_folders(path.parent)
        temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(memoryview(data))
                handle.flush()
                os.fsync(handle.fileno())
            existed = path.exists()
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
        return StoredFrame(relative, table.num_rows, data.size, sha256, created=not existed)

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
