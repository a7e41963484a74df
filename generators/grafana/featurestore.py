"""The monitoring guide's dashboard ("Grafana Dashboard" section): its six panels with its thresholds and colours, the
SLOs the guide names without a panel (read latency, component health), then one error-budget row per budgeted SLO.

    SLO overview   insert p95 (stat) · hit ratio (stat) · read p95 (stat) · component health (stat)
    Latency        PostgreSQL p50/p95/p99 vs DuckDB p95 · advisory lock wait p50/p95/p99
    Throughput     inserts/s by backend · hit ratio with its 95 % line · pool total vs active, utilization %
    Hotspots       top symbols by cache operations · lock contention by symbol
    Error budget   (per budgeted SLO) budget remaining · burn rate per alert window
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grafanalib import core as g

from featurestore import metrics
from generators.grafana import budget
from generators.grafana import panels as p
from generators.grafana import queries as q
from slos.loader import SpecSet
from slos.models import SLO, GaugeObjective, QuantileObjective

UID = "featurestore-overview"
TITLE = "FeatureStore Monitoring"
TAGS = ["featurestore", "generated", "slo"]
REFRESH = "30s"  # the guide's scrape interval: refreshing faster only redraws the same samples
# grafanalib says 12. Grafana migrates a dashboard only when its schemaVersion is below the current one, so the JSON
# is written in schema 39's shapes (Grafana 10.3's DashboardMigrator): datasource refs `{type, uid}` on panels,
# targets and variables, threshold steps with a JSON-null base, table `cellOptions`, legend `showLegend`.
SCHEMA_VERSION = 39

# The guide's colours at the spec's thresholds (`Limits`, read from the SLOs; nothing here repeats a spec number). The
# hit ratio's red band below 90 % is the guide's own, not an SLO.
HIT_RATIO_RED_BELOW = 0.90


@dataclass(frozen=True)
class Limits:
    """The thresholds the guide's panels draw, from the specs' SLOs (None: no such SLO, no line)."""

    insert_p95: float | None
    insert_p99: float | None
    lock_wait_p95: float | None
    read_p95: float | None
    hit_ratio: float | None  # a fraction, as the panel's percentunit reads it
    pool_utilization: float | None  # a fraction

    @classmethod
    def of(cls, slos: tuple[SLO, ...]) -> Limits:
        def quantile(metric: metrics.MetricSpec, value: float) -> float | None:
            return next(
                (
                    slo.objective.threshold
                    for slo in slos
                    if isinstance(slo.objective, QuantileObjective)
                    and slo.objective.metric == metric.name
                    and slo.objective.quantile == value
                    and not slo.objective.by
                ),
                None,
            )

        def gauge(metric: metrics.MetricSpec, divide_by: metrics.MetricSpec | None = None) -> float | None:
            return next(
                (
                    slo.objective.threshold / slo.objective.scale
                    for slo in slos
                    if isinstance(slo.objective, GaugeObjective)
                    and slo.objective.metric == metric.name
                    and slo.objective.divide_by == (divide_by.name if divide_by else None)
                ),
                None,
            )

        return cls(
            insert_p95=quantile(metrics.MANIFEST_INSERT_LATENCY, 0.95),
            insert_p99=quantile(metrics.MANIFEST_INSERT_LATENCY, 0.99),
            lock_wait_p95=quantile(metrics.ADVISORY_LOCK_WAIT, 0.95),
            read_p95=quantile(metrics.MANIFEST_READ_LATENCY, 0.95),
            hit_ratio=gauge(metrics.HIT_RATIO),
            pool_utilization=gauge(metrics.POOL_ACTIVE, metrics.POOL_TOTAL),
        )

    @property
    def insert_p95_steps(self) -> list[dict[str, Any]]:
        """The p95 stat: red from the p95 SLO on (the p99 SLO is another one)."""
        return _above("green", ("red", self.insert_p95))

    @property
    def insert_lines(self) -> list[dict[str, Any]]:
        """The latency comparison's dashed lines: the p95 SLO (yellow) and the p99 SLO (red)."""
        return _above("green", ("yellow", self.insert_p95), ("red", self.insert_p99))

    @property
    def lock_wait_steps(self) -> list[dict[str, Any]]:
        return _above("green", ("red", self.lock_wait_p95))

    @property
    def read_p95_steps(self) -> list[dict[str, Any]]:
        return _above("green", ("red", self.read_p95))

    @property
    def hit_ratio_steps(self) -> list[dict[str, Any]]:
        if self.hit_ratio is None:
            return p.steps(("green", None))
        return p.steps(("red", None), ("yellow", min(HIT_RATIO_RED_BELOW, self.hit_ratio)), ("green", self.hit_ratio))

    @property
    def pool_utilization_steps(self) -> list[dict[str, Any]]:
        return _above("green", ("red", self.pool_utilization))


