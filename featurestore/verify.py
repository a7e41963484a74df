"""Check that the cache folder and the manifest agree, and optionally repair what does not.

    python -m featurestore.verify [--cache-dir DIR] [--dsn DSN] [--repair] [--min-age-s S] [--json]

Finds rows whose file is missing or whose size or sha256 do not match (`--repair` deletes the row, and the corrupt
file: the next get_or_compute recomputes it), rows that name a file outside the frame layout (`--repair` deletes the
row only, never that file), frame files no row points at and temp files left by crashed writers (`--repair` deletes
them). Only files of the frame layout (featurestore/layout.py) are ever deleted; any other file is left alone.

Files younger than --min-age-s are left alone: a publish writes its file before its row, so a fresh file without a
row may be a publish in flight. That gap is at most the wait for a pooled connection plus the insert statement's
timeout (then the publisher removes its own file), so the default is that plus a margin, and never under a minute.
Exit status 1 when a problem remains, else 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from featurestore.errors import FeatureStoreError
from featurestore.layout import FALLBACK_FOLDER, METRICS_FOLDER, is_frame_path, is_temp_path
from featurestore.settings import FeatureStoreSettings
from featurestore.store import FeatureStore

MIN_AGE_FLOOR_S = 60.0
MIN_AGE_MARGIN_S = 20.0


def default_min_age_s(settings: FeatureStoreSettings) -> float:
    """The longest a publish in flight keeps a file without its row (pool wait + statement timeout), plus a margin."""
    longest_gap = settings.pool_timeout_s + settings.statement_timeout_ms / 1000.0
    return max(MIN_AGE_FLOOR_S, longest_gap + MIN_AGE_MARGIN_S)


DEFAULT_MIN_AGE_S = default_min_age_s(FeatureStoreSettings.model_construct())


@dataclass
class Report:
    """What verify found (paths relative to the cache folder) and what --repair removed."""

    cache_dir: str
    backend: str
    entries: int = 0
    files: int = 0
    missing_files: list[str] = field(default_factory=list)
    corrupt_files: list[str] = field(default_factory=list)
    foreign_rows: list[str] = field(default_factory=list)  # rows naming a path outside the frame layout
    orphan_files: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    young_files_skipped: int = 0
    min_age_s: float = DEFAULT_MIN_AGE_S
    repaired: bool = False

    @property
    def problems(self) -> int:
        return (
            len(self.missing_files) + len(self.corrupt_files) + len(self.foreign_rows) + len(self.orphan_files)
            + len(self.temp_files)
        )  # fmt: skip

    @property
    def ok(self) -> bool:
        return self.problems == 0 or self.repaired

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "problems": self.problems, "ok": self.ok}


def verify(store: FeatureStore, *, repair: bool = False, min_age_s: float = DEFAULT_MIN_AGE_S) -> Report:
    """Compare every manifest row with its file and every file with the rows; with `repair`, remove the bad ones."""
    root = store.files.root
    report = Report(str(root), store.backend_name, min_age_s=min_age_s)
    referenced: set[Path] = set()
    bad_rows = []
    for entry in store.entries():
        report.entries += 1
        if not store.files.is_own_path(entry):
            report.foreign_rows.append(entry.path)
            bad_rows.append((entry, False))
            continue
        path = store.files.resolve(entry.path)
        referenced.add(path)
        if not path.is_file():
            report.missing_files.append(entry.path)
            bad_rows.append((entry, False))
        elif path.stat().st_size != entry.bytes or _sha256(path) != entry.sha256:
            report.corrupt_files.append(entry.path)
            bad_rows.append((entry, True))
    stray: list[Path] = []
    now = time.time()
    for path in _cache_files(root):
        report.files += 1
        relative = path.relative_to(root).as_posix()
        is_temp = is_temp_path(relative)
        if path in referenced or not (is_temp or is_frame_path(relative)):
            continue
        if now - path.stat().st_mtime < min_age_s:
            report.young_files_skipped += 1
            continue
        (report.temp_files if is_temp else report.orphan_files).append(relative)
        stray.append(path)
    if repair:
        for entry, corrupt in bad_rows:
            store.manifest.delete(entry.symbol, entry.feature, entry.params_digest)
            if corrupt:
                store.files.remove(entry.path)
        for path in stray:
            path.unlink(missing_ok=True)
        report.repaired = True
    return report


def _cache_files(root: Path) -> list[Path]:
    """Every regular file below the cache folder's top level except the fallback and metrics folders' (the manifest
    lives at the top level, where no frame does)."""
    fallback, metrics = root / FALLBACK_FOLDER, root / METRICS_FOLDER
    files = []
    for path in sorted(root.rglob("*")):
        if path.parent == root or path.is_relative_to(fallback) or path.is_relative_to(metrics):
            continue
        if path.is_file() and not path.is_symlink():
            files.append(path)
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    settings = FeatureStoreSettings()
    min_age = default_min_age_s(settings)
    parser = argparse.ArgumentParser(
        prog="python -m featurestore.verify",
        description=_description(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help=f"cache folder (default: FEATURESTORE_CACHE_DIR, here {settings.resolved_cache_dir()})",
    )
    parser.add_argument(
        "--dsn",
        help="PostgreSQL DSN of the manifest; '' for the DuckDB manifest (default: FEATURESTORE_PG_DSN, here "
        f"{'set' if settings.pg_dsn is not None else 'unset, so DuckDB'})",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="delete bad rows (and corrupt files), orphan files and temp files (default: off, only report)",
    )
    parser.add_argument(
        "--min-age-s",
        type=float,
        default=min_age,
        help=f"leave files younger than this alone, they may be a publish in flight (default: {min_age:g}, the "
        "pool timeout plus the statement timeout plus a margin, at least 60; 0 when no writer runs)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout (default: text)")
    args = parser.parse_args(argv)
    try:
        with FeatureStore.open(args.dsn, args.cache_dir, settings=settings) as store:
            report = verify(store, repair=args.repair, min_age_s=args.min_age_s)
    except FeatureStoreError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        print(_text(report))
    return 0 if report.ok else 1


def _description() -> str:
    first, _usage, rest = (__doc__ or "\n\n\n\n").split("\n\n", 2)
    return f"{first}\n\n{rest.strip()}"


def _text(report: Report) -> str:
    lines = [f"{report.cache_dir} ({report.backend}): {report.entries} rows, {report.files} files"]
    for title, paths in (
        ("rows whose file is missing", report.missing_files),
        ("rows whose file does not match its size or sha256", report.corrupt_files),
        ("rows naming a file outside the frame layout (repair deletes the row, never the file)", report.foreign_rows),
        ("files no row points at", report.orphan_files),
        ("temp files left by interrupted writers", report.temp_files),
    ):
        if paths:
            lines.append(f"{len(paths)} {title}:")
            lines.extend(f"  {path}" for path in paths)
    if report.young_files_skipped:
        lines.append(
            f"{report.young_files_skipped} files without a row left alone: younger than --min-age-s "
            f"{report.min_age_s:g}, they may be publishes in flight (rerun later, or pass --min-age-s 0 when no "
            "process writes to this cache)"
        )
    if report.problems == 0:
        lines.append("ok")
    elif report.repaired:
        lines.append(f"repaired {report.problems} problems (deleted rows are recomputed on the next read)")
    else:
        lines.append(f"{report.problems} problems; run with --repair to fix them")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
