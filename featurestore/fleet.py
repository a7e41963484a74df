"""The aggregate of a multiprocess metrics folder: what prometheus_client's MultiProcessCollector serves, read fast.

    <folder>/counter_<id>.db, histogram_<id>.db, gauge_<mode>_<id>.db   (one per process and kind, mmap'd)
             counter_compacted.db, histogram_compacted.db               (ended processes', featurestore.compaction)
        │ FleetReader.read(), holding the folder's compaction lock shared: compacted files first (they list the
        │ process files they absorbed, which are then not read); per file, parse only the entries appended since the
        │ last read (a key never moves), then add every value into its series (max, min or most recent for gauges
        │ of those modes). A file that cannot be parsed is skipped whole, named in `Aggregate.skipped` and logged
        │ once (featurestore.value_files says what is damage and what is a file growing while it is read).
        ▼
    Aggregate ──text()──▶ Prometheus text format 0.0.4 (each series' line prefix cached)
              ──samples()──▶ (name, labels, value) for the service's SampleRing

MultiProcessCollector re-parses every key of every file and builds a Sample per value on each scrape: 1.4 s for 64
processes at the symbol cap on this machine. Here a scrape costs a read and an add per value, plus formatting of the
aggregated series only. The file layout (featurestore.value_files) is read without prometheus_client's internals;
test_fleet.py checks the output against MultiProcessCollector's for the same folder.

A parse builds the file's new index aside and the shared state learns its series only once every new entry is
valid, so a failed parse leaves nothing behind: a retry cannot add an entry twice.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client.utils import floatToGoString

from featurestore import compaction, value_files
from featurestore.metrics import CATALOG

log = logging.getLogger(__name__)
_number: Callable[[float], str] = floatToGoString
_SUMMED_GAUGE_MODES = frozenset({"sum", "livesum"})
_GAUGE_MODES = frozenset(
    {"all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"}
)
_ORDER = {spec.name: index for index, spec in enumerate(CATALOG)}
Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _labels_text(pairs: Labels) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(pairs))
    return f"{{{inner}}}" if inner else ""


@dataclass
class _Child:
    """One exposed series of a family (a histogram child holds its buckets and sum)."""

    labels: Labels
    slot: int = -1  # counter, gauge, summary sample, or the histogram's _sum
    buckets: dict[float, int] = field(default_factory=dict)  # histogram: upper bound -> slot of its own count
    text: tuple[str, ...] = ()  # cached line prefixes, built at first output


@dataclass
class _Family:
    name: str  # the metric name in the files (a counter's without `_total`)
    kind: str  # counter, gauge, histogram, summary
    help: str
    children: dict[tuple[str, Labels], _Child] = field(default_factory=dict)  # by (sample name, labels without le)

    @property
    def exposed_name(self) -> str:
        return f"{self.name}_total" if self.kind == "counter" else self.name


@dataclass
class _FileIndex:
    inode: int
    parsed: int = 8  # bytes of entries parsed so far (the header takes 8)
    offsets: list[int] = field(default_factory=list)  # value positions, in doubles
    slots: list[int] = field(default_factory=list)
    getter: Callable[[Any], Any] | None = None
    absorbed: frozenset[str] = frozenset()  # a compacted file's: identities whose files it holds the counts of
    absorbed_read: bool = False
    # A summed file's value positions in slot order, and those slots: files with the same series (whatever order
    # their process created them in) share a layout and are added together by pyarrow, without a float object each.
    layout: tuple[int, ...] = ()
    by_slot: pa.Array | None = None


@dataclass(frozen=True)
class Aggregate:
    """One read of the folder: a value per series slot, which slots some file held, and the files skipped (by name,
    with why)."""

    reader: FleetReader
    values: list[float]
    present: set[int]
    skipped: dict[str, str] = field(default_factory=dict)

    def families(self) -> Iterator[tuple[_Family, list[_Child]]]:
        families = sorted(self.reader.families.values(), key=lambda f: (_ORDER.get(f.name, len(_ORDER)), f.name))
        for family in families:
            children = [child for child in family.children.values() if self._present(child)]
            if children:
                yield family, children

    def _present(self, child: _Child) -> bool:
        return child.slot in self.present or any(slot in self.present for slot in child.buckets.values())

    def total(self, family_name: str) -> float:
        """The sum of every series of a counter or gauge family (0 when it has none)."""
        family = self.reader.families.get(family_name)
        if family is None:
            return 0.0
        return sum(self.values[child.slot] for child in family.children.values() if child.slot in self.present)

    def text(self, names: set[str] | None = None) -> str:
        """Prometheus text format 0.0.4, only the families in `names` (exposed names) when given."""
        out: list[str] = []
        for family, children in self.families():
            exposed = family.exposed_name
            if names is not None and exposed not in names:
                continue
            out.append(f"# HELP {exposed} {_escape_help(family.help)}\n")
            out.append(f"# TYPE {exposed} {family.kind}\n")
            for child in children:
                if family.kind == "histogram":
                    self._histogram_lines(family, child, out)
                else:
                    if not child.text:
                        child.text = (f"{exposed}{_labels_text(child.labels)} ",)
                    out.append(f"{child.text[0]}{_number(self.values[child.slot])}\n")
        return "".join(out)

    def _histogram_lines(self, family: _Family, child: _Child, out: list[str]) -> None:
        bounds = sorted(child.buckets)
        if len(child.text) != len(bounds) + 2:
            child.text = (
                *(f"{family.name}_bucket{_labels_text((*child.labels, ('le', _number(bound))))} " for bound in bounds),
                f"{family.name}_count{_labels_text(child.labels)} ",
                f"{family.name}_sum{_labels_text(child.labels)} ",
            )
        total = 0.0
        for index, bound in enumerate(bounds):
            total += self.values[child.buckets[bound]]
            out.append(f"{child.text[index]}{_number(total)}\n")
        out.append(f"{child.text[-2]}{_number(total)}\n")
        if child.slot >= 0:
            out.append(f"{child.text[-1]}{_number(self.values[child.slot])}\n")

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every sample as registry.collect() would give it: histograms cumulative, with `_count` and `_sum`."""
        for family, children in self.families():
            for child in children:
                labels = dict(child.labels)
                if family.kind != "histogram":
                    yield family.exposed_name, labels, self.values[child.slot]
                    continue
                total = 0.0
                for bound in sorted(child.buckets):
                    total += self.values[child.buckets[bound]]
                    yield f"{family.name}_bucket", {**labels, "le": _number(bound)}, total
                yield f"{family.name}_count", labels, total
                if child.slot >= 0:
                    yield f"{family.name}_sum", labels, self.values[child.slot]