def _above(base: str, *levels: tuple[str, float | None]) -> list[dict[str, Any]]:
    return p.steps((base, None), *((colour, value) for colour, value in levels if value is not None))


def _ms(value: float | None) -> str:
    return f"{value:g} ms" if value is not None else "(no SLO)"


def _percent(value: float | None) -> str:
    return f"{value * 100:g} %" if value is not None else "(no SLO)"


HEALTH_STEPS = p.steps(("red", None), ("green", 1.0))
HEALTH_MAPPING = {
    "type": "value",
    "options": {
        "0": {"color": "red", "index": 0, "text": "unhealthy"},
        "1": {"color": "green", "index": 1, "text": "healthy"},
    },
}
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def label(name: str) -> str:
    """A legend placeholder for a label's value: `{{backend}}`."""
    return "{{" + name + "}}"


JOB = f"({label(q.JOB_LABEL)})"


def overview(limits: Limits) -> p.Section:
    insert_p95 = p.stat(
        "Manifest Insert Latency (P95)",
        "95th percentile of manifest insert latency (lock wait included) over 5 minutes, from the SLO's recording "
        f"rule. SLO: < {_ms(limits.insert_p95)}: green below it, red at or above it.",
        [p.target(q.insert_p95(), label(q.JOB_LABEL))],
        "ms",
        limits.insert_p95_steps,
    )
    hit_ratio = p.stat(
        "Hit Ratio",
        "Cache hits / (hits + misses) over the last 5 minutes across every process an exporter serves (the exporter "
        "computes it; no data without lookups), worst exporter per job. SLO: >= "
        f"{_percent(limits.hit_ratio)}. Red below {_percent(HIT_RATIO_RED_BELOW)}, yellow below the SLO, green at "
        "or above it.",
        [p.target(q.hit_ratio(), label(q.JOB_LABEL))],
        "percentunit",
        limits.hit_ratio_steps,
    )
    read_p95 = p.stat(
        "Manifest Read Latency (P95)",
        f"95th percentile of manifest lookup latency over 5 minutes. SLO: < {_ms(limits.read_p95)}: green below it, "
        "red at or above it.",
        [p.target(q.read_p95(), label(q.JOB_LABEL))],
        "ms",
        limits.read_p95_steps,
    )
    health = p.stat(
        "Component Health",
        "Last health check per component (PostgreSQL manifest, DuckDB fallback, metrics): 1 healthy, 0 unhealthy; "
        "the worst instance counts. See GET /api/v1/monitoring/health.",
        [p.target(q.component_health(), label(metrics.LABEL_COMPONENT))],
        "none",
        HEALTH_STEPS,
        mappings=[HEALTH_MAPPING],
    )
    row = p.row("SLO overview")
    return p.Section(row, ((insert_p95, 6, 6), (hit_ratio, 6, 6), (read_p95, 6, 6), (health, 6, 6)))


def latency(limits: Limits) -> p.Section:
    comparison = p.timeseries(
        "Latency Comparison Over Time",
        "Manifest insert latency by backend: PostgreSQL (advisory locks) p50/p95/p99 against the DuckDB fallback's "
        f"p95, over 5-minute windows. Dashed lines: the {_ms(limits.insert_p95)} p95 and {_ms(limits.insert_p99)} p99 "
        "SLOs. Shows whether advisory locks keep PostgreSQL inserts fast under contention.",
        p.targets(
            *(
                (q.insert_by_backend(value, metrics.BACKEND_POSTGRESQL), f"PostgreSQL {name} {JOB}")
                for name, value in QUANTILES.items()
            ),
            (q.insert_by_backend(0.95, metrics.BACKEND_DUCKDB), f"DuckDB p95 {JOB}"),
        ),
        "ms",
        limits.insert_lines,
    )
    lock_wait = p.timeseries(
        "Advisory Lock Wait Time",
        "Time writers wait for the per-symbol advisory lock: p50/p95/p99 over 5-minute windows. Dashed line: the "
        f"{_ms(limits.lock_wait_p95)} p95 SLO. A rising p99 with a flat p50 points at a few hot symbols (see "
        "Hotspots).",
        p.targets(*((q.lock_wait(value), f"{name} {JOB}") for name, value in QUANTILES.items())),
        "ms",
        limits.lock_wait_steps,
    )
    row = p.row("Latency")
    return p.Section(row, ((comparison, 12, 9), (lock_wait, 12, 9)))


