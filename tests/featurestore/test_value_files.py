"""featurestore.value_files and featurestore.fleet against prometheus_client's files: what the code relies on in the
installed version (it fails naming what changed), and damaged files, which never fail a read nor add to it."""

from __future__ import annotations

import inspect
import json
import os
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import Counter, Gauge, Histogram, metrics, mmap_dict, multiprocess, values

from featurestore import compaction, value_files
from featurestore.fleet import FleetReader

COUNTS = {"AAPL": 3.0, "MSFT": 5.0, "A_SYMBOL_WITH_A_LONGER_NAME": 7.0, "X": 11.0}


def _key(symbol: str) -> str:
    return mmap_dict.mmap_key("featurestore_hits", "featurestore_hits_total", ["symbol"], [symbol], "Cache hits")


def _write(path: Path, counts: dict[str, float]) -> None:
    file = mmap_dict.MmapedDict(str(path))  # type: ignore[no-untyped-call]
    for symbol, count in counts.items():
        file.write_value(_key(symbol), count, 0.0)  # type: ignore[no-untyped-call]
    file.close()  # type: ignore[no-untyped-call]


def _hits(reader: FleetReader) -> dict[str, float]:
    return {
        labels["symbol"]: value for name, labels, value in reader.read().samples() if name == "featurestore_hits_total"
    }


def test_prometheus_client_still_writes_the_layout_and_has_the_private_names_this_code_reads(tmp_path: Path) -> None:
    """When this fails, the pin in pyproject.toml was widened without checking fleet.py, value_files.py,
    folder_values.py, exposition.py and compaction.py against the new version: re-check them, then widen it."""
    path = tmp_path / "counter_1-test.db"
    _write(path, {"AAPL": 3.0})
    data = path.read_bytes()
    assert len(data) == mmap_dict._INITIAL_MMAP_SIZE == 1 << 16, "the initial file size changed"
    key = _key("AAPL").encode()
    padding = 8 - (len(key) + 4) % 8
    entry = struct.pack(f"i{len(key)}s{padding}sdd", len(key), key, b" " * padding, 3.0, 0.0)
    assert data[:4] == struct.pack("i", 8 + len(entry)), "the used-bytes header changed"
    assert data[8 : 8 + len(entry)] == entry, "an entry is no longer length, JSON key padded to 8, value, timestamp"
    assert json.loads(key) == ["featurestore_hits", "featurestore_hits_total", {"symbol": "AAPL"}, "Cache hits"]
    assert value_files.read_values(data) == ({key: 3.0}, frozenset())

    assert "process_identifier" in inspect.signature(values.MultiProcessValue).parameters, (
        "values.MultiProcessValue no longer takes process_identifier: files would be named by pid again"
    )
    assert "_multiprocess" in vars(values.MultiProcessValue()), "the multiprocess value class lost its _multiprocess"
    assert "{}_{}.db" in inspect.getsource(values.MultiProcessValue), "value files are no longer <prefix>_<id>.db"
    for name in ("gauge_livesum_9-x.db", "gauge_livemax_9-x.db", "counter_9-x.db"):
        _write(tmp_path / name, {"AAPL": 1.0})
    multiprocess.mark_process_dead("9-x", str(tmp_path))  # type: ignore[no-untyped-call]
    assert sorted(p.name for p in tmp_path.glob("*_9-x.db")) == ["counter_9-x.db"], (
        "mark_process_dead no longer removes exactly the live gauges' files of an identity"
    )
    assert multiprocess._LIVE_GAUGE_MULTIPROCESS_MODES == compaction.LIVE_MODES, "the live gauge modes changed"
    for family in (Counter, Gauge, Histogram):
        assert "values" in family._metric_init.__code__.co_names, f"{family.__name__}._metric_init changed"
    labelled = Counter("c", "c", ["a"], registry=None)
    histogram = Histogram("h", "h", registry=None)
    for name in ("_labelnames", "_name", "_documentation", "_lock", "_metrics"):
        assert hasattr(labelled, name), f"MetricWrapperBase lost {name}, which exposition.py reads"
    for name in ("_buckets", "_sum", "_upper_bounds"):
        assert hasattr(histogram, name), f"Histogram lost {name}, which exposition.py reads"
    assert hasattr(metrics.MetricWrapperBase, "_metric_init")


