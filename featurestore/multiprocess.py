"""Several processes, one scrape: prometheus_client's multiprocess mode, made safe for a fleet of workers.

    launcher: mkdir $PROMETHEUS_MULTIPROC_DIR (empty), start the workers and `python -m service` with it set
        │
    worker ─ build() ─▶ metrics_folder() checks it ─▶ register_process(): shared flock on process_<id>.alive
        │               every value: counter_<id>.db, histogram_<id>.db, gauge_<mode>_<id>.db (prometheus_client)
        │               symbol labels: SharedSymbols admits at most `cap` symbols across the folder
    service ─ each scrape ─▶ featurestore.compaction: a free .alive lock means its process ended (SIGKILL included:
                             the kernel drops the lock), so its live-gauge files go and its counter and histogram
                             files are folded into one compacted file per kind (rate() keeps every count it made)

`<id>` is `process_identity()`: the pid and a random token drawn once per process, so two containers' pid 1 (no
shared pid namespace) or a reused pid never name the same file. prometheus_client names files by `os.getpid()`;
`register_process` gives it our identity instead (`values.ValueClass`, before any value is created in the
multiprocess mode). Files of processes that never registered (a library's metric created before) keep pid names and
are read, never compacted: nothing says when their process ended.

Liveness is a lock, not a pid lookup: it works across containers that share the folder but not their pid namespace.
Nothing here empties a PROMETHEUS_MULTIPROC_DIR: whoever starts the workers owns it (prometheus_client: empty it
before the group starts, never while a worker writes). The embedded default's folder has no launcher, so its
registrations (featurestore.folder_values) are serialized by a lock file and the first one to find no process alive
there empties it (`register_process(tidy=True)`).

Several Unix users may share a folder: the files every process writes to (the symbol list, the lock files) are
created group-writable (0664, whatever the umask), so users of one group all use them; each process's own value
files keep the umask's mode and only need to be readable by the service.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import multiprocess, values

from featurestore.errors import MetricsFolderError

log = logging.getLogger(__name__)
ENV = "PROMETHEUS_MULTIPROC_DIR"
SYMBOLS_FILE = "symbol_labels.txt"
REGISTRATION_LOCK = "registration.lock"
ALIVE = re.compile(r"process_([0-9A-Za-z-]+)\.alive")
SHARED_FILE_MODE = 0o664  # files every process of the folder writes: the group's users all may
IDENTITY_MARK = "_featurestore_identity"  # set on a value class that names files by process_identity()

_registered: dict[Path, tuple[str, int]] = {}  # folder -> (identity, fd of its .alive file holding the shared lock)
_registered_lock = threading.Lock()
_identity: tuple[int, str] | None = None  # (the pid it was drawn in, identity)


def process_identity() -> str:
    """This process's name in metrics folders: `<pid>-<random token>`, drawn once per process (a forked child draws
    its own at its first call)."""
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        _identity = (pid, f"{pid}-{secrets.token_hex(6)}")
    return _identity[1]


def value_class(identifier: Callable[[], object] = process_identity) -> Any:
    """prometheus_client's multiprocess value class, naming this process's files by `identifier`."""
    cls = values.MultiProcessValue(process_identifier=identifier)  # type: ignore[no-untyped-call]
    setattr(cls, IDENTITY_MARK, True)
    return cls


def open_shared(path: Path, flags: int = os.O_RDONLY) -> int:
    """An fd on a file every process of the folder uses, created group-writable when missing."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, SHARED_FILE_MODE)
    except FileExistsError:
        return os.open(path, flags)
    try:
        os.fchmod(fd, SHARED_FILE_MODE)  # the umask narrowed the mode of os.open
    except OSError:
        pass
    return fd


