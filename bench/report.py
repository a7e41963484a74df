"""The benchmark's report: the side-by-side table, the ratios, each target met or missed, and its JSON."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.held_lock import LockScope, run_json
from bench.options import CompareOptions
from bench.pooler_compare import PoolerReport
from bench.probes import RecordingCost, ScrapeCost
from featurestore.conventions import HEALTH_PATH
from featurestore.loadtest.result import LoadResult, Percentiles
from featurestore.metrics import ADVISORY_LOCK_WAIT, MANIFEST_INSERT_LATENCY
from slos import SLO, Op, load_specs
from slos.models import QuantileObjective

# The benchmark's own targets on this 2-core machine kind; the SLO run is held to the spec's SLOs (`slo_targets`).
P99_RATIO_TARGET = 1 / (1 - 0.94)  # the guide's -94 % p99 (620 ms -> 34 ms) as a ratio: 16.7x
THROUGHPUT_RATIO_TARGET = 8.0  # the guide's "8x training pipeline throughput", on the workload with no think time
SINGLE_WORKER_CPU_TARGET_MS = 0.6  # client CPU of one publish, one worker, no contention
SINGLE_WORKER_RATIO_TARGET = 1.5
INSTRUMENTATION_FRACTION_TARGET = 0.01
SCRAPE_TARGET_MS = 50.0
FLEET_SCRAPE_TARGET_MS = 100.0  # the service reading 64 worker processes' files at the symbol cap
HEALTH_P99_TARGET_MS = 100.0


@dataclass(frozen=True)
class SideMeasurements:
    """Everything beside the two lock scopes: baseline, single worker, recording, scrape and health costs."""

    single_insert_ms: Percentiles  # our insert, one worker, paired with the bare one below
    bare_paired_ms: Percentiles  # bare INSERT+COMMIT after the same Parquet write, alternating with ours
    bare_tight_ms: Percentiles  # bare INSERT+COMMIT in a tight loop (nothing between two inserts)
    single_live: LoadResult  # one worker, no contention, instrumented
    single_dark: LoadResult  # the same with Instruments.disabled()
    recording: RecordingCost
    # One backend in use, both (after a fallback episode), 64 processes' files, then 1,000 ended processes' history.
    scrapes: tuple[ScrapeCost, ...]
    health_store_ms: Percentiles | None = None
    health_http_ms: Percentiles | None = None

    @property
    def single_ratio(self) -> float:
        """Our insert p95 over the like-for-like bare INSERT+COMMIT p95 (same loop, same Parquet write before)."""
        return _ratio(self.single_insert_ms.p95, self.bare_paired_ms.p95)

    @property
    def single_ratio_tight(self) -> float:
        return _ratio(self.single_insert_ms.p95, self.bare_tight_ms.p95)

    @property
    def recording_fraction(self) -> float:
        """Recording cost per operation over an uncontended insert (the single worker's insert p50)."""
        return _ratio(self.recording.us_per_op / 1000.0, self.single_insert_ms.p50)

    @property
    def multiprocess_fraction(self) -> float:
        """The same in the multiprocess mode (values written to the metrics folder; pool gauges sampled apart)."""
        return _ratio(self.recording.multiprocess_record_us_per_op / 1000.0, self.single_insert_ms.p50)

    def to_json(self) -> dict[str, Any]:
        live, dark = self.single_live, self.single_dark
        return {
            "single_worker": {
                "insert_latency_ms": self.single_insert_ms.to_json(),
                "bare_insert_commit_ms": self.bare_paired_ms.to_json(),
                "bare_insert_commit_tight_loop_ms": self.bare_tight_ms.to_json(),
                "p95_ratio": _finite(self.single_ratio),
                "p95_ratio_to_tight_loop": _finite(self.single_ratio_tight),
            },
            "instrumentation": {
                "recording_us_per_op": round(self.recording.us_per_op, 3),
                "instrument_calls_us_per_op": round(self.recording.record_us_per_op, 3),
                "pool_stats_read_us_per_op": round(self.recording.pool_read_us_per_op, 3),
                "calls_per_op": {name: round(count, 3) for name, count in sorted(self.recording.calls_per_op.items())},
                "uncontended_insert_p50_ms": round(self.single_insert_ms.p50, 3),
                "fraction_of_insert": _finite(self.recording_fraction, 5),
                "multiprocess_us_per_op": round(self.recording.multiprocess_record_us_per_op, 3),
                "multiprocess_fraction_of_insert": _finite(self.multiprocess_fraction, 5),
                "end_to_end_mean_publish_ms": {"instrumented": _mean_ms(live), "disabled": _mean_ms(dark)},
            },
            "scrape": [
                {
                    "backends": list(scrape.backends),
                    "exposition_ms": scrape.wall_ms.to_json(),
                    "exposition_cpu_ms": scrape.cpu_ms.to_json(),
                    "bytes": scrape.bytes,
                    "first_scrape_ms": _first(scrape.first_wall_ms),
                    "first_scrape_cpu_ms": _first(scrape.first_cpu_ms),
                }
                for scrape in self.scrapes
            ],
            "health_probe": {
                "store_health_ms": self.health_store_ms.to_json() if self.health_store_ms else None,
                "service_health_ms": self.health_http_ms.to_json() if self.health_http_ms else None,
            },
        }


@dataclass(frozen=True)
class Target:
    name: str
    measured: float
    target: str
    met: bool
    unit: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "measured": _finite(self.measured), "target": self.target, "met": self.met}


