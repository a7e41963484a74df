"""Names of the recording rules, written once: rules, promtool tests and dashboards all call these.

Prometheus's recording-rule practice: `level:metric:operations`, where `level` is the labels the result keeps. Every
aggregation keeps `job`, so two scrape jobs never blend into one quantile.
"""

from __future__ import annotations

from collections.abc import Sequence

# the per-SLO record names live upstream, in slos.records, for the SLO report that reads them back
from slos.records import BUDGET_REMAINING_RECORD as BUDGET_REMAINING_RECORD
from slos.records import ERROR_BUDGET_RECORD as ERROR_BUDGET_RECORD
from slos.records import OBJECTIVE_RECORD as OBJECTIVE_RECORD
from slos.records import SLO_LABEL as SLO_LABEL
from slos.records import burn_rate_record as burn_rate_record
from slos.records import sli_error_record as sli_error_record

# on burn-rate alerts: the tier (page_fast...), or the name of the alert policy's condition (defined beside the tiers)
from slos.windows import TIER_LABEL as TIER_LABEL

CLUSTER_LABEL = "cluster"  # the external label of each cluster's Prometheus (docs/clusters.md)
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


# Time-slice SLOs (generators/timeslices.py): an evaluation's verdict on a threshold SLI, a slice's good fraction (0
# or 1 with a slice target), and a calendar SLO's current period start and error ratio since then.
THRESHOLD_GOOD_RECORD = "slo:sli_threshold_good:bool"
TIMESLICE_GOOD_RECORD = "slo:sli_timeslice_good:ratio"
CALENDAR_START_RECORD = "slo:calendar_period_start:timestamp"
CALENDAR_ERROR_RECORD = "slo:sli_error:ratio_calendar"


# the two event records of a budgeted SLO (the names the multi-cluster layer's event records use too)
BAD_EVENTS, TOTAL_EVENTS = "sli_bad_events", "sli_events"


def sli_events_record(kind: str, window: str) -> str:
    """The BAD_EVENTS or TOTAL_EVENTS of a budgeted SLO over `window`, recorded at every evaluation and labelled
    `slo="<name>"`: `slo:sli_bad_events:increase5m`, `slo:sli_events:increase5m`."""
    return f"slo:{kind}:increase{window}"


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
