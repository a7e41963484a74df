"""The monitoring guide's dashboard ("Grafana Dashboard" section): its six panels with its thresholds and colours, the
SLOs the guide names without a panel (read latency, component health), then one error-budget row per budgeted SLO.

    SLO overview   insert p95 (stat) · hit ratio (stat) · read p95 (stat) · component health (stat)
    Latency        PostgreSQL p50/p95/p99 vs DuckDB p95 · advisory lock wait p50/p95/p99
    Throughput     inserts/s by backend · hit ratio with its 95 % line · pool total vs active, utilization %
    Hotspots       top symbols by cache operations · lock contention by symbol
    Error budget   (per budgeted SLO) budget remaining · burn rate per alert window
"""

from __future__ import annotations

from typing import Any

from grafanalib import core as g

from featurestore import metrics
from generators.grafana import budget
from generators.grafana import panels as p
from generators.grafana import queries as q
from slos.loader import SpecSet

UID = "featurestore-overview"
TITLE = "FeatureStore Monitoring"
TAGS = ["featurestore", "generated", "slo"]
REFRESH = "30s"  # the guide's scrape interval: refreshing faster only redraws the same samples
# grafanalib says 12. Grafana migrates a dashboard only when its schemaVersion is below the current one, so the JSON
# is written in schema 39's shapes (Grafana 10.3's DashboardMigrator): datasource refs `{type, uid}` on panels,
# targets and variables, threshold steps with a JSON-null base, table `cellOptions`, legend `showLegend`.
SCHEMA_VERSION = 39

# The guide's colours. They agree with slos/specs/featurestore.yaml (tests/generators/test_grafana.py checks it):
# insert p95 < 5 ms and p99 < 25 ms, lock wait p95 < 10 ms, read p95 < 2 ms, hit ratio >= 95 %, pool < 80 %.
INSERT_P95_STEPS = p.steps(("green", None), ("yellow", 5.0), ("red", 25.0))
HIT_RATIO_STEPS = p.steps(("red", None), ("yellow", 0.90), ("green", 0.95))
LOCK_WAIT_STEPS = p.steps(("green", None), ("red", 10.0))
READ_P95_STEPS = p.steps(("green", None), ("red", 2.0))
POOL_UTILIZATION_STEPS = p.steps(("green", None), ("red", 0.80))
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