@dataclass(frozen=True)
class CpuCeiling:
    """The throughput workload's per-symbol side against the machine's CPU: with no think time it is CPU-bound, so
    the whole machine's CPU per publish (workers, PostgreSQL, kernel) sets the most it can do, and the ratio to the
    global run that follows."""

    busy_fraction: float  # of the machine's CPUs, while the per-symbol workers ran
    machine_ms_per_op: float  # busy CPU of the whole machine per publish
    client_ms_per_op: float  # of which in the worker processes
    ceiling_ops_s: float  # the same cost per publish with every CPU busy
    ceiling_ratio: float  # ceiling_ops_s over the global run's throughput
    target_ratio: float
    needed_ms_per_op: float  # the machine CPU per publish at which target_ratio fits in the CPUs

    @classmethod
    def of(cls, symbol: LoadResult, global_ops_s: float, target_ratio: float) -> CpuCeiling:
        assert symbol.machine_cpu is not None and symbol.machine_cpu_ms_per_op is not None
        busy = symbol.machine_cpu.busy_fraction
        per_op = symbol.machine_cpu_ms_per_op
        # Every CPU busy at the same cost per publish; the CPU time there is per publish, busy or not, is per_op / busy.
        ceiling = _ratio(symbol.throughput_ops_s, busy)
        needed = _ratio(per_op, busy) * _ratio(symbol.throughput_ops_s, target_ratio * global_ops_s)
        return cls(busy, per_op, symbol.client_cpu_ms_per_op, ceiling, _ratio(ceiling, global_ops_s), target_ratio,
                   needed)  # fmt: skip

    def render(self) -> str:
        return (
            f"CPU: with no think time the per-symbol side kept the machine's CPUs {self.busy_fraction:.0%} busy at "
            f"{self.machine_ms_per_op:.2f} ms of CPU per publish across the machine ({self.client_ms_per_op:.2f} ms in "
            f"the workers, the rest PostgreSQL, the kernel and whatever else ran): at the same cost with every CPU "
            f"busy, at most {self.ceiling_ops_s:.0f} ops/s, a ratio of {self.ceiling_ratio:.1f}x to its global run; "
            f"{self.target_ratio:g}x needs <= {self.needed_ms_per_op:.2f} ms per publish"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "busy_fraction": _finite(self.busy_fraction, 4),
            "machine_cpu_ms_per_op": _finite(self.machine_ms_per_op),
            "client_cpu_ms_per_op": _finite(self.client_ms_per_op),
            "ceiling_ops_s": _finite(self.ceiling_ops_s, 1),
            "ceiling_ratio": _finite(self.ceiling_ratio),
            "target_ratio": self.target_ratio,
            "needed_machine_cpu_ms_per_op": _finite(self.needed_ms_per_op),
        }


