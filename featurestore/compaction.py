"""Ended processes' files folded into one file per kind while the service runs, so churn does not grow the folder.

    compact(folder), before each scrape, holding compaction.lock exclusively (readers hold it shared):
      for each process_<id>.alive whose lock is free (its process ended; the kernel frees it on SIGKILL too)
        1. live_gauges_removed     its gauge_live*_<id>.db go (prometheus_client's mark_process_dead)
        2. <kind>_written          per summed kind (counter, histogram): <kind>_compacted.db's values plus
                                   <kind>_<id>.db's, and <id> added to its absorbed list, in a temporary file, fsync'd
        3. <kind>_compacted        the temporary file renamed over <kind>_compacted.db: readers see the old or the
                                   new file, never a part of one
        4. <kind>_source_removed   <kind>_<id>.db removed
        5. alive_removed           process_<id>.alive removed: nothing of <id> is left to do

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

from prometheus_client import multiprocess as upstream

from featurestore import value_files
from featurestore.multiprocess import ALIVE, open_shared, process_identity

log = logging.getLogger(__name__)
COMPACTED = "compacted"  # the identity part of a compacted file's name: counter_compacted.db
LOCK_FILE = "compaction.lock"
SUMMED_KINDS = ("counter", "histogram")
Step = Callable[[str], None]  # called after each step with its name (tests inject crashes there)
# The steps of one ended process, in order.
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
    done: list[str] = []
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []
        for stale in folder.glob(f".*_{COMPACTED}.db.tmp"):  # a compaction that crashed before its rename
            stale.unlink(missing_ok=True)
        for path in sorted(folder.glob("process_*.alive")):
            match = ALIVE.fullmatch(path.name)
            if match is None or match.group(1) == process_identity():
                continue
            try:
                if _compact_process(folder, path, match.group(1), after_step):
                    done.append(match.group(1))
            except OSError as exc:  # a file we may not remove or write: the scrape goes on, and says why
                log.warning("could not compact the files of ended process %s in %s: %s", match.group(1), folder, exc)
    finally:
        os.close(lock)
    return done


def _compact_process(folder: Path, alive: Path, identity: str, after_step: Step) -> bool:
    try:
        fd = os.open(alive, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # alive
        upstream.mark_process_dead(identity, str(folder))  # type: ignore[no-untyped-call]
        after_step("live_gauges_removed")
        for kind in SUMMED_KINDS:
            _absorb(folder, kind, identity, after_step)
        alive.unlink()
        after_step("alive_removed")
        return True
    finally:
        os.close(fd)


def _absorb(folder: Path, kind: str, identity: str, after_step: Step) -> None:
    source = folder / f"{kind}_{identity}.db"
    target = compacted_file(folder, kind)
    try:
        values, absorbed = value_files.read_values(target.read_bytes())
    except FileNotFoundError:
        values, absorbed = {}, frozenset()
    if identity not in absorbed:
        try:
            added, _ = value_files.read_values(source.read_bytes())
        except FileNotFoundError:
            return  # the process wrote nothing of this kind
        except value_files.DamagedFile as exc:
            log.warning("metrics file %s is left uncompacted: %s", source, exc)
            return
        for key, value in added.items():
            values[key] = values.get(key, 0.0) + value
        still_there = {name for name in absorbed if (folder / f"{kind}_{name}.db").exists()}
        _write_atomically(target, value_files.encode(values, still_there | {identity}), kind, after_step)
    source.unlink(missing_ok=True)
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
