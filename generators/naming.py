"""Names of the recording rules, written once: rules, promtool tests and dashboards all call these.

Prometheus's recording-rule practice: `level:metric:operations`, where `level` is the labels the result keeps. Every
aggregation keeps `job`, so two scrape jobs never blend into one quantile.
"""

from __future__ import annotations

from collections.abc import Sequence

# on burn-rate alerts: the tier (page_fast...), or the name of the alert policy's condition (defined beside the tiers)
from slos.windows import TIER_LABEL as TIER_LABEL

SLO_LABEL = "slo"  # the SLO's name on every per-SLO recording rule
WINDOW_LABELS = ("long_window", "short_window")  # on burn-rate alerts, naming the firing window pair
POLICY_LABEL = "alert_policy"  # the routing label of an alert policy's alerts


def level(by: Sequence[str] = ()) -> str:
    """`job`, or `job_backend`, `job_symbol`: the labels an aggregation keeps."""
    return "_".join(("job", *by))


def quantile_record(metric: str, quantile: float, window: str, by: Sequence[str] = ()) -> str:
    """`job:manifest_insert_latency_ms:p95_5m`: histogram_quantile over sum by (job, *by, le) of the bucket rate."""
    percent = f"{quantile * 100:g}".replace(".", "_")
    return f"{level(by)}:{metric}:p{percent}_{window}"


def rate_record(metric: str, window: str, by: Sequence[str] = ()) -> str:
    """`job_symbol:featurestore_hits:rate5m` (a counter's `_total` suffix is dropped, as the practice says)."""
    return f"{level(by)}:{metric.removesuffix('_total')}:rate{window}"


def gauge_ratio_record(metric: str, divide_by: str) -> str:
    """`job:pg_manifest_pool_connections_active_per_total:ratio`-style name for a ratio of two gauges."""
    common = _common_prefix(metric, divide_by)
    return f"job:{common}{metric.removeprefix(common)}_per_{divide_by.removeprefix(common)}:ratio"


def sli_error_record(window: str) -> str:
    """Error ratio of a budgeted SLO over `window`, labelled `slo="<name>"`."""
    return f"slo:sli_error:ratio_rate{window}"


# the two event records of a budgeted SLO (the names the multi-cluster layer's event records use too)
BAD_EVENTS, TOTAL_EVENTS = "sli_bad_events", "sli_events"


def sli_events_record(kind: str, window: str) -> str:
    """The BAD_EVENTS or TOTAL_EVENTS of a budgeted SLO over `window`, recorded at every evaluation and labelled
    `slo="<name>"`: `slo:sli_bad_events:increase5m`, `slo:sli_events:increase5m`."""
    return f"slo:{kind}:increase{window}"


OBJECTIVE_RECORD = "slo:objective:ratio"
ERROR_BUDGET_RECORD = "slo:error_budget:ratio"
BUDGET_REMAINING_RECORD = "slo:error_budget_remaining:ratio"  # 1 - (error ratio over the period / budget)


def burn_rate_record(window: str) -> str:
    """Burn rate over `window`: the error ratio divided by the error budget."""
    return f"slo:burn_rate:ratio_rate{window}"


def _common_prefix(a: str, b: str) -> str:
    parts_a, parts_b = a.split("_"), b.split("_")
    common: list[str] = []
    for x, y in zip(parts_a, parts_b, strict=False):
        if x != y:
            break
        common.append(x)
    return "_".join(common) + "_" if common else ""


# What the dashboards plot beyond the SLOs' own expressions; rules.py records every one of these, and the dashboards
# query them by the names above. (metric, quantile, window, grouping labels besides job and le)
DASHBOARD_QUANTILES: tuple[tuple[str, float, str, tuple[str, ...]], ...] = (
    ("manifest_insert_latency_ms", 0.50, "5m", ("backend",)),
    ("manifest_insert_latency_ms", 0.95, "5m", ("backend",)),
    ("manifest_insert_latency_ms", 0.99, "5m", ("backend",)),
    ("advisory_lock_wait_time_ms", 0.50, "5m", ()),
    ("advisory_lock_wait_time_ms", 0.95, "5m", ()),
    ("advisory_lock_wait_time_ms", 0.99, "5m", ()),
    ("advisory_lock_wait_time_ms", 0.95, "5m", ("symbol",)),
)
# (counter or histogram _count, window, grouping labels besides job)
DASHBOARD_RATES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("featurestore_hits_total", "5m", ("symbol",)),
    ("featurestore_misses_total", "5m", ("symbol",)),
    ("manifest_insert_latency_ms_count", "5m", ("backend",)),
    ("manifest_insert_latency_ms_count", "5m", ("symbol",)),
)