@dataclass(frozen=True)
class CompareReport:
    options: CompareOptions
    symbol: LoadResult
    global_: LoadResult
    slo: LoadResult | None
    side: SideMeasurements
    machine: dict[str, str]
    throughput_symbol: LoadResult | None = None  # the same workload with no think time
    throughput_global: LoadResult | None = None
    pooler: PoolerReport | None = None
    slos: tuple[SLO, ...] = dataclasses.field(default_factory=lambda: load_specs().slos)  # the shipped spec's

    @property
    def p99_ratio(self) -> float:
        """Global p99 over per-symbol p99: how many times lower per-symbol locking keeps the tail."""
        return _ratio(self.global_.insert_latency_ms.p99, self.symbol.insert_latency_ms.p99)

    @property
    def throughput_ratio(self) -> float:
        """Per-symbol throughput over global throughput, think time included: bounded by `throughput_ceiling`."""
        return _ratio(self.symbol.throughput_ops_s, self.global_.throughput_ops_s)

    @property
    def unthrottled_ratio(self) -> float | None:
        """Per-symbol throughput over global throughput with no think time: the seed's throughput claim."""
        if self.throughput_symbol is None or self.throughput_global is None:
            return None
        return _ratio(self.throughput_symbol.throughput_ops_s, self.throughput_global.throughput_ops_s)

    def _runs(self) -> list[LoadResult]:
        optional = (self.throughput_symbol, self.throughput_global)
        return [self.symbol, self.global_, *(run for run in optional if run is not None)]

    @property
    def throughput_ceiling(self) -> float:
        """The highest throughput ratio this closed loop allows: every worker thinks `think_ms` between two publishes,
        so per-symbol locking cannot exceed workers / think, whatever the store does."""
        think_s = self.options.think_ms / 1000.0
        if think_s <= 0:
            return float("inf")
        return _ratio(self.options.workers / think_s, self.global_.throughput_ops_s)

    @property
    def cpu_ceiling(self) -> CpuCeiling | None:
        """Where the throughput workload's per-symbol side stood against the machine's CPU (None without /proc/stat)."""
        symbol, global_ = self.throughput_symbol, self.throughput_global
        if symbol is None or global_ is None or symbol.machine_cpu is None or symbol.machine_cpu_ms_per_op is None:
            return None
        return CpuCeiling.of(symbol, global_.throughput_ops_s, THROUGHPUT_RATIO_TARGET)

    def targets(self) -> list[Target]:
        bad = sum(run.errors + run.duplicates + run.fallback_inserts for run in self._runs())
        found = [_at_least("p99 ratio global/per-symbol", self.p99_ratio, P99_RATIO_TARGET, "x")]
        if self.unthrottled_ratio is not None:
            found.append(
                _at_least("throughput ratio per-symbol/global", self.unthrottled_ratio, THROUGHPUT_RATIO_TARGET, "x")
            )
        found.append(_at_most("errors + duplicates + fallbacks (lock runs)", bad, 0, "", strict=False))
        if self.slo is not None:
            slo = self.slo
            found += [
                *slo_targets(slo, self.slos),
                _at_most(
                    "SLO run errors + duplicates + fallbacks",
                    slo.errors + slo.duplicates + slo.fallback_inserts,
                    0,
                    "",
                    strict=False,
                ),
            ]
        found += self._side_targets()
        if self.pooler is not None and not self.pooler.skipped:
            found.append(
                _at_most("through PgBouncer: errors + duplicates + fallbacks", self.pooler.bad(), 0, "", strict=False)
            )
        return found

    def _side_targets(self) -> list[Target]:
        """The single worker's, the metrics', the scrapes' and the health probes' targets."""
        side = self.side
        found = [
            _at_most(
                "single worker client CPU per publish",
                side.single_live.client_cpu_ms_per_op,
                SINGLE_WORKER_CPU_TARGET_MS,
                " ms",
                strict=False,
            ),
            _at_most(
                "single worker p95 / bare INSERT p95", side.single_ratio, SINGLE_WORKER_RATIO_TARGET, "x", strict=False
            ),
            _at_most(
                "metrics cost / uncontended insert",
                side.recording_fraction * 100,
                INSTRUMENTATION_FRACTION_TARGET * 100,
                " %",
                strict=False,
            ),
            _at_most(
                "metrics cost, multiprocess / insert",
                side.multiprocess_fraction * 100,
                INSTRUMENTATION_FRACTION_TARGET * 100,
                " %",
                strict=False,
            ),
        ]
        for scrape in side.scrapes:
            label = f"scrape at the symbol cap, {'+'.join(scrape.backends)} p95"
            goal = FLEET_SCRAPE_TARGET_MS if scrape.backends[0].endswith("processes") else SCRAPE_TARGET_MS
            found.append(_at_most(label, scrape.wall_ms.p95, goal, " ms"))
        for label, probed in (("store.health()", side.health_store_ms), ("GET /health", side.health_http_ms)):
            if probed is not None:
                found.append(_at_most(f"{label} p99 under load", probed.p99, HEALTH_P99_TARGET_MS, " ms"))
        return found

    def to_json(self) -> dict[str, Any]:
        options, ceiling = self.options, self.cpu_ceiling
        return {
            "symbol": run_json(self.symbol, LockScope.SYMBOL, options.hold_ms),
            "global": run_json(self.global_, LockScope.GLOBAL, options.hold_ms),
            "ratios": {
                "throughput": _finite(self.throughput_ratio),
                "p99": _finite(self.p99_ratio),
                "throughput_ceiling": _finite(self.throughput_ceiling),
                "throughput_no_think": _finite(self.unthrottled_ratio) if self.unthrottled_ratio is not None else None,
                "throughput_no_think_cpu_ceiling": ceiling.to_json() if ceiling is not None else None,
            },
            "throughput_workload": {
                "symbol": run_json(self.throughput_symbol, LockScope.SYMBOL, options.hold_ms)
                if self.throughput_symbol is not None
                else None,
                "global": run_json(self.throughput_global, LockScope.GLOBAL, options.hold_ms)
                if self.throughput_global is not None
                else None,
            },
            "slo": run_json(self.slo, LockScope.SYMBOL, 0.0) if self.slo is not None else None,
            "pooler": self.pooler.to_json() if self.pooler is not None else None,
            **self.side.to_json(),
            "targets": [target.to_json() for target in self.targets()],
            "workload": {
                "workers": options.workers,
                "processes": options.processes,
                "symbols": options.symbols,
                "think_ms": options.think_ms,
                "hold_ms": options.hold_ms,
                "duration_s_per_lock": options.duration_s,
                "slices_per_lock": options.slices,
            },
            "machine": self.machine,
        }

    def render(self) -> str:
        options, symbol, global_ = self.options, self.symbol, self.global_
        kind = "processes" if options.processes else "threads"
        m = self.machine
        lines = [
            f"Per-symbol vs global advisory lock, PostgreSQL {m['postgresql']}, started {m['started_at']}",
            f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['os']}, Python {m['python']}, psycopg {m['psycopg']}, "
            f"load average at the start {m['load_average']}, {m['frame_file_system_ms']} ms of system CPU per frame "
            "file written",
            f"workload: {options.workers} worker {kind}, {options.symbols} symbols, think {options.think_ms:g} ms "
            f"(uniform 0.5-1.5x), {options.hold_ms:g} ms held inside the lock, {options.duration_s:g} s per lock in "
            f"{options.slices * 2} alternating slices (ABBA)",
            "",
            f"latency workload (think {options.think_ms:g} ms):",
            *_side_by_side(symbol, global_),
        ]
        if self.throughput_symbol is not None and self.throughput_global is not None:
            lines += [
                "",
                "throughput workload (the same, no think time: every worker publishes back to back):",
                *_side_by_side(self.throughput_symbol, self.throughput_global),
            ]
        lines.append("ratio: insert p99 global/per-symbol; throughput per-symbol/global (how many times better).")
        if math.isfinite(self.throughput_ceiling):
            lines.append(
                f"ceiling: {options.workers} workers thinking {options.think_ms:g} ms between publishes cannot exceed "
                f"{options.workers * 1000 / options.think_ms:.0f} ops/s, so the latency workload's throughput ratio "
                f"cannot exceed {self.throughput_ceiling:.1f}x against its global run"
            )
        ceiling = self.cpu_ceiling
        if ceiling is not None:
            lines.append(ceiling.render())
        if self.slo is not None:
            s = self.slo
            lines += [
                "",
                f"SLO run (per-symbol, no hold, {s.config.duration_s:g} s): insert p50/p95/p99 "
                f"{_triple(s.insert_latency_ms)} ms, lock wait {_triple(s.lock_wait_ms)} ms, "
                f"{s.throughput_ops_s:.0f} ops/s, {s.errors} errors, {s.duplicates} duplicates",
            ]
        lines += self._side_lines()
        if self.pooler is not None:
            lines += self.pooler.render()
        lines += ["", *self._target_table()]
        return "\n".join(lines)

    def _side_lines(self) -> list[str]:
        """The single worker, the metrics' cost, the scrapes and the health probes under load."""
        side = self.side
        lines = [
            f"single worker, client CPU per publish: {side.single_live.client_cpu_ms_per_op:.3f} ms "
            f"({side.single_live.operations} publishes, instrumented)",
            f"single worker, insert p50/p95/p99: ours {_triple(side.single_insert_ms)} ms; bare psycopg INSERT+COMMIT "
            f"in the same loop {_triple(side.bare_paired_ms)} ms (p95 ratio {side.single_ratio:.2f}x); bare in a "
            f"tight loop {_triple(side.bare_tight_ms)} ms (p95 ratio {side.single_ratio_tight:.2f}x)",
            f"metrics: {side.recording.us_per_op:.1f} us per publish = {side.recording.record_us_per_op:.1f} us of "
            f"instrument calls ({', '.join(f'{n} x{c:g}' for n, c in sorted(side.recording.calls_per_op.items()))}) "
            f"+ {side.recording.pool_read_us_per_op:.1f} us reading pool stats for the gauges = "
            f"{side.recording_fraction * 100:.2f} % of an uncontended insert ({side.single_insert_ms.p50:.3f} ms p50); "
            f"end to end, mean publish {_mean_ms(side.single_live):.3f} ms instrumented vs "
            f"{_mean_ms(side.single_dark):.3f} ms disabled (A B B A; within noise on a shared machine)",
            f"metrics in the multiprocess mode (PROMETHEUS_MULTIPROC_DIR): "
            f"{side.recording.multiprocess_record_us_per_op:.1f} us per publish "
            f"({sum(side.recording.calls_per_op.values()):g} instrument calls; pool gauges sampled by a thread) = "
            f"{side.multiprocess_fraction * 100:.2f} % of an uncontended insert",
        ]
        for scrape in side.scrapes:
            lines.append(
                f"scrape at the symbol cap ({'+'.join(scrape.backends)}): {_triple(scrape.wall_ms)} ms wall, "
                f"{_triple(scrape.cpu_ms)} ms CPU, {scrape.bytes} bytes"
            )
            if scrape.first_wall_ms is not None and scrape.first_cpu_ms is not None:
                lines.append(
                    f"  first scrape of a fresh reader (once per service start, left out above): "
                    f"{scrape.first_wall_ms:.1f} ms wall, {scrape.first_cpu_ms:.1f} ms CPU"
                )
        if side.health_store_ms is not None:
            lines.append(f"store.health() under load: {_triple(side.health_store_ms)} ms")
        if side.health_http_ms is not None:
            lines.append(f"GET {self.options.service_url}{HEALTH_PATH} under load: {_triple(side.health_http_ms)} ms")
        return lines

    def _target_table(self) -> list[str]:
        lines = [f"{'target':<50}{'measured':>12}  {'goal':<12}result"]
        for target in self.targets():
            measured = f"{target.measured:.2f}{target.unit}" if target.unit else f"{target.measured:g}"
            lines.append(f"{target.name:<50}{measured:>12}  {target.target:<12}{'met' if target.met else 'MISSED'}")
        return lines


