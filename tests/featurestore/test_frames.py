"""get_or_compute takes what Python users compute with (pyarrow, pandas, polars), converts it once without a copy
where Arrow allows, always returns a pyarrow.Table, and refuses anything else before a byte is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from featurestore import FeatureStore
from featurestore.instruments import build as build_instruments
from featurestore.settings import FeatureStoreSettings

PARAMS = {"window": 5}


@pytest.fixture
def store(tmp_path: Path, registry: CollectorRegistry) -> Iterator[FeatureStore]:
    settings = FeatureStoreSettings(pg_dsn=None, cache_dir=tmp_path / "cache")
    with FeatureStore.open(settings=settings, instruments=build_instruments(registry)) as opened:
        yield opened


def parquet_files(store: FeatureStore) -> list[Path]:
    return sorted(store.files.root.rglob("*.parquet"))


def first_buffer(table: pa.Table, column: str) -> int:
    address: int = table.column(column).chunks[0].buffers()[1].address
    return address


def test_a_pandas_frame_is_stored_and_returned_as_a_table_with_its_index(store: FeatureStore) -> None:
    closes = pd.DataFrame(
        {"close": np.linspace(100.0, 107.0, 8)}, index=pd.date_range("2026-01-05", periods=8, freq="D", name="day")
    )
    computed = store.get_or_compute("AAPL", "closes", PARAMS, lambda: closes)
    assert isinstance(computed, pa.Table)
    assert first_buffer(computed, "close") == closes["close"].to_numpy().ctypes.data  # wrapped, not copied
    cached = store.get_or_compute("AAPL", "closes", PARAMS, lambda: pytest.fail("a hit must not compute"))
    assert isinstance(cached, pa.Table)
    assert cached.to_pandas().equals(closes)
    assert len(parquet_files(store)) == 1


def test_a_polars_frame_is_stored_and_returned_as_a_table_without_a_copy(store: FeatureStore) -> None:
    closes = pl.DataFrame({"symbol": ["AAPL"] * 8, "close": [100.0 + i for i in range(8)]})
    computed = store.get_or_compute("AAPL", "closes", PARAMS, lambda: closes)
    assert isinstance(computed, pa.Table)
    assert first_buffer(computed, "close") == closes["close"].to_numpy().ctypes.data
    cached = store.get_or_compute("AAPL", "closes", PARAMS, lambda: pytest.fail("a hit must not compute"))
    assert pl.from_arrow(cached).equals(closes)  # type: ignore[union-attr]


def test_a_record_batch_and_a_table_are_taken_as_they_are(store: FeatureStore) -> None:
    table = pa.table({"close": [1.0, 2.0]})
    assert store.get_or_compute("AAPL", "table", PARAMS, lambda: table) is table
    batch = pa.record_batch({"close": [1.0, 2.0]})
    assert store.get_or_compute("AAPL", "batch", PARAMS, lambda: batch).equals(table)


def test_anything_else_is_refused_naming_its_type_and_nothing_is_written(
    store: FeatureStore, registry: CollectorRegistry
) -> None:
    with pytest.raises(TypeError, match=r"must return a pyarrow\.Table, a pandas DataFrame or a polars DataFrame, "
                       r"got dict"):  # fmt: skip
        store.get_or_compute("AAPL", "closes", PARAMS, lambda: {"close": [1.0, 2.0]})
    with pytest.raises(TypeError, match=r"got pandas\.Series"):
        store.get_or_compute("AAPL", "closes", PARAMS, lambda: pd.Series([1.0, 2.0]))
    assert list(store.entries()) == [] and parquet_files(store) == []
    assert registry.get_sample_value("featurestore_misses_total", {"symbol": "AAPL"}) is None


def test_a_pandas_frame_pyarrow_cannot_convert_is_refused_before_anything_is_written(store: FeatureStore) -> None:
    mixed = pd.DataFrame({"close": [1.0, "n/a"]}, dtype=object)
    with pytest.raises(TypeError, match=r"pandas DataFrame that pyarrow cannot convert.*close"):
        store.get_or_compute("AAPL", "closes", PARAMS, lambda: mixed)
    assert list(store.entries()) == [] and parquet_files(store) == []


def test_a_compute_annotated_with_another_type_is_refused_before_it_runs(store: FeatureStore) -> None:
    calls: list[int] = []

    def build_closes() -> dict[str, list[float]]:
        calls.append(1)
        return {"close": [1.0]}

    def build_dict() -> dict:  # type: ignore[type-arg]
        calls.append(1)
        return {"close": [1.0]}

    with pytest.raises(TypeError, match=r"annotated to return dict"):
        store.get_or_compute("AAPL", "closes", PARAMS, build_dict)
    with pytest.raises(TypeError, match=r"got dict"):  # a generic alias is checked on the value
        store.get_or_compute("AAPL", "closes", PARAMS, build_closes)
    assert calls == [1]

    def build_frame() -> pd.DataFrame:
        return pd.DataFrame({"close": [1.0]})

    assert store.get_or_compute("AAPL", "closes", PARAMS, build_frame).num_rows == 1