def overview() -> p.Section:
    insert_p95 = p.stat(
        "Manifest Insert Latency (P95)",
        "95th percentile of manifest insert latency (lock wait included) over 5 minutes, from the SLO's recording "
        "rule. SLO: < 5 ms (target 2-3 ms). Green < 5 ms, yellow < 25 ms, red >= 25 ms.",
        [p.target(q.insert_p95(), label(q.JOB_LABEL))],
        "ms",
        INSERT_P95_STEPS,
    )
    hit_ratio = p.stat(
        "Hit Ratio",
        "Cache hits / (hits + misses) since process start, worst instance per job. SLO: >= 95 % (target 97 %+). "
        "Red < 90 %, yellow < 95 %, green >= 95 %.",
        [p.target(q.hit_ratio(), label(q.JOB_LABEL))],
        "percentunit",
        HIT_RATIO_STEPS,
    )
    read_p95 = p.stat(
        "Manifest Read Latency (P95)",
        "95th percentile of manifest lookup latency over 5 minutes. SLO: < 2 ms.",
        [p.target(q.read_p95(), label(q.JOB_LABEL))],
        "ms",
        READ_P95_STEPS,
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
    row = p.row("SLO overview", "Current values of the guide's SLOs, coloured by their thresholds.")
    return p.Section(row, ((insert_p95, 6, 6), (hit_ratio, 6, 6), (read_p95, 6, 6), (health, 6, 6)))


def latency() -> p.Section:
    comparison = p.timeseries(
        "Latency Comparison Over Time",
        "Manifest insert latency by backend: PostgreSQL (advisory locks) p50/p95/p99 against the DuckDB fallback's "
        "p95, over 5-minute windows. Dashed lines: the 5 ms p95 and 25 ms p99 SLOs. Shows whether advisory locks keep "
        "PostgreSQL inserts fast under contention.",
        p.targets(
            *(
                (q.insert_by_backend(value, metrics.BACKEND_POSTGRESQL), f"PostgreSQL {name} {JOB}")
                for name, value in QUANTILES.items()
            ),
            (q.insert_by_backend(0.95, metrics.BACKEND_DUCKDB), f"DuckDB p95 {JOB}"),
        ),
        "ms",
        INSERT_P95_STEPS,
    )
    lock_wait = p.timeseries(
        "Advisory Lock Wait Time",
        "Time writers wait for the per-symbol advisory lock: p50/p95/p99 over 5-minute windows. Dashed line: the 10 ms "
        "p95 SLO (target 1-2 ms). A rising p99 with a flat p50 points at a few hot symbols (see Hotspots).",
        p.targets(*((q.lock_wait(value), f"{name} {JOB}") for name, value in QUANTILES.items())),
        "ms",
        LOCK_WAIT_STEPS,
    )
    row = p.row("Latency", "Manifest insert latency by backend and advisory lock wait.")
    return p.Section(row, ((comparison, 12, 9), (lock_wait, 12, 9)))


def throughput_cache_and_pool() -> p.Section:
    inserts = p.timeseries(
        "Manifest Inserts per Second",
        "Manifest inserts per second by backend (5-minute rate): how much work the latency panels describe, and "
        "whether writes have moved to the DuckDB fallback.",
        [p.target(q.inserts_by_backend(), f"{label(metrics.LABEL_BACKEND)} {JOB}")],
        "ops",
    )
    hit_ratio = p.timeseries(
        "Hit Ratio vs 95 % SLO",
        "The hit ratio over time with the guide's lines: 95 % (SLO) and 90 % (red below).",
        [p.target(q.hit_ratio(), label(q.JOB_LABEL))],
        "percentunit",
        HIT_RATIO_STEPS,
        valueMax=1,
    )
    pool = p.timeseries(
        "Connection Pool Utilization",
        "PostgreSQL manifest pool: connections in the pool (total) against connections lent out (active) and callers "
        "queued for one (waiting), left axis; utilization = active / total on the right axis, dashed line at the 80 % "
        "SLO. At 100 % callers block (PostgreSQLPoolExhausted).",
        p.targets(
            (q.pool_gauge(metrics.POOL_TOTAL), f"total {JOB}"),
            (q.pool_gauge(metrics.POOL_ACTIVE), f"active {JOB}"),
            (q.pool_gauge(metrics.POOL_WAITING), f"waiting {JOB}"),
            (q.pool_utilization(), f"utilization {JOB}"),
        ),
        "short",
        axisLabel="connections",
        overrides=[_utilization_axis("D")],
    )
    row = p.row(
        "Throughput, cache and connection pool", "Insert rate, cache effectiveness and PostgreSQL pool pressure."
    )
    return p.Section(row, ((inserts, 8, 8), (hit_ratio, 8, 8), (pool, 8, 8)))


def _utilization_axis(ref: str) -> dict[str, Any]:
    """Query `ref` on its own right-hand percent axis, with the 80 % SLO line."""
    return {
        "matcher": {"id": "byFrameRefID", "options": ref},
        "properties": [
            {"id": "unit", "value": "percentunit"},
            {"id": "min", "value": 0},
            {"id": "max", "value": 1},
            {"id": "custom.axisPlacement", "value": "right"},
            {"id": "custom.axisLabel", "value": "utilization"},
            {"id": "thresholds", "value": {"mode": "absolute", "steps": POOL_UTILIZATION_STEPS}},
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
    row = p.row("Hotspots", "Which symbols carry the load and which contend for their lock.")
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
    return g.Templating(list=[datasource, job])


def dashboard(specs: SpecSet, description: str) -> Any:
    """The guide's dashboard for `specs` (budget rows follow the spec's budgeted SLOs, in spec order)."""
    sections = [overview(), latency(), throughput_cache_and_pool(), hotspots()]
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
