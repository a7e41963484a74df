"""`python -m featurestore.verify` finds rows without a good file, files without a row and leftover temp files, and
--repair removes them so the next read recomputes."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.settings import FeatureStoreSettings
from featurestore.verify import main, verify

OLD = time.time() - 7200
# Names of the frame layout (featurestore/layout.py), as a crashed writer or a lost row leaves them.
ORPHAN = f"{'a' * 64}-{'b' * 16}.parquet"
TEMP = f".{ORPHAN}.123-abcdef12.tmp"
YOUNG = f"{'c' * 64}-{'d' * 16}.parquet"


def frame(n: int) -> pa.Table:
    return pa.table({"n": [n, n * 2]})


def damaged_cache(store: FeatureStore) -> dict[str, str]:
    """Three frames published, then one file deleted, one corrupted, an old orphan, an old temp file, a new orphan."""
    paths = {name: store.publish("AAPL", "returns", {"n": n}, frame(n)).entry.path for n, name in enumerate("abc")}
    root = store.files.root
    (root / paths["a"]).unlink()
    corrupt = root / paths["b"]
    corrupt.write_bytes(corrupt.read_bytes()[:-4] + b"XXXX")
    folder = (root / paths["c"]).parent
    orphan, temp, young = folder / ORPHAN, folder / TEMP, folder / YOUNG
    for path in (orphan, temp, young):
        path.write_bytes(b"PAR1")
    for path in (orphan, temp):
        os.utime(path, (OLD, OLD))
    return {**paths, "orphan": orphan.relative_to(root).as_posix(), "temp": temp.relative_to(root).as_posix()}


def test_verify_reports_each_kind_of_problem_and_repair_removes_them(tmp_path: Path) -> None:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)
    with FeatureStore.open(settings=settings) as store:
        paths = damaged_cache(store)
        report = verify(store)
        assert report.missing_files == [paths["a"]]
        assert report.corrupt_files == [paths["b"]]
        assert report.orphan_files == [paths["orphan"]]
        assert report.temp_files == [paths["temp"]]
        assert report.young_files_skipped == 1 and report.entries == 3 and not report.ok

        repaired = verify(store, repair=True)
        assert repaired.ok and repaired.problems == 4
        assert [e.path for e in store.entries()] == [paths["c"]]
        assert not (tmp_path / paths["b"]).exists() and not (tmp_path / paths["orphan"]).exists()
        assert not (tmp_path / paths["temp"]).exists()
        clean = verify(store)
        assert clean.problems == 0 and clean.ok
        calls: list[int] = []
        store.get_or_compute("AAPL", "returns", {"n": 0}, lambda: calls.append(1) or frame(0))
        assert calls == [1], "a repaired key is recomputed"


def test_the_command_exits_1_on_problems_and_0_after_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FeatureStore.open(settings=FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)) as store:
        damaged_cache(store)
    assert main(["--cache-dir", str(tmp_path), "--dsn", "", "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert (found["problems"], found["ok"], found["backend"]) == (4, False, "duckdb")
    assert main(["--cache-dir", str(tmp_path), "--dsn", "", "--repair"]) == 0
    assert "repaired 4 problems" in capsys.readouterr().out
    assert main(["--cache-dir", str(tmp_path), "--dsn", ""]) == 0
    assert capsys.readouterr().out.rstrip().endswith("ok")


@pytest.mark.postgres
def test_verify_checks_the_postgresql_manifest(
    tmp_path: Path, pg_schema_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with FeatureStore.open(settings=FeatureStoreSettings(pg_dsn=pg_schema_dsn, cache_dir=tmp_path)) as store:
        paths = damaged_cache(store)
    assert main(["--cache-dir", str(tmp_path), "--dsn", pg_schema_dsn, "--json", "--repair"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "postgresql"
    assert (report["missing_files"], report["corrupt_files"]) == ([paths["a"]], [paths["b"]])
    with FeatureStore.open(settings=FeatureStoreSettings(pg_dsn=pg_schema_dsn, cache_dir=tmp_path)) as store:
        assert [e.path for e in store.entries()] == [paths["c"]]


def test_repair_on_the_defaults_removes_orphans_and_temp_files_older_than_a_publish_can_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FeatureStore.open(settings=FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)) as store:
        kept = store.publish("AAPL", "returns", {"n": 1}, frame(1)).entry.path
    folder = (tmp_path / kept).parent
    orphan, temp, fresh = folder / ORPHAN, folder / TEMP, folder / YOUNG
    two_minutes_ago = time.time() - 120  # a crashed writer's leftovers, as found a little later
    for path in (orphan, temp, fresh):
        path.write_bytes(b"PAR1")
    for path in (orphan, temp):
        os.utime(path, (two_minutes_ago, two_minutes_ago))
    assert main(["--cache-dir", str(tmp_path), "--dsn", "", "--repair"]) == 0
    out = capsys.readouterr().out
    assert not orphan.exists() and not temp.exists()
    assert fresh.exists() and (tmp_path / kept).exists()
    assert "1 files without a row left alone: younger than --min-age-s 60" in out
    assert "--min-age-s 0 when no process writes to this cache" in out


def test_help_gives_every_options_default() -> None:
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        main(["--help"])
    options = text.getvalue().split("options:", 1)[1]
    for option in ("--cache-dir", "--dsn", "--repair", "--min-age-s", "--json"):
        entry = options.split(option, 1)[1].split("\n  --", 1)[0]
        assert "default" in " ".join(entry.split()), option
    assert "(default: 60," in " ".join(options.split())


def test_repair_deletes_only_files_of_the_frame_layout_whatever_a_row_names(tmp_path: Path) -> None:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)
    with FeatureStore.open(settings=settings) as store:
        good = store.publish("AAPL", "returns", {"n": 1}, frame(1)).entry
        folder = (tmp_path / good.path).parent
        bystanders = [folder / "notes.parquet", folder / ".notes.tmp", tmp_path / "exports" / "x.parquet",
                      tmp_path / "frames" / "own.parquet", tmp_path / "keep.txt"]  # fmt: skip
        for path in bystanders:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"PAR1")
            os.utime(path, (OLD, OLD))
        tampered = {}
        for n, target in enumerate(["manifest.duckdb", "keep.txt", "exports/x.parquet", "../outside", ORPHAN]):
            entry = store.publish("MSFT", "returns", {"n": n}, frame(n)).entry
            store.files.remove(entry.path)
            store.manifest.insert(dataclasses.replace(entry, path=target), replace=True)
            tampered[target] = entry
        report = verify(store, repair=True, min_age_s=0)
        assert sorted(report.foreign_rows) == sorted(tampered)
        assert report.orphan_files == [] and report.temp_files == [] and report.corrupt_files == []
        assert [entry.path for entry in store.entries()] == [good.path]
    for path in [*bystanders, tmp_path / "manifest.duckdb"]:
        assert path.exists(), path
    with FeatureStore.open(settings=settings) as store:
        assert verify(store, min_age_s=0).ok


def test_frames_published_before_the_frames_folder_are_read_where_they_are_and_verify_clean(tmp_path: Path) -> None:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)
    with FeatureStore.open(settings=settings) as store:
        entry = store.publish("AAPL", "returns", {"n": 1}, frame(1)).entry
        legacy = entry.path.removeprefix("frames/")
        (tmp_path / legacy).parent.mkdir(parents=True)
        (tmp_path / entry.path).rename(tmp_path / legacy)
        store.manifest.insert(dataclasses.replace(entry, path=legacy), replace=True)
    with FeatureStore.open(settings=settings) as store:
        calls: list[int] = []
        table = store.get_or_compute("AAPL", "returns", {"n": 1}, lambda: calls.append(1) or frame(1))
        assert calls == [] and table.equals(frame(1))
        assert verify(store, min_age_s=0).problems == 0
        (tmp_path / legacy).with_name(ORPHAN).write_bytes(b"PAR1")
        assert verify(store, repair=True, min_age_s=0).orphan_files == [f"AAPL/returns/{ORPHAN}"]
        assert (tmp_path / legacy).exists()
