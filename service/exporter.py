"""What the service exports: its own registry (one process) or the aggregate of a metrics folder (a fleet), plus the
hit ratio it derives over its window.

    LocalExporter  (PostgreSQL, PROMETHEUS_MULTIPROC_DIR unset): the app's registry, written by featurestore.exposition
    FleetExporter  (PROMETHEUS_MULTIPROC_DIR set, or the embedded default's <cache>/.metrics): compact ended
                   processes' files (featurestore.compaction), then featurestore.fleet's aggregate of every process's
                   files (the service's own too); a file it cannot parse is skipped and named in `skipped`
    both ──▶ read() ──▶ View: text for /metrics, samples for the SampleRing (/slo, /performance)

One service per folder: FleetExporter holds `service.lock` there and refuses to start (MetricsFolderError, exit 2)
while another service holds it. Two would both compact the folder (safe, but each would serve the same counts, and a
Prometheus scraping both would add them up).

`featurestore_hit_ratio` is hits / lookups over the trailing SLO window (the rules' 5m), computed here from the summed
hit and miss counters at each read: a gauge that workers wrote could only be a per-process lifetime ratio (the
multiprocess mode cannot run a collector in the workers), which no longer moves after a day of traffic and starts
over in a fresh process. Keeping the name and the guide's `featurestore_hit_ratio < 0.95` rule (rather than a
recording rule of the same name) keeps /slo, the dashboard and the alert reading the one series the guide names.
"""

from __future__ import annotations

import fcntl
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prometheus_client import generate_latest
from prometheus_client.utils import floatToGoString

from featurestore import compaction, multiprocess
from featurestore.errors import MetricsFolderError
from featurestore.exposition import TextExposition
from featurestore.fleet import Aggregate, FleetReader
from featurestore.instruments import Instruments
from featurestore.metrics import HIT_RATIO, HITS, METRICS_FILES_SKIPPED, MISSES

Sample = tuple[str, dict[str, str], float]
_number: Callable[[float], str] = floatToGoString
# A new point of the ratio's history at most this often: scrapes and snapshots both read, a burst of scrapes
# would otherwise fill the window with near-duplicates.
HISTORY_STEP_S = 1.0


class HitRatioWindow:
    """hits / (hits + misses) between the newest reading at least `window_s` old (the oldest while younger) and now;
    NaN when no lookup happened in between (NaN compares false: no alert on an idle fleet)."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._history: deque[tuple[float, float, float]] = deque()
        self._lock = threading.Lock()

    def ratio(self, hits: float, misses: float) -> float:
        with self._lock:
            now = self._clock()
            history = self._history
            if history and (hits < history[-1][1] or misses < history[-1][2]):
                history.clear()  # the counters started over (the metrics folder was emptied): so does the window
            if not history or now - history[-1][0] >= HISTORY_STEP_S:
                history.append((now, hits, misses))
            cutoff = now - self.window_s
            while len(history) >= 2 and history[1][0] <= cutoff:
                history.popleft()
            _, base_hits, base_misses = history[0]
        window_hits = hits - base_hits
        lookups = window_hits + misses - base_misses
        return window_hits / lookups if lookups > 0 else math.nan


def _gauge_text(name: str, help_text: str, value: float) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} gauge\n{name} {_number(value)}\n"


@dataclass(frozen=True)
class View:
    """One read of every metric the service exports."""

    text: Callable[[set[str] | None], str]
    base_samples: Callable[[], Iterable[Sample]]
    hit_ratio: float
    skipped_files: int = 0

    def render(self, names: set[str] | None = None) -> bytes:
        body = self.text(names)
        if names is None or HIT_RATIO.name in names:
            body += _gauge_text(HIT_RATIO.name, HIT_RATIO.help, self.hit_ratio)
        if names is None or METRICS_FILES_SKIPPED.name in names:
            body += _gauge_text(METRICS_FILES_SKIPPED.name, METRICS_FILES_SKIPPED.help, self.skipped_files)
        return body.encode("utf-8")

    def samples(self) -> Iterator[Sample]:
        yield from self.base_samples()
        yield HIT_RATIO.name, {}, self.hit_ratio
        yield METRICS_FILES_SKIPPED.name, {}, float(self.skipped_files)


class Exporter(Protocol):
    instruments: Instruments

    def read(self) -> View: ...

    def skipped_files(self) -> dict[str, str]:
        """The files the last read skipped, by path, with why (none outside the multiprocess mode)."""
        ...

    def close(self) -> None: ...


class LocalExporter:
    """This process's registry (single-process mode)."""

    def __init__(self, instruments: Instruments, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.instruments = instruments
        self.hit_ratio = HitRatioWindow(window_s, clock)
        self._exposition = TextExposition(instruments)

    def _total(self, name: str) -> float:
        family = self.instruments.families.get(name)
        if family is None:
            return 0.0
        return sum(s.value for metric in family.collect() for s in metric.samples if s.name.endswith("_total"))

    def read(self) -> View:
        ratio = self.hit_ratio.ratio(self._total(HITS.name), self._total(MISSES.name))
        registry = self.instruments.registry

        def text(names: set[str] | None) -> str:
            if names is None:
                return self._exposition.render().decode("utf-8")
            return generate_latest(registry.restricted_registry(names)).decode("utf-8")

        def samples() -> Iterator[Sample]:
            for family in registry.collect():
                for sample in family.samples:
                    if not sample.name.endswith("_created"):
                        yield sample.name, sample.labels, sample.value

        return View(text, samples, ratio)

    def skipped_files(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        return None


SERVICE_LOCK = "service.lock"


class FleetExporter:
    """The aggregate of every process writing to `folder` (multiprocess mode); one read at a time."""

    def __init__(
        self, instruments: Instruments, folder: Path, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.instruments = instruments
        self.folder = folder
        self.hit_ratio = HitRatioWindow(window_s, clock)
        self._service_lock = _serve_alone(folder)
        self._reader = FleetReader(folder)
        self._lock = threading.Lock()
        self._skipped: dict[str, str] = {}

    def aggregate(self) -> Aggregate:
        with self._lock:
            compaction.compact(self.folder)
            aggregate = self._reader.read()
            self._skipped = {str(self.folder / name): why for name, why in aggregate.skipped.items()}
            return aggregate

    def read(self) -> View:
        aggregate = self.aggregate()
        # Counter families are stored under their name without `_total`.
        hits = aggregate.total(HITS.name.removesuffix("_total"))
        misses = aggregate.total(MISSES.name.removesuffix("_total"))
        ratio = self.hit_ratio.ratio(hits, misses)
        return View(aggregate.text, aggregate.samples, ratio, len(aggregate.skipped))

    def skipped_files(self) -> dict[str, str]:
        return dict(self._skipped)

    def close(self) -> None:
        """Let another service serve the folder (idempotent)."""
        fd, self._service_lock = self._service_lock, -1
        if fd >= 0:
            os.close(fd)


def _serve_alone(folder: Path) -> int:
    """An fd holding the folder's service lock; MetricsFolderError while another service holds it."""
    fd = multiprocess.open_shared(folder / SERVICE_LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MetricsFolderError(
            f"another service already serves the metrics folder {folder} (it holds {folder / SERVICE_LOCK}): stop "
            "it, or give this service a folder of its own (PROMETHEUS_MULTIPROC_DIR or FEATURESTORE_CACHE_DIR)"
        ) from None
    return fd


def exporter_for(instruments: Instruments, window_s: float) -> Exporter:
    if instruments.folder is not None:
        return FleetExporter(instruments, instruments.folder, window_s)
    return LocalExporter(instruments, window_s)