def metrics_folder() -> Path | None:
    """The folder this process's metrics go to, or None when they stay in its memory; MetricsFolderError when the
    variable and prometheus_client disagree or the folder is unusable."""
    raw = os.environ.get(ENV, "")
    writes_files = bool(getattr(values.ValueClass, "_multiprocess", False))
    if not raw:
        if writes_files:
            raise MetricsFolderError(f"{ENV} was unset after prometheus_client was imported with it; set it once")
        return None
    if not writes_files:
        raise MetricsFolderError(
            f"{ENV}={raw} was set after prometheus_client was imported, so this process's metrics would stay in "
            "its memory: set it in the environment before the process starts (the launcher or the job spec)"
        )
    folder = Path(raw)
    if not folder.is_dir():
        raise MetricsFolderError(
            f"{ENV}={raw} is not a directory: whoever starts the workers creates it (empty) before starting them and "
            "the service"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MetricsFolderError(f"{ENV}={raw} is not writable by this user (uid {os.getuid()})")
    return folder.resolve()


def alive_file(folder: Path, identity: str) -> Path:
    return folder / f"process_{identity}.alive"


def register_process(folder: Path, *, tidy: bool = False) -> None:
    """Hold this process's liveness lock in `folder` until it exits (idempotent; taken again in a forked child).

    `tidy` (a folder only feature stores manage, the embedded default's): first empty the folder if no process is
    alive there, under the folder's registration lock, so the files of past runs do not pile up. In the
    multiprocess mode, prometheus_client names this process's files by its identity from here on."""
    if getattr(values.ValueClass, "_multiprocess", False) and not getattr(values.ValueClass, IDENTITY_MARK, False):
        values.ValueClass = value_class()
    identity = process_identity()
    with _registered_lock:
        held = _registered.get(folder)
        if held is not None and held[0] == identity:
            return
        if not tidy:
            _hold_alive_lock(folder, identity)
            return
        registration = open_shared(folder / REGISTRATION_LOCK)
        try:
            fcntl.flock(registration, fcntl.LOCK_EX)
            _empty_if_unused(folder)
            _hold_alive_lock(folder, identity)
        finally:
            os.close(registration)


def _hold_alive_lock(folder: Path, identity: str) -> None:
    _registered[folder] = (identity, hold_liveness(folder, identity))


def hold_liveness(folder: Path, identity: str) -> int:
    """The fd holding `identity`'s liveness lock in `folder` (closing it ends that identity's life there). The file is
    locked before it has its name: a compaction never sees it unlocked while its holder lives."""
    path = alive_file(folder, identity)
    unnamed = path.with_name(f".{path.name}.new")
    fd = os.open(unnamed, os.O_RDONLY | os.O_CREAT, 0o644)  # a lock needs no write access
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.rename(unnamed, path)
    except BaseException:
        os.close(fd)
        unnamed.unlink(missing_ok=True)
        raise
    return fd


def _empty_if_unused(folder: Path) -> None:
    """Remove every value, liveness and symbol file of `folder` when no process holds its liveness lock there."""
    dead: list[int] = []
    try:
        for path in folder.glob("process_*.alive"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            dead.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a process is alive: its files, and the counts of the dead it is scraped with, stay
        leftovers = [
            *folder.glob("*.db"),
            *folder.glob("process_*.alive"),
            *folder.glob(".*.tmp"),
            *folder.glob(".*.new"),
        ]
        for path in [*leftovers, folder / SYMBOLS_FILE]:
            path.unlink(missing_ok=True)
    finally:
        for fd in dead:
            os.close(fd)


def unregister_process(folder: Path) -> None:
    """Leave `folder` as an ended process would (this process stopped writing there): its live gauges go, its
    counters and histograms stay, released to the next compaction)."""
    identity = process_identity()
    with _registered_lock:
        held = _registered.get(folder)
        if held is None or held[0] != identity:
            return
        multiprocess.mark_process_dead(identity, str(folder))  # type: ignore[no-untyped-call]
        os.close(held[1])  # the lock goes: the service compacts this identity's files (a new one is drawn to write)
        del _registered[folder]
        global _identity
        _identity = None


def _register_forked_child() -> None:
    """In a forked child: the parent's locks are the parent's (closing our copy of the fd does not release them);
    the child draws its own identity and registers it in the parent's folders before it writes a value."""
    global _registered_lock
    _registered_lock = threading.Lock()  # another thread may have held it at the fork
    folders = list(_registered)
    for _, fd in _registered.values():
        os.close(fd)
    _registered.clear()
    for folder in folders:
        try:
            register_process(folder)
        except OSError as exc:
            log.warning("a forked process could not register in the metrics folder %s: %s", folder, exc)


os.register_at_fork(after_in_child=_register_forked_child)


class SharedSymbols:
    """The `symbol` label values admitted across every process of one folder: a line per symbol, appended under an
    exclusive flock. A process reads the file only for a symbol it has not seen itself, so the cost is per new
    symbol per process, not per observation."""

    def __init__(self, folder: Path, cap: int) -> None:
        self.path = folder / SYMBOLS_FILE
        self.cap = cap
        self._known: set[str] = set()
        self._offset = 0

    def admit(self, symbol: str) -> bool:
        """True when `symbol` is (now) one of the at most `cap` admitted symbols."""
        with open(open_shared(self.path, os.O_RDWR | os.O_APPEND), "r+b") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            file.seek(self._offset)
            tail = file.read()
            complete = tail[: tail.rfind(b"\n") + 1]
            self._offset += len(complete)
            self._known.update(line.decode() for line in complete.splitlines() if line)
            if symbol in self._known:
                return True
            if len(self._known) >= self.cap:
                return False
            line = f"{symbol}\n".encode()
            file.seek(0, os.SEEK_END)
            file.write(line)
            file.flush()
            self._known.add(symbol)
            return True
