"""The scrape body: Prometheus text format 0.0.4 for the catalog's instruments, written without re-deriving labels.

prometheus_client's `generate_latest` builds a `Sample` tuple per bucket (`registry.collect()`), then sorts, escapes
and joins every label set again on every scrape; with the symbol cap reached (about 500 histogram children, 10,000
lines) that was 80-130 ms of CPU per scrape on this machine. `TextExposition` keeps, per labelled child, the text of
each of its lines up to the value (`name_bucket{backend="…",le="0.25",symbol="…"} `), so a scrape reads the values
and appends their strings.

The output is what `generate_latest` writes for the same registry, byte for byte, minus the `_created` families: a
creation timestamp per counter and histogram child is one more series each that no rule, panel or alert reads
(decided here for our registry only; `prometheus_client.disable_created_metrics()` would change every registry of the
process). tests/featurestore/test_exposition.py holds both claims (and runs promtool on the output).

The writer reads prometheus_client's children (`_metrics`, `_buckets`, `_sum`, `_value`), which are not public API:
`supported()` checks that shape and `TextExposition.render()` falls back to `generate_latest` when it does not match.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, utils

from featurestore.instruments import Instruments

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# prometheus_client's own number formatting (Go's float syntax: +Inf, NaN, 1.5e+07), typed for mypy.
_number: Callable[[float], str] = utils.floatToGoString
_ZERO = _number(0.0)

Family = Counter | Gauge | Histogram
# Writes one child's lines: (child, its cached line prefixes, output list).
ChildWriter = Callable[[Any, tuple[str, ...], list[str]], None]


def _escape_label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _labels_text(pairs: Iterable[tuple[str, str]]) -> str:
    """`{a="x",b="y"}` with the names sorted, as generate_latest orders them; empty without labels."""
    inner = ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in sorted(pairs))
    return f"{{{inner}}}" if inner else ""


class _FamilyText:
    """One family: its header, and each child's line prefixes, built the first time the child is seen."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self.labelnames: tuple[str, ...] = tuple(family._labelnames)
        self.name = family._name
        documentation = _escape_help(family._documentation)
        self.write_child: ChildWriter
        if isinstance(family, Counter):
            self.name = f"{family._name}_total"
            kind, self.write_child = "counter", _write_value
        elif isinstance(family, Gauge):
            kind, self.write_child = "gauge", _write_value
        else:
            kind, self.write_child = "histogram", _write_histogram
            self.bounds = tuple(_number(bound) for bound in family._upper_bounds)
        self.header = f"# HELP {self.name} {documentation}\n# TYPE {self.name} {kind}\n"
        self._prefixes: dict[tuple[str, ...], tuple[str, ...]] = {}

    def children(self) -> list[tuple[Any, tuple[str, ...]]]:
        family = self.family
        if not self.labelnames:
            return [(family, self._prefix(()))]
        with family._lock:
            items = list(family._metrics.items())
        return [(child, self._prefix(tuple(values))) for values, child in items]

    def _prefix(self, values: tuple[str, ...]) -> tuple[str, ...]:
        prefix = self._prefixes.get(values)
        if prefix is None:
            pairs = list(zip(self.labelnames, values, strict=True))
            if isinstance(self.family, Histogram):
                prefix = (
                    *(f"{self.name}_bucket{_labels_text([*pairs, ('le', bound)])} " for bound in self.bounds),
                    f"{self.name}_count{_labels_text(pairs)} ",
                    f"{self.name}_sum{_labels_text(pairs)} ",
                )
            else:
                prefix = (f"{self.name}{_labels_text(pairs)} ",)
            self._prefixes[values] = prefix
        return prefix


def _write_value(child: Any, prefix: tuple[str, ...], out: list[str]) -> None:
    out.append(f"{prefix[0]}{_number(child._value.get())}\n")


def _write_histogram(child: Any, prefix: tuple[str, ...], out: list[str]) -> None:
    total = 0.0
    text = _ZERO
    for index, bucket in enumerate(child._buckets):
        count = bucket.get()
        if count:  # an empty bucket repeats the cumulative count before it: no need to format it again
            total += count
            text = _number(total)
        out.append(f"{prefix[index]}{text}\n")
    out.append(f"{prefix[-2]}{text}\n")
    if child._upper_bounds[0] >= 0:
        out.append(f"{prefix[-1]}{_number(child._sum.get())}\n")


class TextExposition:
    """The scrape body of one `Instruments` registry; keep one per registry (it caches), call from any thread."""

    def __init__(self, instruments: Instruments) -> None:
        self.registry: CollectorRegistry = instruments.registry
        self.fast = supported(instruments)
        self._families = [_FamilyText(family) for family in instruments.families.values()] if self.fast else []
        self._lock = threading.Lock()  # one scrape at a time fills the prefix caches

    def render(self) -> bytes:
        if not self.fast:
            return generate_latest(self.registry)
        out: list[str] = []
        with self._lock:
            for family in self._families:
                out.append(family.header)
                write = family.write_child
                for child, prefix in family.children():
                    write(child, prefix, out)
        return "".join(out).encode("utf-8")


def supported(instruments: Instruments) -> bool:
    """True when every family has the prometheus_client internals `TextExposition` reads."""
    for family in instruments.families.values():
        if type(family) not in (Counter, Gauge, Histogram):
            return False
        if not all(hasattr(family, name) for name in ("_labelnames", "_name", "_documentation")):
            return False
        if family._labelnames:
            if not hasattr(family, "_lock") or not isinstance(getattr(family, "_metrics", None), dict):
                return False
            continue
        if "_child_samples" in vars(family):  # Gauge.set_function() replaced how its value is read
            return False
        needed = ("_buckets", "_sum", "_upper_bounds") if isinstance(family, Histogram) else ("_value",)
        if not all(hasattr(family, name) for name in needed):
            return False
    return True
