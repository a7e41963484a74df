"""Moving fallback entries into PostgreSQL: drain one DuckDB file, or every file that no live process holds.

Each entry goes through PostgreSQL's normal idempotent insert (which assigns its version) and is deleted from the
file only afterwards, so a crash in between replays it again without a duplicate. A file a live process holds cannot
be opened (DuckDB's lock), which is how the files of dead processes are told apart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from featurestore.errors import BackendUnavailable
from featurestore.files import FrameFiles
from featurestore.instruments import Instruments
from featurestore.manifest.duckdb import DuckDBManifest
from featurestore.manifest.postgres import PostgresManifest

log = logging.getLogger(__name__)


def drain(db: DuckDBManifest, primary: PostgresManifest, files: FrameFiles, instruments: Instruments) -> int:
    """Replay every entry of `db` into `primary`; the number PostgreSQL did not have yet."""
    inserted = 0
    for entry in db.entries():
        primary.yield_to_callers(primary.settings.pool_timeout_s / 4)
        outcome = primary.insert(entry)
        if not outcome.inserted and outcome.entry.path != entry.path:
            # PostgreSQL already had the key (stored while we were cut off): our copy of the frame is surplus. A row
            # naming a file outside the frame layout is not followed.
            if files.is_own_path(entry):
                files.remove(entry.path)
        db.delete(*entry.key)
        if outcome.inserted:
            inserted += 1
            instruments.count_replayed()
    if inserted:
        log.info("replayed %d manifest entries from %s into PostgreSQL", inserted, db.path.name)
    return inserted


def drain_orphans(
    folder: Path, skip: Path, primary: PostgresManifest, files: FrameFiles, instruments: Instruments
) -> int:
    """Drain and delete the fallback files in `folder` that no live process holds (`skip` is our own)."""
    if not folder.is_dir():
        return 0
    replayed = 0
    for path in sorted(folder.glob("*.duckdb")):
        if path == skip or DuckDBManifest.is_open_here(path):
            continue
        try:
            db = DuckDBManifest(path)
        except BackendUnavailable:
            continue  # held by a live process, which replays it itself
        except duckdb.Error as exc:
            log.warning("skipping unreadable fallback file %s: %s", path.name, exc)
            continue
        try:
            replayed += drain(db, primary, files, instruments)
            empty = db.count() == 0
        finally:
            db.close()
        if empty:
            db.remove_files()
    return replayed
