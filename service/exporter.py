"""What the service exports: its own registry (one process) or the aggregate of a metrics folder (a fleet), plus the
hit ratio it derives over its window.

    LocalExporter  (PostgreSQL, PROMETHEUS_MULTIPROC_DIR unset): the app's registry, written by featurestore.exposition
    FleetExporter  (PROMETHEUS_MULTIPROC_DIR set, or the embedded default's <cache>/.metrics): reap dead processes'
                   live gauges, then featurestore.fleet's aggregate of every process's files (the service's own too)
    both ──▶ read() ──▶ View: text for /metrics, samples for the SampleRing (/slo, /performance)

`featurestore_hit_ratio` is hits / lookups over the trailing SLO window (the rules' 5m), computed here from the summed
hit and miss counters at each read: a gauge that workers wrote could only be a per-process lifetime ratio (the
multiprocess mode cannot run a collector in the workers), which no longer moves after a day of traffic and starts
over in a fresh process. Keeping the name and the guide's `featurestore_hit_ratio < 0.95` rule (rather than a
recording rule of the same name) keeps /slo, the dashboard and the alert reading the one series the guide names.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prometheus_client import generate_latest
from prometheus_client.utils import floatToGoString

from featurestore import multiprocess
from featurestore.exposition import TextExposition
from featurestore.fleet import Aggregate, FleetReader
from featurestore.instruments import Instruments
from featurestore.metrics import HIT_RATIO, HITS, MISSES

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

    def render(self, names: set[str] | None = None) -> bytes:
        body = self.text(names)
        if names is None or HIT_RATIO.name in names:
            body += _gauge_text(HIT_RATIO.name, HIT_RATIO.help, self.hit_ratio)
        return body.encode("utf-8")

    def samples(self) -> Iterator[Sample]:
        yield from self.base_samples()
        yield HIT_RATIO.name, {}, self.hit_ratio


class Exporter(Protocol):
    instruments: Instruments

    def read(self) -> View: ...


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


class FleetExporter:
    """The aggregate of every process writing to `folder` (multiprocess mode); one read at a time."""

    def __init__(
        self, instruments: Instruments, folder: Path, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.instruments = instruments
        self.folder = folder
        self.hit_ratio = HitRatioWindow(window_s, clock)
        self._reader = FleetReader(folder)
        self._lock = threading.Lock()

    def aggregate(self) -> Aggregate:
        with self._lock:
            multiprocess.reap_dead_processes(self.folder)
            return self._reader.read()

    def read(self) -> View:
        aggregate = self.aggregate()
        # Counter families are stored under their name without `_total`.
        hits = aggregate.total(HITS.name.removesuffix("_total"))
        misses = aggregate.total(MISSES.name.removesuffix("_total"))
        return View(aggregate.text, aggregate.samples, self.hit_ratio.ratio(hits, misses))


def exporter_for(instruments: Instruments, window_s: float) -> Exporter:
    if instruments.folder is not None:
        return FleetExporter(instruments, instruments.folder, window_s)
    return LocalExporter(instruments, window_s)
