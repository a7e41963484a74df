"""The embedded default's metrics folder: the instruments of one registry write their values to files, without
PROMETHEUS_MULTIPROC_DIR and without changing any other prometheus_client metric of the process.

    FeatureStore.open() / python -m service, no FEATURESTORE_PG_DSN, no PROMETHEUS_MULTIPROC_DIR
        │ build(default_folder=<cache>/.metrics): acquire() registers this process there (tidying a folder nobody
        │ uses), then the catalog's Counter, Gauge and Histogram are built from classes of our own
        ▼
    <cache>/.metrics/counter_<id>.db, histogram_<id>.db, gauge_<mode>_<id>.db, process_<id>.alive
        │ the layout of prometheus_client's multiprocess mode, so featurestore.fleet (and MultiProcessCollector) read
        ▼ it; the service on the same cache folder serves the aggregate
    python -m service: /api/v1/monitoring/metrics

prometheus_client picks one value class for the whole process at import (`values.ValueClass`, from the environment).
Our classes differ from its own only in `_metric_init`: the same function (its code, so the same file keys),
evaluated with a `values` whose `ValueClass` is `FolderValue`. The module global is never touched, so other
libraries' metrics in the process keep their in-memory values, and nothing sets os.environ.

A `FolderValue` keeps this registry's value in memory (what the registry's own collect() shows, as before) and adds
each increment to the process's file entry (read, add, write under this process's lock of its files; other
processes write files of their own): two registries' counters in one process on one folder add up instead of
overwriting each other (a gauge's `set` writes the value, so the last registry to set it wins), and a forked
child writes files of its own identity (featurestore.multiprocess.process_identity).

Files of dead processes stay (their counts are part of the sums); when a process registers and no other process is
alive in the folder (no scrape can be reading), it empties the folder first, so it does not grow run after run.
"""

from __future__ import annotations

import os
import threading
import types
import weakref
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from featurestore import multiprocess

M = TypeVar("M", Counter, Gauge, Histogram)


class FolderFiles:
    """This process's value files in one folder, shared by every registry of the process that writes there."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self._identity = ""  # whose files `_files` holds
        self._files: dict[str, MmapedDict] = {}
        self.users = 0
        self.active = True  # False once released: a late write (an instrument used after its store closed) is dropped
        _all_files.add(self)

    def _file(self, prefix: str) -> MmapedDict | None:
        if not self.active:
            return None
        identity = multiprocess.process_identity()
        if identity != self._identity:  # a forked child: the parent's files are the parent's; it registers as itself
            multiprocess.register_process(self.folder)
            self._identity, self._files = identity, {}
        file = self._files.get(prefix)
        if file is None:
            path = self.folder / f"{prefix}_{identity}.db"
            file = self._files[prefix] = MmapedDict(str(path))  # type: ignore[no-untyped-call]
        return file

    def touch(self, prefix: str, key: str) -> None:
        """Create the entry at zero (the series then exists in the aggregate, as a fresh in-memory one does)."""
        with self.lock:
            if (file := self._file(prefix)) is not None:
                file.read_value(key)  # type: ignore[no-untyped-call]

    def add(self, prefix: str, key: str, amount: float) -> None:
        with self.lock:
            if (file := self._file(prefix)) is not None:
                value, _ = file.read_value(key)  # type: ignore[no-untyped-call]
                file.write_value(key, value + amount, 0.0)  # type: ignore[no-untyped-call]

    def set(self, prefix: str, key: str, value: float, timestamp: float) -> None:
        with self.lock:
            if (file := self._file(prefix)) is not None:
                file.write_value(key, value, timestamp)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        with self.lock:
            self.active = False
            for file in self._files.values():
                file.close()  # type: ignore[no-untyped-call]
            self._files.clear()

    def value_class(self) -> type[FolderValue]:
        return type("BoundFolderValue", (FolderValue,), {"files": self})


_all_files: weakref.WeakSet[FolderFiles] = weakref.WeakSet()


def _new_locks_in_child() -> None:
    for files in _all_files:
        files.lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_new_locks_in_child)


class FolderValue:
    """The value of one sample: the signature of prometheus_client's ValueClass, bound to a FolderFiles."""

    files: FolderFiles

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: Any,
        labelvalues: Any,
        help_text: str,
        multiprocess_mode: str = "",
        **kwargs: Any,
    ) -> None:
        self._prefix = f"{typ}_{multiprocess_mode}" if typ == "gauge" else typ
        self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        self._value = 0.0
        self._lock = threading.Lock()
        self.files.touch(self._prefix, self._key)

    def inc(self, amount: float) -> None:
        with self._lock:
            self._value += amount
            self.files.add(self._prefix, self._key, amount)

    def set(self, value: float, timestamp: float | None = None) -> None:
        with self._lock:
            self._value = value
            self.files.set(self._prefix, self._key, value, timestamp or 0.0)

    def set_exemplar(self, exemplar: Any) -> None:
        return  # like the multiprocess mode: no exemplars in files

    def get(self) -> float:
        with self._lock:
            return self._value

    def get_exemplar(self) -> None:
        return None


def _writing_to(base: type[M], value_class: type[FolderValue]) -> type[M]:
    """`base` with its `_metric_init` evaluated against `values.ValueClass = value_class`."""
    init = base._metric_init
    if "values" not in init.__code__.co_names:
        raise RuntimeError(f"prometheus_client's {base.__name__}._metric_init no longer reads values.ValueClass")
    scope = {**init.__globals__, "values": types.SimpleNamespace(ValueClass=value_class)}
    rebound = types.FunctionType(init.__code__, scope, init.__name__, init.__defaults__, init.__closure__)
    return type(base.__name__, (base,), {"_metric_init": rebound, "__module__": __name__})


class MetricClasses:
    """Counter, Gauge and Histogram whose values go to one folder's files."""

    def __init__(self, files: FolderFiles) -> None:
        value_class = files.value_class()
        self.files = files
        self.counter = _writing_to(Counter, value_class)
        self.gauge = _writing_to(Gauge, value_class)
        self.histogram = _writing_to(Histogram, value_class)


_open: dict[Path, FolderFiles] = {}
_open_lock = threading.Lock()


def acquire(folder: Path) -> MetricClasses:
    """Register this process in `folder` (created if needed; emptied first when no process is alive there) and the
    metric classes writing to it; `release(folder)` once per acquire."""
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    with _open_lock:
        files = _open.get(folder)
        if files is None or files.users == 0:
            multiprocess.register_process(folder, tidy=True)
            if files is None:
                files = _open[folder] = FolderFiles(folder)
            files.active = True
        files.users += 1
        return MetricClasses(files)


def release(folder: Path) -> None:
    """The last registry of this process on `folder` is done: close the files and leave as a process that ended
    (its live gauges go, its counts stay)."""
    folder = folder.resolve()
    with _open_lock:
        files = _open.get(folder)
        if files is None or files.users == 0:
            return
        files.users -= 1
        if files.users == 0:
            files.close()
            multiprocess.unregister_process(folder)
