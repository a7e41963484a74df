"""Several processes, one scrape: prometheus_client's multiprocess mode, made safe for a fleet of workers.

    launcher: mkdir $PROMETHEUS_MULTIPROC_DIR (empty), start the workers and `python -m service` with it set
        │
    worker ─ build() ─▶ metrics_folder() checks it ─▶ register_process(): shared flock on process_<pid>.alive
        │               every value: counter_<pid>.db, histogram_<pid>.db, gauge_<mode>_<pid>.db (prometheus_client)
        │               symbol labels: SharedSymbols admits at most `cap` symbols across the folder
    service ─ each scrape ─▶ reap_dead_processes(): a free .alive lock means its process ended (SIGKILL included:
                             the kernel drops the lock), so its live-gauge files go (mark_process_dead); its counter
                             and histogram files stay, so rate() keeps every count it made

Liveness is a lock, not a pid lookup: it works across containers that share the folder but not their pid namespace,
and a reused pid cannot pass for the dead process (the reaper checks it locked the file still at that path, and a
new process waits for the reaper before it writes). Nothing here empties a PROMETHEUS_MULTIPROC_DIR: whoever starts
the workers owns it (prometheus_client: empty it before the group starts, never while a worker writes). The embedded
default's folder has no launcher, so its registrations (featurestore.folder_values) are serialized by a lock file
and the first one to find no process alive there empties it (`register_process(tidy=True)`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
from pathlib import Path

from prometheus_client import multiprocess, values

from featurestore.errors import MetricsFolderError

log = logging.getLogger(__name__)
ENV = "PROMETHEUS_MULTIPROC_DIR"
SYMBOLS_FILE = "symbol_labels.txt"
REGISTRATION_LOCK = "registration.lock"
_ALIVE = re.compile(r"process_(\d+)\.alive")

_registered: dict[Path, tuple[int, int]] = {}  # folder -> (pid, fd of its .alive file holding the shared lock)
_registered_lock = threading.Lock()


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


def alive_file(folder: Path, pid: int) -> Path:
    return folder / f"process_{pid}.alive"


def register_process(folder: Path, *, tidy: bool = False) -> None:
    """Hold this process's liveness lock in `folder` until it exits (idempotent; taken again in a forked child).

    `tidy` (a folder only feature stores manage, the embedded default's): first empty the folder if no process is
    alive there, under the folder's registration lock, so the files of past runs do not pile up."""
    pid = os.getpid()
    with _registered_lock:
        held = _registered.get(folder)
        if held is not None and held[0] == pid:
            return
        if not tidy:
            _hold_alive_lock(folder, pid)
            return
        with open(folder / REGISTRATION_LOCK, "a+b") as registration:
            fcntl.flock(registration, fcntl.LOCK_EX)
            _empty_if_unused(folder)
            _hold_alive_lock(folder, pid)


def _hold_alive_lock(folder: Path, pid: int) -> None:
    path = alive_file(folder, pid)
    while True:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)  # a lock needs no write access
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a reaper removes a dead namesake's files
        if _same_file(fd, path):
            break
        os.close(fd)  # the reaper unlinked it while we waited: lock a fresh one
    _registered[folder] = (pid, fd)


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
        for path in [*folder.glob("*.db"), *folder.glob("process_*.alive"), folder / SYMBOLS_FILE]:
            path.unlink(missing_ok=True)
    finally:
        for fd in dead:
            os.close(fd)


def unregister_process(folder: Path) -> None:
    """Leave `folder` as an ended process would (this process stopped writing there): its live gauges go, its
    counters and histograms stay."""
    pid = os.getpid()
    with _registered_lock:
        held = _registered.get(folder)
        if held is None or held[0] != pid:
            return
        multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        alive_file(folder, pid).unlink(missing_ok=True)
        os.close(held[1])
        del _registered[folder]


def _forget_inherited_locks() -> None:
    """In a forked child: the parent's locks are the parent's (closing our copy of the fd does not release them)."""
    for _, fd in _registered.values():
        os.close(fd)
    _registered.clear()


os.register_at_fork(after_in_child=_forget_inherited_locks)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def reap_dead_processes(folder: Path) -> list[int]:
    """Remove the live-gauge files of every process whose liveness lock is free (it ended); the pids reaped.

    Files of a pid that never registered (a process that is not a feature store) are left alone: safe over fast."""
    reaped = []
    for path in folder.glob("process_*.alive"):
        match = _ALIVE.fullmatch(path.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # gone already, or not ours to open: leave it
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # alive
            if not _same_file(fd, path):
                continue  # another reaper got there first
            pid = int(match.group(1))
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
            path.unlink()
            reaped.append(pid)
        except OSError as exc:  # a file we may not remove: the scrape goes on, and says why in the log
            log.warning("could not remove the live gauges of ended process %s in %s: %s", match.group(1), folder, exc)
        finally:
            os.close(fd)
    return reaped


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
        with open(self.path, "a+b") as file:
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
