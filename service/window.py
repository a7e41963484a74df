"""Registry snapshots over time, and what Prometheus would compute from them over a trailing window.

    SampleRing ──capture()──▶ Snapshot (one flat array of sample values, positions from a shared SampleIndex)
        │ record() every few seconds, keeps a bit more than the window
        └──window(seconds)──▶ Window(now, base): increase(), quantile(), gauges()

A Window compares a live capture with the newest snapshot at least `seconds` old (or the oldest one while the
process is younger than the window), so `/slo` and `/performance` report the last five minutes like `rate(...[5m])`
and `histogram_quantile` do, not the process lifetime. Series born after the base count from zero, as a counter that
starts at zero does. Snapshots are arrays of floats: a ring of them costs kilobytes, not a dict per sample.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

Labels = tuple[tuple[str, str], ...]
Group = tuple[str, ...]
BUCKET_LABEL = "le"


class SampleIndex:
    """Append-only positions of (sample name, labels); the symbol label cap keeps it bounded."""

    def __init__(self) -> None:
        self._positions: dict[tuple[str, Labels], int] = {}
        self._by_name: dict[str, list[tuple[int, dict[str, str]]]] = {}

    def __len__(self) -> int:
        return len(self._positions)

    def position(self, name: str, labels: Mapping[str, str]) -> int:
        key = (name, tuple(sorted(labels.items())))
        found = self._positions.get(key)
        if found is None:
            found = self._positions[key] = len(self._positions)
            self._by_name.setdefault(name, []).append((found, dict(labels)))
        return found

    def series(self, name: str, matchers: Mapping[str, str] | None = None) -> list[tuple[int, dict[str, str]]]:
        """Positions and labels of the samples called `name` whose labels equal every matcher."""
        matchers = matchers or {}
        return [
            (pos, labels)
            for pos, labels in self._by_name.get(name, ())
            if all(labels.get(key) == value for key, value in matchers.items())
        ]


@dataclass(frozen=True)
class Snapshot:
    """Every sample value of the registry at `at` (monotonic seconds); positions past the end were not born yet."""

    at: float
    values: array[float]

    def get(self, position: int) -> float:
        return self.values[position] if position < len(self.values) else 0.0


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile over cumulative (upper bound, count) pairs; None when there is no data.

    Linear interpolation inside the bucket holding the rank, a lower bound of 0 for the first bucket, and the
    highest finite bound when the rank falls in the +Inf bucket (promql/quantile.go).
    """
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    counts = [count for _, count in ordered]
    for index in range(1, len(counts)):  # rates of buckets scraped at slightly different times can dip
        counts[index] = max(counts[index], counts[index - 1])
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    index = bisect.bisect_left(counts, rank)
    if index == len(ordered) - 1:
        return ordered[-2][0]
    upper = ordered[index][0]
    if index == 0 and upper <= 0:
        return upper
    lower = 0.0 if index == 0 else ordered[index - 1][0]
    below = 0.0 if index == 0 else counts[index - 1]
    in_bucket = counts[index] - below
    if in_bucket <= 0:
        return upper
    return lower + (upper - lower) * (rank - below) / in_bucket


