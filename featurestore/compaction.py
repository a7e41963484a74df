"""Ended processes' files folded into one file per kind while the service runs, so churn does not grow the folder.

    compact(folder), before each scrape, holding compaction.lock exclusively (readers hold it shared), for every
    process_<id>.alive whose lock is free (its process ended; the kernel frees it on SIGKILL too):
        1. live_gauges_removed     their gauge_live*_<id>.db go (what prometheus_client's mark_process_dead removes)
        2. <kind>_written          per summed kind (counter, histogram): <kind>_compacted.db's values plus every
                                   <kind>_<id>.db's, the <id>s added to its absorbed list, in a temporary file, fsync'd
        3. <kind>_compacted        the temporary file renamed over <kind>_compacted.db: readers see the old or the
                                   new file, never a part of one
        4. <kind>_source_removed   the <kind>_<id>.db files removed
        5. alive_removed           each process_<id>.alive removed: nothing of <id> is left to do

A crash between any two steps leaves process_<id>.alive, unlocked, so the next compaction runs them again: step 2
adds nothing for an <id> the compacted file already absorbed, and until step 4 a reader skips a source file that a
compacted file lists as absorbed, so no count is lost or counted twice. An absorbed <id> leaves the list at the
first compaction after its source is gone (identities are never reused: featurestore.multiprocess).

prometheus_client's maintainers declined compaction as unsafe (client_python #204): without a liveness lock a
process that is only slow looks dead. Here only a released lock lets a file go. Non-live gauges of an ended process
(`min`, `max`, `all`, `mostrecent` modes, none in the catalog) and files of processes that never registered stay.
A source file that cannot be parsed is left where it is (the reader skips it and says so) and its process is done.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from featurestore import value_files
from featurestore.multiprocess import ALIVE, alive_file, open_shared, process_identity

log = logging.getLogger(__name__)
COMPACTED = "compacted"  # the identity part of a compacted file's name: counter_compacted.db
LOCK_FILE = "compaction.lock"
SUMMED_KINDS = ("counter", "histogram")
# The gauge modes whose files prometheus_client's mark_process_dead removes (test_value_files.py holds it to them).
LIVE_MODES = frozenset({"liveall", "livemin", "livemax", "livesum", "livemostrecent"})
Step = Callable[[str], None]  # called after each step with its name (tests inject crashes there)
# The steps of one compaction, in order: the last once per ended process.
STEPS = (
    "live_gauges_removed",
    *(f"{kind}_{step}" for kind in SUMMED_KINDS for step in ("written", "compacted", "source_removed")),
    "alive_removed",
)


def _no_step(name: str) -> None:
    return None


def compacted_file(folder: Path, kind: str) -> Path:
    return folder / f"{kind}_{COMPACTED}.db"


@contextlib.contextmanager
def reading(folder: Path) -> Iterator[None]:
    """Held while a reader lists and reads the folder: no compaction moves counts between files meanwhile."""
    try:
        fd = open_shared(folder / LOCK_FILE)
    except OSError:
        yield  # a folder this user cannot write and nobody compacts: nothing moves
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def compact(folder: Path, after_step: Step = _no_step) -> list[str]:
    """Fold every ended process's files into the compacted files; the identities done with. Skipped (an empty
    list) while another compaction holds the folder."""
    try:
        lock = open_shared(folder / LOCK_FILE)
    except OSError as exc:
        log.warning("the metrics folder %s cannot be compacted: %s", folder, exc)
        return []
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        for stale in folder.glob(f".*_{COMPACTED}.db.tmp"):  # a compaction that crashed before its rename
            stale.unlink(missing_ok=True)
        ended = [identity for identity in _identities(folder) if _ended(alive_file(folder, identity))]
        if not ended:
            return []
        try:
            _remove_live_gauges(folder, set(ended))
            after_step("live_gauges_removed")
            for kind in SUMMED_KINDS:  # one rewrite per kind for every process that ended since the last scrape
                _absorb(folder, kind, ended, after_step)
            for identity in ended:
                alive_file(folder, identity).unlink(missing_ok=True)
                after_step("alive_removed")
        except OSError as exc:  # a file we may not remove or write: the scrape goes on, and says why
            log.warning("could not compact the files of ended processes in %s: %s", folder, exc)
            return []
        return ended
    finally:
        os.close(lock)


def _remove_live_gauges(folder: Path, identities: set[str]) -> None:
    """prometheus_client's mark_process_dead for each of `identities`, with one listing of the folder instead of a
    glob per mode and process (1,000 processes that ended at once: 5,000 listings of a folder of 5,000 files)."""
    for name in os.listdir(folder):
        parts = name.removesuffix(".db").split("_")
        if name.endswith(".db") and len(parts) == 3 and parts[1] in LIVE_MODES and parts[2] in identities:
            (folder / name).unlink(missing_ok=True)


def _identities(folder: Path) -> list[str]:
    mine = process_identity()
    found = (ALIVE.fullmatch(path.name) for path in folder.glob("process_*.alive"))
    return sorted(match.group(1) for match in found if match is not None and match.group(1) != mine)


def _ended(alive: Path) -> bool:
    """Its process has ended: nobody holds the lock (a liveness file is locked before it is named, and an identity
    is never used again, so the answer cannot change)."""
    try:
        fd = os.open(alive, os.O_RDONLY)
    except OSError:
        return False  # gone already, or not ours to open: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _absorb(folder: Path, kind: str, identities: list[str], after_step: Step) -> None:
    target = compacted_file(folder, kind)
    try:
        values, absorbed = value_files.read_values(target.read_bytes())
    except FileNotFoundError:
        values, absorbed = {}, frozenset()
    added: list[str] = []
    for identity in identities:
        if identity in absorbed:
            continue  # a compaction that stopped after its rename absorbed it already
        try:
            found, _ = value_files.read_values((folder / f"{kind}_{identity}.db").read_bytes())
        except FileNotFoundError:
            continue  # the process wrote nothing of this kind
        except value_files.DamagedFile as exc:
            log.warning("metrics file %s is left uncompacted: %s", folder / f"{kind}_{identity}.db", exc)
            continue
        for key, value in found.items():
            values[key] = values.get(key, 0.0) + value
        added.append(identity)
    if added:
        still_there = {name for name in absorbed if (folder / f"{kind}_{name}.db").exists()}
        _write_atomically(target, value_files.encode(values, still_there | set(added)), kind, after_step)
    for identity in {*added, *(name for name in identities if name in absorbed)}:
        (folder / f"{kind}_{identity}.db").unlink(missing_ok=True)
    after_step(f"{kind}_source_removed")


def _write_atomically(target: Path, data: bytes, kind: str, after_step: Step) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    after_step(f"{kind}_written")
    os.replace(temporary, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    after_step(f"{kind}_compacted")
