"""Frames live apart from the store's own files: no valid name collides with the manifest, its WAL, the fallback or
the metrics folder, and only paths of the frame layout are read from a row or ever deleted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.errors import InvalidName
from featurestore.files import FrameUnreadable
from featurestore.keys import FrameKey
from featurestore.layout import FALLBACK_FOLDER, MANIFEST_FILE, is_frame_path, is_temp_path, paths_of
from featurestore.settings import FeatureStoreSettings

SHA = "ab" * 32
KEY = FrameKey.of("AAPL", "returns", {})
STORE_NAMES = [MANIFEST_FILE, f"{MANIFEST_FILE}.wal", f"{MANIFEST_FILE}.tmp", FALLBACK_FOLDER, "frames"]


def frame(value: int) -> pa.Table:
    return pa.table({"value": [value]})


@pytest.mark.parametrize("name", STORE_NAMES)
def test_a_symbol_or_feature_named_like_a_store_file_is_an_ordinary_name(tmp_path: Path, name: str) -> None:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)
    with FeatureStore.open(settings=settings):
        pass  # the manifest exists and is checkpointed: no WAL until the next write
    with FeatureStore.open(settings=settings) as store:
        store.publish(name, "returns", {}, frame(1))
        store.publish("AAPL", name, {}, frame(2))
    assert (tmp_path / MANIFEST_FILE).is_file()
    with FeatureStore.open(settings=settings) as store:  # the manifest still opens, its WAL replayed
        assert store.get_or_compute(name, "returns", {}, lambda: frame(0)).equals(frame(1))
        assert store.get_or_compute("AAPL", name, {}, lambda: frame(0)).equals(frame(2))
        assert store.manifest.count() == 2


@pytest.mark.postgres
def test_on_postgresql_a_symbol_named_fallback_stays_out_of_the_fallback_folder(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    settings = FeatureStoreSettings(pg_dsn=pg_schema_dsn, cache_dir=tmp_path)
    with FeatureStore.open(settings=settings) as store:
        store.publish(FALLBACK_FOLDER, "returns", {}, frame(1))
        assert store.get_or_compute(FALLBACK_FOLDER, "returns", {}, lambda: frame(0)).equals(frame(1))
    fallback = tmp_path / FALLBACK_FOLDER
    assert [path for path in fallback.rglob("*") if path.suffix != ".duckdb"] == []


def test_frame_paths_are_recognised_in_this_layout_and_the_one_before_it() -> None:
    current, legacy = paths_of(KEY, SHA)
    assert current == f"frames/AAPL/returns/{KEY.params_digest}-{SHA[:16]}.parquet"
    assert legacy == current.removeprefix("frames/")
    assert is_frame_path(current) and is_frame_path(legacy)
    temp = f"frames/AAPL/returns/.{current.rpartition('/')[2]}.4242-0123abcd.tmp"
    assert is_temp_path(temp) and not is_frame_path(temp)
    for other in [MANIFEST_FILE, f"{MANIFEST_FILE}.wal", "fallback/host-1-abc.duckdb", ".metrics/counter_1.db",
                  "frames/AAPL/returns/notes.parquet", f"x/{current}", f"../{legacy}", f"frames/.h/r/{current[-89:]}",
                  "frames/AAPL/returns/.notes.tmp"]:  # fmt: skip
        assert not is_frame_path(other) and not is_temp_path(other), other


def test_a_row_naming_a_file_outside_the_frame_layout_is_never_read_nor_deleted(tmp_path: Path) -> None:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path)
    bystander = tmp_path / "keep.txt"
    bystander.write_text("not a frame")
    with FeatureStore.open(settings=settings) as store:
        entry = store.publish("AAPL", "returns", {}, frame(1)).entry
        tampered = dataclasses.replace(entry, path="keep.txt", bytes=bystander.stat().st_size)
        with pytest.raises(FrameUnreadable) as caught:
            store.files.read(tampered)
        assert caught.value.reason == "corrupt"
        with pytest.raises(InvalidName):
            store.files.remove("keep.txt")
        with pytest.raises(InvalidName):
            store.files.remove(MANIFEST_FILE)
        store.manifest.insert(tampered, replace=True)
        store.forget("AAPL", "returns", {})  # the frame it published is remembered intact (verified.py): ask the row
        assert store.get_or_compute("AAPL", "returns", {}, lambda: frame(3)).equals(frame(3))  # recomputed
    assert bystander.read_text() == "not a frame"