@dataclass(frozen=True)
class Window:
    """What happened between two snapshots, queried the way PromQL queries a range."""

    index: SampleIndex
    base: Snapshot
    now: Snapshot

    @property
    def seconds(self) -> float:
        return self.now.at - self.base.at

    def series(self, name: str, matchers: Mapping[str, str] | None = None) -> list[tuple[int, dict[str, str]]]:
        """The index's series as of `now` (a capture on another thread may have added newer ones)."""
        born = len(self.now.values)
        return [(position, labels) for position, labels in self.index.series(name, matchers) if position < born]

    def increase(self, position: int) -> float:
        # Counters of one registry never reset; the clamp only guards against a caller mixing registries.
        return max(self.now.get(position) - self.base.get(position), 0.0)

    def increases(
        self, name: str, matchers: Mapping[str, str] | None = None, by: Sequence[str] = ()
    ) -> dict[Group, float]:
        """`sum by (by) (increase(name{matchers}[window]))`: one total per group."""
        totals: dict[Group, float] = {}
        for position, labels in self.series(name, matchers):
            group = tuple(labels.get(label, "") for label in by)
            totals[group] = totals.get(group, 0.0) + self.increase(position)
        return totals

    def increase_total(self, name: str, matchers: Mapping[str, str] | None = None) -> float:
        return sum(self.increases(name, matchers).values())

    def quantiles(
        self, q: float, histogram: str, matchers: Mapping[str, str] | None = None, by: Sequence[str] = ()
    ) -> dict[Group, float | None]:
        """`histogram_quantile(q, sum by (le, by) (rate(histogram_bucket{matchers}[window])))` per group."""
        buckets: dict[Group, dict[float, float]] = {}
        for position, labels in self.series(f"{histogram}_bucket", matchers):
            group = tuple(labels.get(label, "") for label in by)
            bound = float(labels[BUCKET_LABEL])
            per_bound = buckets.setdefault(group, {})
            per_bound[bound] = per_bound.get(bound, 0.0) + self.increase(position)
        return {group: histogram_quantile(q, list(counts.items())) for group, counts in buckets.items()}

    def bucket_share(self, histogram: str, bound: float, matchers: Mapping[str, str] | None = None) -> float | None:
        """Events at or under `bound` over all events in the window (0-1); None when nothing happened.

        Raises ValueError when `bound` is not a bucket boundary of the histogram's series.
        """
        under = total = 0.0
        seen = False
        for position, labels in self.series(f"{histogram}_bucket", matchers):
            le = float(labels[BUCKET_LABEL])
            if le == bound:
                under += self.increase(position)
                seen = True
            elif math.isinf(le):
                total += self.increase(position)
        if total <= 0:
            return None
        if not seen:
            raise ValueError(f"{bound:g} is not a bucket boundary of {histogram}")
        return under / total

    def gauges(self, name: str, matchers: Mapping[str, str] | None = None) -> list[tuple[dict[str, str], float]]:
        """The latest value of each `name{matchers}` series (gauges have no window: Prometheus reads the last one)."""
        return [(labels, self.now.get(position)) for position, labels in self.series(name, matchers)]


SampleSource = Callable[[], Iterable[tuple[str, Mapping[str, str], float]]]


class SampleRing:
    """Snapshots of one registry (or of `source`: the service's exporter), a bit more than `window_s` of them, taken
    by `record()` on a timer."""

    def __init__(
        self,
        registry: CollectorRegistry,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        source: SampleSource | None = None,
    ) -> None:
        self.registry = registry
        self.source = source
        self.window_s = window_s
        self.index = SampleIndex()
        self._clock = clock
        self._ring: deque[Snapshot] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ring)

    def capture(self) -> Snapshot:
        """Every sample of the registry (or the source) now, without keeping it."""
        if self.source is not None:
            samples = list(self.source())
        else:
            samples = [
                (sample.name, sample.labels, sample.value)
                for family in self.registry.collect()
                for sample in family.samples
                if not sample.name.endswith("_created")
            ]
        with self._lock:
            at = self._clock()
            positions = [self.index.position(name, labels) for name, labels, _ in samples]
            values = array("d", bytes(8 * len(self.index)))
        for position, (_, _, value) in zip(positions, samples, strict=True):
            values[position] = value
        return Snapshot(at, values)

    def record(self) -> Snapshot:
        """Capture and keep a snapshot; drop the ones no window needs (one at or before the cutoff stays)."""
        snapshot = self.capture()
        with self._lock:
            self._ring.append(snapshot)
            cutoff = snapshot.at - self.window_s
            while len(self._ring) >= 2 and self._ring[1].at <= cutoff:
                self._ring.popleft()
        return snapshot

    def window(self, now: Snapshot | None = None) -> Window:
        """From the newest snapshot at least `window_s` old (or the oldest kept) to `now` (a live capture)."""
        now = now if now is not None else self.capture()
        with self._lock:
            kept = list(self._ring)
        cutoff = now.at - self.window_s
        older = [snapshot for snapshot in kept if snapshot.at <= cutoff]
        base = older[-1] if older else (kept[0] if kept else Snapshot(now.at, array("d")))
        return Window(self.index, base, now)

    def newest_age(self) -> float | None:
        """Seconds since the newest kept snapshot (None before the first): the snapshot task's heartbeat."""
        with self._lock:
            newest = self._ring[-1].at if self._ring else None
        return None if newest is None else self._clock() - newest