def test_a_compacted_file_is_read_by_prometheus_clients_own_reader_with_its_absorbed_record_after_used() -> None:
    data = value_files.encode({_key("AAPL").encode(): 4.0}, ["1-a", "2-b"])
    assert [(k, v) for k, v, _, _ in mmap_dict._read_all_values(data)] == [(_key("AAPL"), 4.0)]
    assert value_files.read_values(data) == ({_key("AAPL").encode(): 4.0}, frozenset({"1-a", "2-b"}))


def _damaged(original: bytes, damage: tuple[str, int, int, bytes]) -> bytes:
    kind, at, number, noise = damage
    used = struct.unpack_from("i", original)[0]
    data = bytearray(original)
    if kind == "truncate":
        return bytes(data[: at % (len(data) + 1)])
    if kind == "random bytes":
        start = at % len(data)
        data[start : start + len(noise)] = noise
        return bytes(data[: len(original)])
    if kind == "header":
        struct.pack_into("i", data, 0, number)
        return bytes(data)
    # Damage to one entry: its length field (past the end, or anything) or its key (not JSON, or the wrong shape).
    positions = []
    position = 8
    while position < used:
        length = struct.unpack_from("i", data, position)[0]
        positions.append((position, length))
        position += 4 + length + (8 - (length + 4) % 8) + 16
    position, length = positions[at % len(positions)]
    if kind == "entry length":
        struct.pack_into("i", data, position, number)
    elif kind == "bad json key":
        data[position + 4 : position + 4 + length] = (noise * length)[:length]
    else:  # a JSON key of the wrong shape, of the same length
        shape = json.dumps(["featurestore_hits", {"symbol": 1}]).encode()
        data[position + 4 : position + 4 + length] = (shape + b" " * length)[:length]
    return bytes(data)


DAMAGE = st.tuples(
    st.sampled_from(["truncate", "random bytes", "header", "entry length", "bad json key", "wrong key shape"]),
    st.integers(min_value=0, max_value=1 << 20),
    st.one_of(st.integers(min_value=-(1 << 31), max_value=(1 << 31) - 1), st.integers(min_value=0, max_value=1 << 18)),
    st.binary(min_size=1, max_size=64),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=DAMAGE)
def test_a_damaged_file_never_fails_the_read_nor_adds_to_it_and_every_other_file_is_served(
    damage: tuple[str, int, int, bytes],
) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        _write(folder / "counter_1-healthy.db", COUNTS)
        damaged = {f"D_{symbol}": count for symbol, count in COUNTS.items()}
        _write(folder / "counter_2-damaged.db", damaged)
        original = (folder / "counter_2-damaged.db").read_bytes()
        (folder / "counter_2-damaged.db").write_bytes(_damaged(original, damage))
        reader = FleetReader(folder)
        for _ in range(2):  # the second read goes through the reader's cached index
            served = _hits(reader)
            assert {symbol: served.get(symbol) for symbol in COUNTS} == COUNTS  # every other file, in full
            if damage[0] == "random bytes":
                continue  # noise may rewrite a stored value: then that value is what the file holds
            assert set(served) <= set(COUNTS) | set(damaged)  # no series that the file does not hold
            for symbol, count in damaged.items():
                assert served.get(symbol, 0.0) in (0.0, count)  # never more than the file holds, never half an entry


def test_a_file_cut_inside_its_header_or_claiming_more_than_it_has_is_skipped_once_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path / "counter_1-healthy.db", COUNTS)
    (tmp_path / "counter_2-short.db").write_bytes(b"\x10\0\0")
    big = bytearray((tmp_path / "counter_1-healthy.db").read_bytes())
    struct.pack_into("i", big, 0, 1 << 30)
    (tmp_path / "counter_3-big.db").write_bytes(bytes(big))
    reader = FleetReader(tmp_path)
    with caplog.at_level("WARNING", logger="featurestore.fleet"):
        first, second = reader.read(), reader.read()
    assert sorted(first.skipped) == sorted(second.skipped) == ["counter_2-short.db", "counter_3-big.db"]
    assert first.total("featurestore_hits") == sum(COUNTS.values())
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings  # once per file, not once per read
    assert any(str(tmp_path / "counter_3-big.db") in line and "1073741824" in line for line in warnings)
    os.unlink(tmp_path / "counter_3-big.db")
    assert sorted(reader.read().skipped) == ["counter_2-short.db"]
