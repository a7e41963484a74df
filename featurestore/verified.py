"""The frames this process has already verified, so a repeated hit reads its file without asking the manifest.

A published frame never changes: its row names a file whose name carries its sha256, and a recompute publishes a new
file. Once this process has read a frame and checked its size and sha256 against the row (or written the file
itself, hashing the bytes it wrote), it remembers the row and the file's identity, and a later lookup of the key
skips the manifest query and the hash:

    hit ── remembered? ── open + fstat: same identity? ──▶ the table parsed at the last read, else size checked,
              │ no               │                           Parquet parsed (and kept), returned
              │                  │ identity changed: size and sha256 verified again (pass: identity refreshed)
              ▼                  │ file gone, or verification fails: forgotten
          manifest query ◀───────┘ (the row and the file are then checked as before: missing or corrupt, recomputed)

The invalidation rule, applied on every hit: the identity is (device, inode, size, mtime_ns, ctime_ns) of the open
file. Writing or truncating a file changes its mtime and ctime, and ctime cannot be set back from user space, so a
file damaged in place, replaced or restored is verified again; a missing file is forgotten and looked up in the
manifest. A row this process deletes (`FeatureStore.forget`) or replaces (a recompute) is forgotten at once. A row
deleted by another process: `verify --repair` deletes a row only when its file is missing or corrupt and deletes the
corrupt file with it, and a replay of the DuckDB fallback that loses to PostgreSQL's row deletes its own file, so both
reach this process as a missing file. A row deleted elsewhere while its intact file stays is still served here, with
the bytes that were published for the key, until the file changes or goes, or the entry leaves this bounded cache.

The parsed table is kept with the entry (a pyarrow Table is immutable, so every caller may share it): a file with the
same identity holds the same bytes, so parsing them again would give the same table. Tables are kept within a byte
budget, least recently used first out; an entry whose table left is parsed again at its next hit.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa

from featurestore.keys import FrameKey
from featurestore.manifest.base import ManifestEntry

# A remembered frame costs a few hundred bytes (its row, its path, the identity): 65,536 stay under ~30 MiB.
MAX_VERIFIED_FRAMES = 65_536
# Parsed tables kept with their entries: a worker's hot frames, not its whole cache (a bigger table is not kept); the
# store passes FEATURESTORE_KEPT_TABLES_MB.
MAX_KEPT_TABLE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class FileIdentity:
    """What tells one state of a file from another without reading it (see the module docstring)."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileIdentity:
        return cls(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@dataclass(frozen=True)
class WrittenFile:
    """A frame file as this process wrote it: its absolute path and its identity right after it got its name."""

    path: str
    identity: FileIdentity


@dataclass(frozen=True)
class VerifiedFrame:
    """A manifest row whose file was verified (size and sha256) while it had `identity`; `path` is resolved; `table`
    the frame parsed from those bytes, when kept."""

    entry: ManifestEntry
    path: str
    identity: FileIdentity
    table: pa.Table | None = None


class VerifiedFrames:
    """Per-process LRU of verified frames by key, shared by the threads of a store, with their parsed tables kept
    within `table_bytes`."""

    def __init__(self, limit: int = MAX_VERIFIED_FRAMES, table_bytes: int = MAX_KEPT_TABLE_BYTES) -> None:
        self._limit = limit
        self._table_budget = table_bytes
        self._lock = threading.Lock()
        self._frames: OrderedDict[FrameKey, VerifiedFrame] = OrderedDict()
        self._tables: OrderedDict[FrameKey, int] = OrderedDict()  # keys whose frame keeps its table -> its bytes
        self._table_bytes = 0

    def get(self, key: FrameKey) -> VerifiedFrame | None:
        with self._lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
                if key in self._tables:
                    self._tables.move_to_end(key)
            return frame

    def remember(self, key: FrameKey, frame: VerifiedFrame) -> None:
        if self._limit <= 0:
            return
        with self._lock:
            self._drop_table(key)
            if frame.table is not None:
                size = frame.table.nbytes
                if size <= self._table_budget:
                    self._tables[key] = size
                    self._table_bytes += size
                else:
                    frame = dataclasses.replace(frame, table=None)
            self._frames[key] = frame
            self._frames.move_to_end(key)
            while len(self._frames) > self._limit:
                oldest, _ = self._frames.popitem(last=False)
                self._drop_table(oldest)
            while self._table_bytes > self._table_budget:
                oldest, size = self._tables.popitem(last=False)
                self._table_bytes -= size
                self._frames[oldest] = dataclasses.replace(self._frames[oldest], table=None)

    def _drop_table(self, key: FrameKey) -> None:
        self._table_bytes -= self._tables.pop(key, 0)

    def forget(self, key: FrameKey) -> None:
        with self._lock:
            self._frames.pop(key, None)
            self._drop_table(key)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._tables.clear()
            self._table_bytes = 0

    @property
    def table_bytes(self) -> int:
        """Bytes of the parsed tables kept."""
        return self._table_bytes

    def __len__(self) -> int:
        return len(self._frames)
