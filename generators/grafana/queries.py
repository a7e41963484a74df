"""The dashboards' PromQL, built from the metric catalog and the recording-rule names, never typed by hand.

Every latency quantile and per-symbol rate comes from a recording rule (`generators.naming`), so a panel reads one
precomputed series instead of re-running `histogram_quantile` over every bucket at each refresh. Every query filters
on the dashboard's `$job` variable; the per-SLO records (`slo:*`) are selected by their `slo` label instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from featurestore import metrics
from generators import naming

JOB_LABEL = "job"  # Prometheus's target label; every recording rule keeps it (naming.level)
JOB_VARIABLE = "job"
INSTANCE_LABEL = "instance"
INSTANCE_VARIABLE = "instance"
DATASOURCE_VARIABLE = "datasource"
RECORD_WINDOW = "5m"  # the window of the dashboard records in naming.DASHBOARD_QUANTILES / DASHBOARD_RATES
TOP_N = 10


def selector(
    metric: str, matchers: Mapping[str, str] | None = None, *, by_job: bool = True, by_instance: bool = False
) -> str:
    """`metric{job=~"$job",backend="postgresql"}`: the `$job` filter first (and `$instance` on a raw per-pod series;
    the records are aggregated per job and carry no instance), then exact matchers in sorted order."""
    parts = [f'{JOB_LABEL}=~"${JOB_VARIABLE}"'] if by_job else []
    parts += [f'{INSTANCE_LABEL}=~"${INSTANCE_VARIABLE}"'] if by_instance else []
    parts += [f'{name}="{value}"' for name, value in sorted((matchers or {}).items())]
    return f"{metric}{{{','.join(parts)}}}"


def quantile(metric: metrics.MetricSpec, q: float, by: tuple[str, ...] = (), **matchers: str) -> str:
    """The recorded `q` quantile of a histogram over the dashboard window, per job (and `by`)."""
    return selector(naming.quantile_record(metric.name, q, RECORD_WINDOW, by), matchers)


def rate(metric: str, by: tuple[str, ...] = ()) -> str:
    return selector(naming.rate_record(metric, RECORD_WINDOW, by))


def per_job(aggregate: str, metric: metrics.MetricSpec) -> str:
    """`min by (job) (metric{job=~"$job"})`: one series per scrape job, whatever the number of instances."""
    return f"{aggregate} by ({JOB_LABEL}) ({selector(metric.name, by_instance=True)})"


def insert_p95() -> str:
    """The insert-latency SLO's own record (the guide's `histogram_quantile(0.95, rate(…[5m]))`, aggregated first)."""
    return quantile(metrics.MANIFEST_INSERT_LATENCY, 0.95)


def insert_by_backend(q: float, backend: str) -> str:
    return quantile(metrics.MANIFEST_INSERT_LATENCY, q, (metrics.LABEL_BACKEND,), **{metrics.LABEL_BACKEND: backend})


def inserts_by_backend() -> str:
    return rate(f"{metrics.MANIFEST_INSERT_LATENCY.name}_count", (metrics.LABEL_BACKEND,))


def lock_wait(q: float) -> str:
    return quantile(metrics.ADVISORY_LOCK_WAIT, q)


def read_p95() -> str:
    return quantile(metrics.MANIFEST_READ_LATENCY, 0.95)


def hit_ratio() -> str:
    """The worst instance per job: the SLO alert judges every instance's gauge on its own."""
    return per_job("min", metrics.HIT_RATIO)


def pool_gauge(metric: metrics.MetricSpec) -> str:
    return per_job("sum", metric)


def pool_utilization() -> str:
    return selector(naming.gauge_ratio_record(metrics.POOL_ACTIVE.name, metrics.POOL_TOTAL.name))


def component_health() -> str:
    """0 when any instance of the component fails its check."""
    return f"min by ({metrics.LABEL_COMPONENT}) ({selector(metrics.HEALTH_STATUS.name, by_instance=True)})"


def _by_symbol(metric: str) -> str:
    return f"sum by ({metrics.LABEL_SYMBOL}) ({rate(metric, (metrics.LABEL_SYMBOL,))})"


def cache_operations_by_symbol() -> str:
    """Hits + misses per second by symbol; `a + b` alone would drop a symbol that only hit or only missed."""
    hits, misses = _by_symbol(metrics.HITS.name), _by_symbol(metrics.MISSES.name)
    return f"{hits} + {misses} or {hits} or {misses}"


def top_symbols_by_cache_operations() -> str:
    return f"topk({TOP_N}, {cache_operations_by_symbol()})"


def inserts_of_top_symbols() -> str:
    """Insert rate of the symbols the cache-operations query ranks, as a second column of the same table."""
    inserts = _by_symbol(f"{metrics.MANIFEST_INSERT_LATENCY.name}_count")
    return f"{inserts} and on ({metrics.LABEL_SYMBOL}) {top_symbols_by_cache_operations()}"


def top_symbols_by_lock_wait() -> str:
    """The guide's `topk(10, histogram_quantile(0.95, rate(…) by (symbol)))`, which does not parse, done right.

    `>= 0` drops the NaN of symbols that took no lock in the window, which would otherwise take a table row.
    """
    p95 = quantile(metrics.ADVISORY_LOCK_WAIT, 0.95, (metrics.LABEL_SYMBOL,))
    return f"topk({TOP_N}, max by ({metrics.LABEL_SYMBOL}) ({p95} >= 0))"


def budget_remaining(slo: str) -> str:
    return selector(naming.BUDGET_REMAINING_RECORD, {naming.SLO_LABEL: slo}, by_job=False)


def burn_rate(slo: str, window: str) -> str:
    return selector(naming.burn_rate_record(window), {naming.SLO_LABEL: slo}, by_job=False)


def variable_values(label: str, within_job: bool = False) -> str:
    """Grafana's `label_values(...)` over a gauge every instance exports from its first scrape."""
    series = selector(metrics.HIT_RATIO.name) if within_job else metrics.HIT_RATIO.name
    return f"label_values({series}, {label})"
