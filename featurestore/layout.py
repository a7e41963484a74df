"""The cache folder's layout: the store's own entries, and where frames live apart from them.

    <cache_dir>/
        manifest.duckdb, manifest.duckdb.wal    the embedded manifest (DuckDB)
        fallback/<host>-<pid>-<hex>.duckdb      per-process manifests while PostgreSQL is down
        .metrics/                               the embedded default's metrics (featurestore.folder_values)
        frames/<symbol>/<feature>/<params_digest>-<sha256[:16]>.parquet

Frames live under `frames/`, so no symbol or feature name (A-Z a-z 0-9 . _ -, featurestore.keys) can land on the
manifest, its WAL, the fallback folder or the metrics folder. Caches written before `frames/` existed keep their
frames at `<symbol>/<feature>/...`: their manifest rows name those paths, they are read where they are, and the
next publish of such a key goes under `frames/`. Nothing is moved.

Only paths of this layout are ever deleted (verify --repair, a publish that lost its race, a replay): a manifest
row naming any other file is refused, not followed.
"""

from __future__ import annotations

import re

from featurestore.keys import NAME_PATTERN, FrameKey

FRAMES_FOLDER = "frames"
FALLBACK_FOLDER = "fallback"
# The embedded default's metrics (featurestore.folder_values); no name starts with a dot, so no frame lands there.
METRICS_FOLDER = ".metrics"
MANIFEST_FILE = "manifest.duckdb"
PARQUET_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"

_FRAME_FILE = rf"[0-9a-f]{{64}}-[0-9a-f]{{16}}{re.escape(PARQUET_SUFFIX)}"
_FRAME_FOLDER = rf"(?:{FRAMES_FOLDER}/)?{NAME_PATTERN}/{NAME_PATTERN}"
_FRAME_PATH = re.compile(rf"{_FRAME_FOLDER}/{_FRAME_FILE}")
# What files.py names a file while it is written: `.<frame file>.<pid>-<8 hex>.tmp`, beside the frame.
_TEMP_PATH = re.compile(rf"{_FRAME_FOLDER}/\.{_FRAME_FILE}\.[0-9]+-[0-9a-f]{{8}}{re.escape(TEMP_SUFFIX)}")


def frame_folder(key: FrameKey) -> str:
    """`frames/<symbol>/<feature>`, relative to the cache folder."""
    return f"{FRAMES_FOLDER}/{key.symbol}/{key.feature}"


def frame_file(key: FrameKey, sha256: str) -> str:
    return f"{key.params_digest}-{sha256[:16]}{PARQUET_SUFFIX}"


def is_frame_path(relative: str) -> bool:
    """True for a frame file's path (this layout or the one before `frames/`), relative to the cache folder."""
    return _FRAME_PATH.fullmatch(relative) is not None


def is_temp_path(relative: str) -> bool:
    """True for a frame's temp file, as an interrupted publish leaves it."""
    return _TEMP_PATH.fullmatch(relative) is not None


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def paths_of(key: FrameKey, sha256: str) -> tuple[str, str]:
    """The paths a row of `key` whose file has this sha256 may name: this layout's, then the one before `frames/`."""
    name = frame_file(key, sha256)
    return f"{frame_folder(key)}/{name}", f"{key.symbol}/{key.feature}/{name}"