def slo_targets(run: LoadResult, slos: Iterable[SLO]) -> list[Target]:
    """The run against each quantile SLO on what it measures (manifest insert latency, advisory lock wait), at the
    objective's threshold as the spec states it: a number copied here would drift from the spec."""
    measured = {
        MANIFEST_INSERT_LATENCY.name: ("insert", run.insert_latency_ms),
        ADVISORY_LOCK_WAIT.name: ("lock wait", run.lock_wait_ms),
    }
    found: list[Target] = []
    for slo in slos:
        objective = slo.objective
        if not isinstance(objective, QuantileObjective) or objective.metric not in measured or objective.matchers:
            continue
        label, percentiles = measured[objective.metric]
        value = {0.5: percentiles.p50, 0.95: percentiles.p95, 0.99: percentiles.p99}.get(objective.quantile)
        if value is None or objective.op not in (Op.LT, Op.LE):
            continue
        name = f"SLO run {label} p{objective.quantile * 100:g}"
        found.append(_at_most(name, value, objective.threshold, " ms", strict=objective.op is Op.LT))
    return found


def _side_by_side(symbol: LoadResult, global_: LoadResult) -> list[str]:
    """The table of one workload: latencies, throughput and client CPU, per-symbol next to global."""
    p99_ratio = _ratio(global_.insert_latency_ms.p99, symbol.insert_latency_ms.p99)
    throughput_ratio = _ratio(symbol.throughput_ops_s, global_.throughput_ops_s)
    rows: list[tuple[str, float, float, str]] = []
    for label, field in (("insert", "insert_latency_ms"), ("lock wait", "lock_wait_ms")):
        for q in ("p50", "p95", "p99"):
            a, b = getattr(getattr(symbol, field), q), getattr(getattr(global_, field), q)
            rows.append((f"{label} {q} (ms)", a, b, f"{p99_ratio:.1f}x" if (label, q) == ("insert", "p99") else ""))
    rows.append(("throughput (ops/s)", symbol.throughput_ops_s, global_.throughput_ops_s, f"{throughput_ratio:.1f}x"))
    rows.append(("client CPU (ms/op)", symbol.client_cpu_ms_per_op, global_.client_cpu_ms_per_op, ""))
    rows.append(
        ("machine CPU (ms/op)", _or_nan(symbol.machine_cpu_ms_per_op), _or_nan(global_.machine_cpu_ms_per_op), "")
    )
    counts = ("operations", "errors", "duplicates", "fallback_inserts")
    for label in counts:
        rows.append((label, getattr(symbol, label), getattr(global_, label), ""))
    lines = [f"{'':24}{'per-symbol':>12}{'global':>12}{'ratio':>10}"]
    for label, a, b, ratio in rows:
        digits = 0 if label in counts else 2
        cells = "".join(f"{value:>12.{digits}f}" if math.isfinite(value) else f"{'-':>12}" for value in (a, b))
        lines.append(f"{label:<24}{cells}{ratio:>10}")
    return lines


def _or_nan(value: float | None) -> float:
    """A figure the table shows as `-` when it was not measured (machine CPU off Linux)."""
    return value if value is not None else math.nan


def _at_least(name: str, measured: float, goal: float, unit: str) -> Target:
    return Target(name, measured, f">= {goal:.3g}{unit}", measured >= goal, unit)


def _at_most(name: str, measured: float, goal: float, unit: str, *, strict: bool = True) -> Target:
    met = measured < goal if strict else measured <= goal
    return Target(name, measured, f"{'<' if strict else '<='} {goal:g}{unit}", met, unit)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf") if numerator > 0 else 0.0


def _finite(value: float, digits: int = 3) -> float | None:
    """JSON has no infinity: a ratio over a zero denominator is null."""
    return round(value, digits) if math.isfinite(value) else None


def _first(ms: float | None) -> float | None:
    """A first scrape timed apart, or null where the percentiles include it."""
    return round(ms, 3) if ms is not None else None


def _triple(p: Percentiles) -> str:
    return f"{p.p50:.2f}/{p.p95:.2f}/{p.p99:.2f}"


def _mean_ms(result: LoadResult) -> float:
    values = result.samples.publish_ms
    return round(sum(values) / len(values), 4) if values else 0.0