def throughput_cache_and_pool(limits: Limits) -> p.Section:
    inserts = p.timeseries(
        "Manifest Inserts per Second",
        "Manifest inserts per second by backend (5-minute rate): how much work the latency panels describe, and "
        "whether writes have moved to the DuckDB fallback.",
        [p.target(q.inserts_by_backend(), f"{label(metrics.LABEL_BACKEND)} {JOB}")],
        "ops",
    )
    hit_ratio = p.timeseries(
        f"Hit Ratio vs {_percent(limits.hit_ratio)} SLO",
        f"The hit ratio over time with the guide's lines: {_percent(limits.hit_ratio)} (SLO) and "
        f"{_percent(HIT_RATIO_RED_BELOW)} (red below).",
        [p.target(q.hit_ratio(), label(q.JOB_LABEL))],
        "percentunit",
        limits.hit_ratio_steps,
        valueMax=1,
    )
    pool = p.timeseries(
        "Connection Pool Utilization",
        "PostgreSQL manifest pool: connections in the pool (total) against connections lent out (active) and callers "
        "queued for one (waiting), left axis; utilization = active / total on the right axis, dashed line at the "
        f"{_percent(limits.pool_utilization)} SLO. At 100 % callers block (PostgreSQLPoolExhausted).",
        p.targets(
            (q.pool_gauge(metrics.POOL_TOTAL), f"total {JOB}"),
            (q.pool_gauge(metrics.POOL_ACTIVE), f"active {JOB}"),
            (q.pool_gauge(metrics.POOL_WAITING), f"waiting {JOB}"),
            (q.pool_utilization(), f"utilization {JOB}"),
        ),
        "short",
        axisLabel="connections",
        overrides=[_utilization_axis("D", limits)],
    )
    row = p.row("Throughput, cache and connection pool")
    return p.Section(row, ((inserts, 8, 8), (hit_ratio, 8, 8), (pool, 8, 8)))


def _utilization_axis(ref: str, limits: Limits) -> dict[str, Any]:
    """Query `ref` on its own right-hand percent axis, with the SLO's line."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref},
        "properties": [
            {"id": "unit", "value": "percentunit"},
            {"id": "min", "value": 0},
            {"id": "max", "value": 1},
            {"id": "custom.axisPlacement", "value": "right"},
            {"id": "custom.axisLabel", "value": "utilization"},
            {"id": "thresholds", "value": {"mode": "absolute", "steps": limits.pool_utilization_steps}},
            {"id": "custom.thresholdsStyle", "value": {"mode": "dashed"}},
        ],
    }


def hotspots() -> p.Section:
    activity = p.table(
        "Top Symbols by Activity",
        f"The {q.TOP_N} symbols with the most cache operations (hits + misses per second, 5-minute rate), with their "
        f"manifest insert rate. Symbols past the cardinality cap are counted under `{metrics.OTHER_SYMBOL}`.",
        [
            p.target(q.top_symbols_by_cache_operations(), ref="A", table=True),
            p.target(q.inserts_of_top_symbols(), ref="B", table=True),
        ],
        {"Value #A": ("cache ops/s", "ops"), "Value #B": ("inserts/s", "ops")},
        sort_by="cache ops/s",
    )
    contention = p.table(
        "Lock Contention by Symbol",
        f"The {q.TOP_N} symbols whose writers wait longest for their advisory lock (p95 over 5 minutes, worst job): "
        "the guide's `topk(10, histogram_quantile(0.95, …) by (symbol))`, written so that it parses.",
        [p.target(q.top_symbols_by_lock_wait(), table=True)],
        {"Value": ("lock wait p95", "ms")},
        sort_by="lock wait p95",
    )
    row = p.row("Hotspots")
    return p.Section(row, ((activity, 12, 9), (contention, 12, 9)))


def templating() -> Any:
    datasource = g.Template(
        name=q.DATASOURCE_VARIABLE,
        label="Data source",
        query="prometheus",
        type="datasource",
        default="",
    )
    job = g.Template(
        name=q.JOB_VARIABLE,
        label="Job",
        query=q.variable_values(q.JOB_LABEL),
        dataSource=p.DATASOURCE,
        includeAll=True,
        multi=True,
        allValue=".*",
        default="$__all",
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
    )
    instance = g.Template(
        name=q.INSTANCE_VARIABLE,
        label="Instance",
        query=q.variable_values(q.INSTANCE_LABEL, within_job=True),
        dataSource=p.DATASOURCE,
        includeAll=True,
        multi=True,
        allValue=".*",
        default="$__all",
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
    )
    return g.Templating(list=[datasource, job, instance])


def dashboard(specs: SpecSet, description: str) -> Any:
    """The guide's dashboard for `specs` (budget rows follow the spec's budgeted SLOs, in spec order)."""
    limits = Limits.of(specs.slos)
    sections = [overview(limits), latency(limits), throughput_cache_and_pool(limits), hotspots()]
    sections += [budget.section(slo) for slo in budget.budgeted(specs.slos)]
    return g.Dashboard(
        title=TITLE,
        uid=UID,
        description=description,
        tags=TAGS,
        refresh=REFRESH,
        schemaVersion=SCHEMA_VERSION,
        graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        editable=False,
        time=g.Time("now-1h", "now"),
        timezone="browser",
        templating=templating(),
        panels=p.layout(sections),
    ).auto_panel_ids()