class FleetReader:
    """Reads one metrics folder again and again; keeps what it parsed (keep one per folder, one read at a time)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.families: dict[str, _Family] = {}
        self._files: dict[str, _FileIndex] = {}
        self._slots: dict[tuple[bytes, str], int] = {}  # (raw key, file kind and pid part) -> slot
        self._combine: list[str] = []  # slot -> sum, max, min, mostrecent
        self._warned: set[str] = set()  # skipped files already logged (each once while it stays)

    def read(self) -> Aggregate:
        values = [0.0] * len(self._combine)
        stamps: dict[int, float] = {}
        present: set[int] = set()
        summed: dict[tuple[int, ...], pa.Array] = {}
        skipped: dict[str, str] = {}
        absorbed: set[str] = set()  # file names a compacted file holds the counts of
        with compaction.reading(self.folder):
            names = [name for name in os.listdir(self.folder) if name.endswith(".db")]
            # Compacted files first: they say which process files they absorbed.
            names.sort(key=lambda name: (not name.endswith(f"_{compaction.COMPACTED}.db"), name))
            for name in names:
                if name in absorbed:
                    continue
                try:
                    index = self._read_file(name, values, stamps, present, summed)
                except FileNotFoundError:
                    continue  # removed since the listing: a dead process's live gauges, or compacted
                except (OSError, ValueError, TypeError, struct.error) as exc:  # DamagedFile is a ValueError
                    self._files.pop(name, None)
                    skipped[name] = str(exc) or type(exc).__name__
                    continue
                if index is not None:
                    absorbed.update(f"{name.split('_', 1)[0]}_{identity}.db" for identity in index.absorbed)
        values.extend([0.0] * (len(self._combine) - len(values)))
        for layout, totals in summed.items():
            present.update(layout)
            for slot, total in zip(layout, totals.to_pylist(), strict=True):
                values[slot] += total
        seen = set(names)
        for gone in set(self._files) - seen:
            del self._files[gone]
        for name in sorted(set(skipped) - self._warned):
            log.warning("metrics file %s is skipped, its values are not served: %s", self.folder / name, skipped[name])
        self._warned = (self._warned & seen) | set(skipped)
        return Aggregate(self, values, present, skipped)

    def _read_file(
        self,
        name: str,
        values: list[float],
        stamps: dict[int, float],
        present: set[int],
        summed: dict[tuple[int, ...], pa.Array],
    ) -> _FileIndex | None:
        with open(self.folder / name, "rb") as file:
            stat = os.fstat(file.fileno())
            if stat.st_size == 0:
                return None  # created by prometheus_client an instant ago, not sized yet
            size = stat.st_size - stat.st_size % 8  # whole doubles only
            if size < value_files.HEADER_BYTES:
                raise value_files.DamagedFile(f"{stat.st_size} bytes, shorter than the header")
            with mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as data:
                used = value_files.used_bytes(data)  # read once: the writer may move it meanwhile
                if used > size and os.fstat(file.fileno()).st_size < used:
                    raise value_files.DamagedFile(f"header says {used} bytes used, the file has {stat.st_size}")
                end = min(used, size)  # past `size`: growth this mapping does not hold, read next time
                index = self._files.get(name)
                if index is None or index.inode != stat.st_ino or index.parsed > max(end, value_files.HEADER_BYTES):
                    index = _FileIndex(stat.st_ino)
                if index.parsed < end:
                    index = self._parse(name, data, end, complete=used <= size, index=index)
                if name.endswith(f"_{compaction.COMPACTED}.db") and used <= size and not index.absorbed_read:
                    index.absorbed = value_files.absorbed(data, used)
                    index.absorbed_read = True
                self._files[name] = index
                values.extend([0.0] * (len(self._combine) - len(values)))
                if not index.offsets:
                    return index
                if self._combine[index.slots[0]] == "sum":  # one kind per file: counters, histograms, sums
                    self._add_file(data, size, index, summed)  # present: once per layout, in read()
                    return index
                doubles = memoryview(data).cast("d")
                try:
                    assert index.getter is not None
                    read = index.getter(doubles)
                    found = (read,) if len(index.offsets) == 1 else read
                    self._combine_into(index, found, doubles, values, stamps)
                finally:
                    doubles.release()
        present.update(index.slots)
        return index

    @staticmethod
    def _add_file(data: mmap.mmap, size: int, index: _FileIndex, summed: dict[tuple[int, ...], pa.Array]) -> None:
        buffer = pa.py_buffer(data)
        try:
            doubles = pa.Array.from_buffers(pa.float64(), size // 8, [None, buffer])
            # A copy, so the mmap can close after this; the positions were parsed from this file, inside its size.
            read = pc.array_take(doubles, index.by_slot, boundscheck=False)
            del doubles
        finally:
            del buffer
        previous = summed.get(index.layout)
        summed[index.layout] = read if previous is None else pc.add(previous, read)

    def _combine_into(
        self,
        index: _FileIndex,
        found: tuple[float, ...],
        doubles: memoryview[float],
        values: list[float],
        stamps: dict[int, float],
    ) -> None:
        combine = self._combine[index.slots[0]]
        for offset, slot, value in zip(index.offsets, index.slots, found, strict=True):
            if slot not in stamps:
                values[slot], stamps[slot] = value, doubles[offset + 1]
            elif combine == "max" and value > values[slot]:
                values[slot] = value
            elif combine == "min" and value < values[slot]:
                values[slot] = value
            elif combine == "mostrecent" and doubles[offset + 1] > stamps[slot]:
                values[slot], stamps[slot] = value, doubles[offset + 1]

    def _parse(self, name: str, data: mmap.mmap, end: int, *, complete: bool, index: _FileIndex) -> _FileIndex:
        """`index` extended by the complete entries up to `end`, as a new index: a parse that fails changes nothing."""
        kind, mode, pid = _file_kind(name)
        per_pid = mode in ("all", "liveall")
        combine = "sum" if kind != "gauge" or mode in _SUMMED_GAUGE_MODES else mode.removeprefix("live")
        qualifier = f"{kind}:{mode}:{pid if per_pid else ''}"
        start = max(index.parsed, value_files.HEADER_BYTES)
        found, position = value_files.entries(data, start, end, complete=complete)
        for entry in found:
            if kind == "histogram" and entry.sample_name.endswith("_bucket"):
                try:
                    float(entry.labels["le"])
                except (KeyError, ValueError):
                    raise value_files.DamagedFile(f"the bucket {entry.key[:80]!r} has no numeric le") from None
        # Every entry is valid: the shared state may learn its series (a slot that no file holds is never served).
        offsets, slots = [*index.offsets], [*index.slots]
        for entry in found:
            slot = self._slots.get((entry.key, qualifier))
            if slot is None:
                slot = self._new_slot(entry, qualifier, kind, combine, pid if per_pid else None)
            offsets.append(entry.position // 8)
            slots.append(slot)
        if len(set(slots)) != len(slots):
            raise value_files.DamagedFile("a key appears twice")
        ordered = sorted(zip(slots, offsets, strict=True))
        return _FileIndex(
            index.inode,
            parsed=position,
            offsets=offsets,
            slots=slots,
            getter=itemgetter(*offsets) if offsets else None,
            layout=tuple(slot for slot, _ in ordered),
            by_slot=pa.array([offset for _, offset in ordered], type=pa.int32()),  # files stay far below 16 GiB
        )

    def _new_slot(self, entry: value_files.Entry, qualifier: str, kind: str, combine: str, pid: str | None) -> int:
        labels = dict(entry.labels)
        slot = self._slots[(entry.key, qualifier)] = len(self._combine)
        self._combine.append(combine)
        family = self.families.get(entry.metric_name)
        if family is None:
            family = self.families[entry.metric_name] = _Family(entry.metric_name, kind, entry.help)
        bound = labels.pop("le", None) if kind == "histogram" and entry.sample_name.endswith("_bucket") else None
        if pid is not None:
            labels["pid"] = pid
        pairs: Labels = tuple(sorted(labels.items()))
        child_key = (entry.metric_name if kind == "histogram" else entry.sample_name, pairs)
        child = family.children.get(child_key)
        if child is None:
            child = family.children[child_key] = _Child(pairs)
        if bound is not None:
            child.buckets[float(bound)] = slot
        else:
            child.slot = slot
        return slot


def _file_kind(name: str) -> tuple[str, str, str]:
    """(kind, gauge mode, identity) of `counter_<id>.db` or `gauge_<mode>_<id>.db`; DamagedFile for another name."""
    parts = name[: -len(".db")].split("_")
    kind = parts[0]
    if kind == "gauge" and len(parts) == 3 and parts[1] in _GAUGE_MODES:
        return kind, parts[1], parts[2]
    if kind in ("counter", "histogram", "summary") and len(parts) == 2:
        return kind, "", parts[1]
    raise value_files.DamagedFile("not a prometheus_client value file name (<kind>_<id>.db, gauge_<mode>_<id>.db)")
