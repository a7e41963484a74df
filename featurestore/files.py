"""The cache folder's frames: how they are published atomically, verified when read and removed.

Where they live is featurestore/layout.py: `<cache_dir>/frames/<symbol>/<feature>/<params_digest>-<sha256[:16]>
.parquet`. The file name carries the content hash, so two writers of the same key with different bytes (a lease that
expired, a replay after an outage) never overwrite each other's file: the manifest row says which one is current, the
loser's file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import FeatureStoreError, InvalidName
from featurestore.keys import FrameKey, validate_digest
from featurestore.layout import TEMP_SUFFIX, frame_folder, is_frame_path, paths_of
from featurestore.manifest.base import ManifestEntry
from featurestore.verified import FileIdentity, VerifiedFrame, WrittenFile

PROC_FD = "/proc/self/fd"  # names an open file, so linkat can give an unnamed one a name
MAX_REMEMBERED_FOLDERS = 4096
# Folder descriptors held open for publishing: each saves an open/close and a path walk per publish (about a fifth of
# a publish's file-system CPU on this machine); bounded well under the default 1,024 open files.
MAX_OPEN_FOLDERS = 128
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
    written: WrittenFile | None = None  # where it was written and the file's identity then (verified.py)


def _read_up_to(fd: int, limit: int) -> bytes:
    parts: list[bytes] = []
    while limit > 0 and (chunk := os.read(fd, limit)):
        parts.append(chunk)
        limit -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _write_all(fd: int, data: pa.Buffer) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _publish_at(folder_fd: int, name: str, data: pa.Buffer, *, unnamed: bool = False) -> bool:
    """Write `data` to `name` in the folder atomically and durably: the file is written and fsynced before its name
    appears, then the folder is fsynced. True when a file of that name was already there (it is replaced: same name,
    same content hash, so it is another publish's copy of these bytes, or a corrupt file being republished).

    With `unnamed` (Linux, see `links_unnamed_files`) the file is created without a name (O_TMPFILE) and linked under
    `name` once written: one directory entry instead of a temp entry and a rename, and a crash leaves no temp file.
    Otherwise, or when `name` exists (a link cannot replace it), a temp file is renamed over it."""
    if unnamed:
        try:
            fd = os.open(".", os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC, 0o644, dir_fd=folder_fd)
        except PermissionError:
            if os.fstat(folder_fd).st_nlink == 0:  # Linux's answer when the folder was removed behind our back
                raise FileNotFoundError(errno.ENOENT, "the folder was removed", name) from None
            raise
        try:
            _write_all(fd, data)
            os.fsync(fd)
            os.link(f"{PROC_FD}/{fd}", name, dst_dir_fd=folder_fd, follow_symlinks=True)
        except FileExistsError:
            pass  # the unnamed file is freed when closed; the rename path below replaces the existing one
        else:
            os.fsync(folder_fd)
            return False
        finally:
            os.close(fd)
    temp = f".{name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=folder_fd)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            existed = True
        except FileNotFoundError:
            existed = False
        os.replace(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)  # replaces a symlink, never follows it
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder_fd)
        raise
    os.fsync(folder_fd)
    return existed


def links_unnamed_files(folder: Path) -> bool:
    """True when `folder` takes O_TMPFILE files and /proc links them under a name (Linux 3.11+ on ext4, xfs, btrfs,
    tmpfs): checked once per cache folder with a throwaway file, so a publish never meets the failure."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return False
    probe = f".probe-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
    folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = os.open(".", os.O_WRONLY | flag | os.O_CLOEXEC, 0o644, dir_fd=folder_fd)
        try:
            # With a folder descriptor os.link is linkat(AT_SYMLINK_FOLLOW); without one, link(2) would try to link
            # the /proc symlink itself (EXDEV).
            os.link(f"{PROC_FD}/{fd}", probe, dst_dir_fd=folder_fd, follow_symlinks=True)
        finally:
            os.close(fd)
        os.unlink(probe, dir_fd=folder_fd)
    except OSError:
        return False
    finally:
        os.close(folder_fd)
    return True


def fsync_dir(folder: Path | str) -> None:
    """Make a rename or a new entry in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderHandles:
    """Open descriptors of recently published-to folders, shared by threads: files are created, renamed and fsynced
    relative to them. One is closed only when no thread uses it (evicted beyond `MAX_OPEN_FOLDERS`, or its folder
    was removed behind our back), so a descriptor number is never reused under a publish in flight."""

    def __init__(self, limit: int = MAX_OPEN_FOLDERS) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._open: OrderedDict[str, list[int]] = OrderedDict()  # folder -> [fd, users, stale]

    @contextlib.contextmanager
    def use(self, folder: str) -> Iterator[int]:
        with self._lock:
            handle = self._open.get(folder)
            if handle is None or handle[2]:
                handle = [os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), 0, 0]
                if folder in self._open:
                    self._retire(folder)
                self._open[folder] = handle
            handle[1] += 1
            self._open.move_to_end(folder)
        try:
            yield handle[0]
        finally:
            with self._lock:
                handle[1] -= 1
                if handle[2] and handle[1] == 0:
                    os.close(handle[0])
                self._evict()

    def forget(self, folder: str) -> None:
        """Stop using `folder`'s descriptor (the folder was removed); it is closed once no thread holds it."""
        with self._lock:
            if folder in self._open:
                self._retire(folder)

    def close(self) -> None:
        with self._lock:
            for folder in list(self._open):
                self._retire(folder)

    def _retire(self, folder: str) -> None:
        handle = self._open.pop(folder)
        handle[2] = 1
        if handle[1] == 0:
            os.close(handle[0])

    def _evict(self) -> None:
        if len(self._open) <= self._limit:
            return
        idle = [folder for folder, handle in self._open.items() if handle[1] == 0]
        for folder in idle[: len(self._open) - self._limit]:
            self._retire(folder)


class FrameFiles:
    """Reads and writes Parquet frames under one cache folder; no path ever resolves outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._folders: dict[tuple[str, str], str] = {}  # (symbol, feature) -> resolved folder that exists
        self._handles = FolderHandles()

    @functools.cached_property
    def _unnamed(self) -> bool:
        """An unnamed file saves the temp name, its stat and the rename: about 0.03 ms of a publish's ~1 ms of CPU.
        Probed at the first publish, so a store that only reads never writes the probe."""
        return links_unnamed_files(self.root)

    def relative_path(self, key: FrameKey, sha256: str) -> str:
        validate_digest(sha256)
        return paths_of(key, sha256)[0]

    @staticmethod
    def is_own_path(entry: ManifestEntry) -> bool:
        """True when `entry.path` is where the layout puts the frame of its key and sha256 (this layout's path or
        the one before `frames/`): a row naming any other file (a tampered one) is never read or followed."""
        try:
            return entry.path in paths_of(FrameKey(entry.symbol, entry.feature, entry.params_digest), entry.sha256)
        except InvalidName:
            return False

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
        folder = self._folder(key)
        try:
            existed, stat = self._publish_in(folder, name, data)
        except FileNotFoundError:
            # The remembered folder was removed behind our back (cache cleared): find or create it again, once.
            self._handles.forget(folder)
            self._folders.pop((key.symbol, key.feature), None)
            folder = self._folder(key)
            existed, stat = self._publish_in(folder, name, data)
        return StoredFrame(
            relative, table.num_rows, data.size, sha256, created=not existed,
            written=WrittenFile(f"{folder}/{name}", FileIdentity.of(stat)),
        )  # fmt: skip

    def _publish_in(self, folder: str, name: str, data: pa.Buffer) -> tuple[bool, os.stat_result]:
        """`_publish_at` in `folder`, and the stat of the file it left there (what verified.py remembers)."""
        with self._handles.use(folder) as folder_fd:
            existed = _publish_at(folder_fd, name, data, unnamed=self._unnamed)
            return existed, os.stat(name, dir_fd=folder_fd, follow_symlinks=False)

    def close(self) -> None:
        """Close the folder descriptors held for publishing."""
        self._handles.close()

    def _folder(self, key: FrameKey) -> str:
        """The key's folder (`<root>/frames/<symbol>/<feature>`), resolved inside the cache folder, created if missing.

        Resolving walks every component with lstat (about a third of a publish's CPU time on this machine), so a
        folder is resolved once per process and remembered; symbol and feature are validated names and the file
        name is ours, so the file's path cannot leave a folder that resolved inside the cache folder.
        """
        parts = (key.symbol, key.feature)
        folder = self._folders.get(parts)
        if folder is None:
            resolved = self.resolve(frame_folder(key))
            self._make_folders(resolved)
            if len(self._folders) >= MAX_REMEMBERED_FOLDERS:
                self._folders.clear()
            folder = self._folders[parts] = str(resolved)
        return folder

    def read(self, entry: ManifestEntry) -> pa.Table:
        """The frame of `entry`, after checking its size and sha256; FrameUnreadable when it is missing or corrupt
        (a row naming a file that is not its key's frame counts as corrupt: that file is not read)."""
        return self.read_verified(entry)[0]

    def read_verified(self, entry: ManifestEntry, known: VerifiedFrame | None = None) -> tuple[pa.Table, VerifiedFrame]:
        """The frame of `entry` and what was verified of it (featurestore/verified.py). With `known`, a frame this
        process verified before, the sha256 is skipped while the open file keeps `known.identity`; any other state of
        the file is checked as `read` checks it. FrameUnreadable when it is missing or corrupt."""
        if known is None:
            if not self.is_own_path(entry):
                raise FrameUnreadable(f"{entry.path[:200]!r} is not where the frame of this row would be", "corrupt")
            path = str(self.resolve(entry.path))
        else:
            path = known.path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FrameUnreadable(f"{entry.path} is missing", "missing") from None
        try:
            identity = FileIdentity.of(os.fstat(fd))
            if known is not None and known.table is not None and identity == known.identity:
                return known.table, known  # the bytes verified before, parsed before (verified.py)
            data = _read_up_to(fd, identity.size + 1)  # one byte more: a file that grew meanwhile shows it
        finally:
            os.close(fd)
        if len(data) != entry.bytes:
            raise FrameUnreadable(f"{entry.path} has {len(data)} bytes, the manifest says {entry.bytes}", "corrupt")
        if (known is None or identity != known.identity) and hashlib.sha256(data).hexdigest() != entry.sha256:
            raise FrameUnreadable(f"{entry.path} does not match its sha256", "corrupt")
        try:
            table = pq.ParquetFile(pa.BufferReader(data)).read()
        except (pa.ArrowException, OSError) as exc:
            raise FrameUnreadable(f"{entry.path} is not readable Parquet: {exc}", "corrupt") from None
        return table, VerifiedFrame(entry, path, identity, table)

    def remove(self, relative: str) -> None:
        """Delete a frame file; a path outside the frame layout is refused (InvalidName), never deleted."""
        if not is_frame_path(relative):
            raise InvalidName(f"{relative[:200]!r} is not a frame file's path: not deleted")
        self.resolve(relative).unlink(missing_ok=True)

    def _make_folders(self, folder: Path) -> None:
        if folder.is_dir():
            return
        missing = [folder, *(p for p in folder.parents if p.is_relative_to(self.root) and not p.exists())]
        folder.mkdir(parents=True, exist_ok=True)
        # A new folder is durable once its parent is fsynced.
        for created in sorted(set(missing), key=lambda p: len(p.parts), reverse=True):
            fsync_dir(created.parent)
