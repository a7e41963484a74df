"""Pydantic models of the SLO specs: frozen, `extra="forbid"`, so a typo is an error naming the file and the field.

A complete native spec (`slos/specs/featurestore.yaml` is the real one; `tests/slos/test_models.py` parses this one):

```yaml
version: featurestore/v1
service: featurestore
runbook_base_url: https://example.com/runbooks
labels: {team: ml-platform}
slos:
  - name: manifest_insert_p95_ms            # the key under `slos` in GET /api/v1/monitoring/slo
    description: Manifest insert p95 latency stays under 5 ms
    objective: {kind: quantile, metric: manifest_insert_latency_ms, quantile: 0.95, op: "<", threshold: 5, window: 5m}
    alerts:
      - name: FeatureStoreManifestInsertLatencyHigh
        for: 10m
        severity: warning
        summary: Manifest insert p95 latency exceeds 5ms SLO
        description: "Current p95: {{ $value }}ms - investigate advisory lock effectiveness"
  - name: hit_ratio_percent
    description: Cache hit ratio stays at or above 95 %
    objective:
      kind: gauge
      metric: featurestore_hit_ratio
      scale: 100
      op: ">="
      threshold: 95
      events: {counters: [{metric: featurestore_hits_total}, {metric: featurestore_misses_total}], window: 5m}
    min_events: 100                           # fewer than 100 lookups in 5m: too little data to judge the ratio
  - name: http_availability_percent
    description: 99.9 % of HTTP requests succeed over 30 days
    objective:
      kind: ratio
      target: 0.999
      period: 30d
      bad: {metric: featurestore_http_requests_total, matchers: {status_class: 5xx}}
      total: {metric: featurestore_http_requests_total}
    burn_rate:
      name: FeatureStoreAvailabilityBudgetBurn
      summary: Availability error budget burning
      tiers: {page_slow: {enabled: false}, ticket_slow: {severity: info}}   # page_fast/slow, ticket_fast/slow
    min_events: 100                           # a burn alert needs 100 requests in its long window
maintenance_windows:                          # Alertmanager time intervals muting the SLOs' alerts (all, or `slos`)
  - name: weekly-db-maintenance
    slos: [http_availability_percent]
    time_intervals: [{weekdays: [sunday], times: [{start_time: "02:00", end_time: "04:00"}], location: UTC}]
```

`notification_targets` and `alert_policies` (with an SLO's `alert_policies: [<name>]`) are the native form of
OpenSLO's alerting kinds (`slos/openslo_alerting.py`): each condition of a policy an SLO names becomes one more burn
alert of that SLO, routed to the policy's targets.

Objective kinds: `quantile` (a histogram quantile against a threshold in the histogram's unit), `gauge` (a gauge, or
a ratio of two gauges, times `scale`, against a threshold with <, <=, >, >=, ==), `ratio` (good/total or bad/total
events with an error budget), `latency_budget` (the fraction of a histogram's events under a bucket boundary, with an
error budget), `timeslices` (the share of good time slices, or of good evaluations of a threshold query, with an error
budget over a rolling period or a calendar week or month; docs/slo-specs.md, "OpenSLO v1 coverage"). The first two
are alerted by `alerts`; the budgeted ones by multi-window multi-burn-rate `burn_rate`.

`min_events` is a floor of events per window: below it an SLO's alerts stay silent and GET /slo reads
`insufficient_data`. The events are a budgeted SLO's total over each burn alert's long window, a quantile's histogram
`_count` over its window, or a gauge's `events` counters (the gauge holds no count of its own).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

NATIVE_VERSION = "featurestore/v1"

_SELECTOR_NAME = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|$)")
# Where a PromQL template (OpenSLO, Sloth, `error_ratio_query`) takes the rate window.
WINDOW_TEMPLATE = re.compile(r"\{\{\s*\.window\s*\}\}")
ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Duration = Annotated[str, Field(pattern=_DURATION.pattern, description="Prometheus duration: 30s, 5m, 1h, 30d")]
SloName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="snake_case, the /slo key")]
AlertName = Annotated[str, Field(pattern=ALERT_NAME.pattern, description="CamelCase alert name")]
MetricName = Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
Fraction = Annotated[float, Field(gt=0, lt=1, description="between 0 and 1, exclusive: 0.999 = 99.9 %")]

# Limits that keep every number the generated promtool tests compute a normal float64 with room on both sides of a
# threshold (the tests put one series just over it and one just under): thresholds are 0 or between these magnitudes,
# a gauge's scale is a unit conversion (100 for percent, 1000 for ms), and an event floor stays below the million
# events per scrape interval the tests synthesise.
THRESHOLD_MAGNITUDE = (1e-9, 1e12)
SCALE_RANGE = (1e-6, 1e6)
MAX_MIN_EVENTS = 100_000
MIN_CONDITION_BURN_RATE = 0.1  # below it a condition's steady burn is too small for a test to straddle
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _threshold(value: float) -> float:
    low, high = THRESHOLD_MAGNITUDE
    if value != 0 and not low <= abs(value) <= high:
        raise ValueError(f"{value:g} is outside the supported range: 0, or a magnitude from {low:g} to {high:g}")
    return value


def _printable(value: str) -> str:
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(f"control character {found.group()!r} at position {found.start()}: only printable text here")
    return value


def _text(value: str) -> str:
    found = _CONTROL_BUT_NEWLINE.search(value)
    if found is not None:
        raise ValueError(f"control character {found.group()!r} at position {found.start()}: text may break lines only")
    return value


def _web_url(value: str) -> str:
    _printable(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL: runbook links are opened by whoever is paged")
    return value


def _time_zone(value: str) -> str:
    # Alertmanager reads `location` with Go's time.LoadLocation: "UTC", "Local" or a key of the tz database.
    if value in ("UTC", "Local"):
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not a time zone of the tz database (Europe/Berlin, America/New_York, UTC)"
        ) from None
    return value


Threshold = Annotated[float, AfterValidator(_threshold)]
LabelValue = Annotated[str, AfterValidator(_printable), Field(description="printable text, no control characters")]
Text = Annotated[str, AfterValidator(_text), Field(description="text; line breaks, but no other control characters")]
Labels = dict[LabelName, LabelValue]

# Every SLI keeps the labels that tell one deployment from another, so two namespaces' `job="featurestore"` never
# blend into one SLO; an alert about one pod keeps its `instance` too, so it can say which pod.
SCOPE_LABELS: tuple[str, ...] = ("namespace", "job")
POD_LABELS: tuple[str, ...] = (*SCOPE_LABELS, "instance")


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as `5m` or `30d`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Op(StrEnum):
    """How the measured value must compare with the threshold for the SLO to hold."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="

    def holds(self, value: float, threshold: float) -> bool:
        return {
            Op.LT: value < threshold,
            Op.LE: value <= threshold,
            Op.GT: value > threshold,
            Op.GE: value >= threshold,
            Op.EQ: value == threshold,
        }[self]

    @property
    def violated(self) -> str:
        """The PromQL comparison that is true when the SLO is violated (`<` becomes `>=`)."""
        return {Op.LT: ">=", Op.LE: ">", Op.GT: "<=", Op.GE: "<", Op.EQ: "!="}[self]


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False)


class ThresholdAlert(_Model):
    """An alert that fires when a threshold objective is violated for `for`."""

    name: AlertName
    for_: Duration = Field(alias="for")
    severity: Severity
    summary: Text = Field(min_length=1)
    description: Text = Field(min_length=1)
    # The alert's own threshold when it differs from the objective's (pool exhausted = utilization at 100 %).
    threshold: Threshold | None = None
    labels: Labels = Field(default_factory=dict)


class TargetDownAlert(_Model):
    """`up{job="<service>"} == 0` for `for`: a pod Prometheus cannot scrape, whose metrics every other alert misses."""

    name: AlertName
    for_: Duration = Field(default="2m", alias="for")
    severity: Severity = Severity.CRITICAL
    summary: Text = Field(min_length=1)
    description: Text = Field(min_length=1)
    labels: Labels = Field(default_factory=dict)


class QuantileObjective(_Model):
    """`histogram_quantile(quantile, sum by (le, *by) (rate(metric_bucket{matchers}[window]))) op threshold`."""

    kind: Literal["quantile"]
    metric: MetricName
    quantile: Fraction
    op: Op = Op.LT
    threshold: Threshold = Field(gt=0)
    window: Duration = "5m"
    by: tuple[LabelName, ...] = ()
    matchers: Labels = Field(default_factory=dict)


class EventSelector(_Model):
    """Counted events: a catalog counter with label matchers (native), or a PromQL query (OpenSLO).

    A query is a counter selector that the generator wraps in `sum(rate(…[window]))`, unless it contains
    `{{.window}}`, in which case it is a template used as is with the window substituted.
    """

    metric: MetricName | None = None
    matchers: Labels = Field(default_factory=dict)
    query: str | None = Field(default=None, min_length=1)

    @property
    def counter_name(self) -> str | None:
        """The counter's name: `metric`, or a plain selector query's; None for a `{{.window}}` template."""
        if self.metric is not None:
            return self.metric
        assert self.query is not None
        if "{{" in self.query:
            return None
        found = _SELECTOR_NAME.match(self.query)
        return found.group(1) if found is not None else None

    @model_validator(mode="after")
    def _one_source(self) -> EventSelector:
        if (self.metric is None) == (self.query is None):
            raise ValueError("give exactly one of `metric` (with optional `matchers`) or `query`")
        if self.query is not None and self.matchers:
            raise ValueError("`matchers` go with `metric`, not with `query`")
        return self


class GaugeEvents(_Model):
    """The events behind a gauge (a hit ratio's lookups: its hits and misses), counted as the summed increase of
    `counters` over `window`: what the SLO's `min_events` is held against, since a gauge holds no count of its own."""

    counters: tuple[EventSelector, ...] = Field(min_length=1, description="catalog counters, summed")
    window: Duration = Field(default="5m", description="the window the gauge itself summarises (the hit ratio's 5m)")

    @model_validator(mode="after")
    def _named_counters(self) -> GaugeEvents:
        if any(counter.metric is None for counter in self.counters):
            raise ValueError("a gauge's events are counters named by `metric` (with optional `matchers`), not queries")
        return self


class GaugeObjective(_Model):
    """`aggregate(metric{matchers}) [/ aggregate(divide_by)] * scale op threshold`."""

    kind: Literal["gauge"]
    metric: MetricName
    divide_by: MetricName | None = None
    scale: float = Field(default=1.0, ge=SCALE_RANGE[0], le=SCALE_RANGE[1])
    op: Op
    threshold: Threshold
    aggregate: Literal["min", "max", "sum", "avg"] | None = None
    by: tuple[LabelName, ...] = ()
    matchers: Labels = Field(default_factory=dict)
    events: GaugeEvents | None = Field(default=None, description="the counters of the gauge's events, for min_events")


class RatioObjective(_Model):
    """Good/total or bad/total events over `period`, with an error budget of 1 - target; or a raw error ratio (Sloth's
    `raw` SLI): a `{{.window}}` query whose value is the error ratio itself, recorded as it is."""

    kind: Literal["ratio"]
    target: Fraction
    period: Duration = "30d"
    good: EventSelector | None = None
    bad: EventSelector | None = None
    total: EventSelector | None = None
    error_ratio_query: str | None = Field(
        default=None,
        min_length=1,
        description="a PromQL error ratio (0 to 1) with {{.window}}, instead of good or bad with total",
    )

    @model_validator(mode="after")
    def _good_or_bad(self) -> RatioObjective:
        if self.error_ratio_query is not None:
            if self.good is not None or self.bad is not None or self.total is not None:
                raise ValueError("`error_ratio_query` is the whole SLI: give it without `good`, `bad` or `total`")
            if WINDOW_TEMPLATE.search(self.error_ratio_query) is None:
                raise ValueError("`error_ratio_query` needs the {{.window}} template where the rate window goes")
            return self
        if (self.good is None) == (self.bad is None) or self.total is None:
            raise ValueError("give exactly one of `good` or `bad`, with `total` (or an `error_ratio_query` alone)")
        return self

    @property
    def counted(self) -> bool:
        """Whether the SLI counts events (good or bad, and total), rather than reading a raw error ratio."""
        return self.error_ratio_query is None

    @property
    def may_leave_range(self) -> bool:
        """Whether the error ratio can leave [0, 1]: not when the events are series of the total's own metric (a
        metric, or a plain selector query, of one name: part of the total), but with two metrics, `{{.window}}`
        templates or a raw ratio (pyrra#448)."""
        event = self.good or self.bad
        if event is None or self.total is None:
            return True
        name = event.counter_name
        return name is None or name != self.total.counter_name


class LatencyBudgetObjective(_Model):
    """The fraction of a histogram's events at or under `threshold` (a bucket boundary) is at least `target`."""

    kind: Literal["latency_budget"]
    metric: MetricName
    threshold: Threshold = Field(gt=0)
    target: Fraction
    period: Duration = "30d"
    matchers: Labels = Field(default_factory=dict)


# --- Time slices and calendar windows (OpenSLO Timeslices, RatioTimeslices, threshold metrics; docs/slo-specs.md
# "OpenSLO v1 coverage"). The rules are built by generators/timeslices.py and generators/calendar.py.

CalendarDuration = Literal["1w", "1M"]
# A calendar window's nominal length, for the burn-rate factors of its alerts (a month's budget spent in 1h is 2 %
# whether the month has 28 or 31 days: the factors are computed for 30d, as for a rolling 30d SLO).
CALENDAR_PERIODS: dict[str, str] = {"1w": "7d", "1M": "30d"}
LAST_BOUNDARY_DAY = 28  # the 29th to the 31st are missing from some months
_START = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})$")


class Calendar(_Model):
    """A calendar-aligned budget period: weeks or months from `start` (a wall-clock time in `time_zone`, the way
    OpenSLO's `calendar.startTime` is written), the budget reset at each boundary."""

    duration: CalendarDuration
    start: Annotated[str, Field(pattern=_START.pattern, description="YYYY-MM-DD HH:MM:SS, wall clock of time_zone")]
    time_zone: Annotated[str, AfterValidator(_time_zone)] = "UTC"

    @field_validator("start")
    @classmethod
    def _a_real_time(cls, value: str, info: ValidationInfo) -> str:
        year, month, day, hour, minute, second = (int(part) for part in _START.findall(value)[0])
        try:
            datetime(year, month, day, hour, minute, second)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a date and time: {exc}") from None
        if info.data.get("duration") == "1M" and day > LAST_BOUNDARY_DAY:
            raise ValueError(
                f"a monthly window starting on day {day} has no boundary in shorter months: "
                f"start it on day 1 to {LAST_BOUNDARY_DAY}"
            )
        return value

    @field_validator("time_zone")
    @classmethod
    def _one_standard_offset(cls, value: str, info: ValidationInfo) -> str:
        if value == "Local":
            raise ValueError("`Local` is the Prometheus server's zone, unknown here: name one (UTC, Europe/Berlin)")
        start = info.data.get("start")
        if value == "UTC" or start is None:
            return value
        # PromQL has no zone database: the rules use one offset, so it must hold for the periods they compute.
        calendar = Calendar.model_construct(start=start, time_zone=value)
        first = calendar.standard_offset()
        for day in range(0, 366, 7):
            moment = calendar.when + timedelta(days=day)
            if calendar.standard_offset(moment) != first:
                raise ValueError(
                    f"{value!r} changes its standard offset by {moment:%Y-%m-%d}: the rules use one fixed offset "
                    "(pick a zone, or UTC, whose standard time stays the same)"
                )
        return value

    @property
    def when(self) -> datetime:
        """`start` as a naive wall-clock datetime."""
        return datetime.fromisoformat(self.start.replace(" ", "T"))

    def standard_offset(self, when: datetime | None = None) -> int:
        """Seconds east of UTC of the zone's standard time (daylight saving time left out) at `when`, or at `start`."""
        if self.time_zone == "UTC":
            return 0
        moment = (when or self.when).replace(tzinfo=ZoneInfo(self.time_zone))
        offset, dst = moment.utcoffset(), moment.dst()
        assert offset is not None
        return int((offset - (dst or timedelta(0))).total_seconds())

    @property
    def start_seconds(self) -> int:
        """The Unix time of `start` on the zone's standard-time clock."""
        return int(self.when.replace(tzinfo=UTC).timestamp()) - self.standard_offset()


class ThresholdSLI(_Model):
    """A gauge, or a latency quantile, compared with a value: an evaluation is good while `query op threshold` holds.
    `{{.window}}` in the query takes the slice (or, without slices, the shortest SLI window)."""

    query: str = Field(min_length=1, description="PromQL of a gauge or a quantile")
    op: Op
    threshold: Threshold


class TimeslicesObjective(_Model):
    """The share of good time slices over `period` (or the `calendar` window) is at least `target`.

    A slice of `slice` is good when its SLI met `slice_target` (OpenSLO Timeslices); without `slice_target` each
    slice counts its good fraction (RatioTimeslices). The SLI is events (`good` or `bad`, with `total`) or a
    `threshold` query. Without `slice`, each rule evaluation of the threshold query is one event (OpenSLO Occurrences
    of a threshold metric).
    """

    kind: Literal["timeslices"]
    target: Fraction
    period: Duration = "30d"
    calendar: Calendar | None = None
    slice: Duration | None = Field(default=None, description="the time slice, such as 1m; none: each evaluation")
    slice_target: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="a slice is good when its good fraction reaches this; none: slices are averaged"
    )
    good: EventSelector | None = None
    bad: EventSelector | None = None
    total: EventSelector | None = None
    threshold: ThresholdSLI | None = None

    @model_validator(mode="before")
    @classmethod
    def _calendar_period(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("calendar"), dict) and "period" not in data:
            nominal = CALENDAR_PERIODS.get(str(data["calendar"].get("duration")))
            if nominal is not None:
                return {**data, "period": nominal}
        return data

    @model_validator(mode="after")
    def _one_sli(self) -> TimeslicesObjective:
        events = self.good is not None or self.bad is not None or self.total is not None
        if (self.threshold is None) == (not events):
            raise ValueError("give either `threshold` or events (`good` or `bad`, with `total`)")
        if events and ((self.good is None) == (self.bad is None) or self.total is None):
            raise ValueError("give exactly one of `good` or `bad`, with `total`")
        if self.slice is None and (events or self.slice_target is not None):
            raise ValueError("without `slice` only a `threshold` SLI is read, one event per evaluation")
        if self.calendar is not None and self.period != CALENDAR_PERIODS[self.calendar.duration]:
            nominal = CALENDAR_PERIODS[self.calendar.duration]
            raise ValueError(f"a {self.calendar.duration} calendar window has the period {nominal}, not {self.period}")
        return self

    def events(self) -> RatioObjective:
        """The event SLI as a ratio objective, whose error ratio over a slice is the slice's bad fraction."""
        assert self.total is not None
        return RatioObjective(kind="ratio", target=self.target, good=self.good, bad=self.bad, total=self.total)


# --- end of time slices and calendar windows

Objective = Annotated[
    QuantileObjective | GaugeObjective | RatioObjective | LatencyBudgetObjective | TimeslicesObjective,
    Field(discriminator="kind"),
]
BUDGETED = (RatioObjective, LatencyBudgetObjective, TimeslicesObjective)


# The tiers of the multi-window burn-rate alerts, fastest first (their windows: slos/windows.py). A faster tier firing
# inhibits the slower ones of the same SLO in Alertmanager; each can be disabled alone (`burn_rate.tiers`).
TierName = Literal["page_fast", "page_slow", "ticket_fast", "ticket_slow"]
TIER_NAMES: tuple[TierName, ...] = ("page_fast", "page_slow", "ticket_fast", "ticket_slow")


class TierSettings(_Model):
    """One tier of an SLO's burn-rate alerts."""

    enabled: bool = True
    severity: Severity | None = Field(default=None, description="default: page_severity or ticket_severity")


class BurnTiers(_Model):
    """Per tier settings, by tier name; a tier left out keeps the defaults (enabled)."""

    page_fast: TierSettings = TierSettings()
    page_slow: TierSettings = TierSettings()
    ticket_fast: TierSettings = TierSettings()
    ticket_slow: TierSettings = TierSettings()

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: object) -> object:
        if isinstance(data, dict):
            unknown = sorted(str(name) for name in data if name not in TIER_NAMES)
            if unknown:
                raise ValueError(f"unknown tier {', '.join(map(repr, unknown))}: the tiers are {', '.join(TIER_NAMES)}")
        return data

    def of(self, name: TierName) -> TierSettings:
        settings: TierSettings = getattr(self, name)
        return settings

    @property
    def enabled(self) -> tuple[TierName, ...]:
        return tuple(name for name in TIER_NAMES if self.of(name).enabled)


class BurnRateAlerting(_Model):
    """Multi-window multi-burn-rate alerts of a budgeted SLO (one rule per enabled tier, a window pair each) and its
    absent-metrics alert."""

    name: AlertName
    summary: Text = Field(min_length=1)
    description: Text = "{{ $labels.slo }} is burning its error budget {{ $value | humanize }}x faster than sustainable"
    page_severity: Severity = Severity.CRITICAL
    ticket_severity: Severity = Severity.WARNING
    absent_for: Duration = "10m"
    absent_name: AlertName | None = Field(default=None, description="defaults to <name>MetricsAbsent")
    labels: Labels = Field(default_factory=dict)
    page_labels: Labels = Field(default_factory=dict, description="added to the page tier's alerts")
    ticket_labels: Labels = Field(default_factory=dict, description="added to the ticket tier's alerts")
    annotations: dict[LabelName, Text] = Field(
        default_factory=dict, description="extra annotations of the burn-rate alerts (summary/description have fields)"
    )
    tiers: BurnTiers = Field(default_factory=BurnTiers, description="disable a tier or set its severity, by name")

    @field_validator("annotations")
    @classmethod
    def _own_fields(cls, annotations: dict[str, str]) -> dict[str, str]:
        for key in ("summary", "description", "runbook_url"):
            if key in annotations:
                raise ValueError(f"{key!r} is set by its own field, not in `annotations`")
        return annotations

    @property
    def absent_alert(self) -> str:
        """The name of the alert that fires when the SLO's metrics are absent."""
        return self.absent_name or f"{self.name}MetricsAbsent"

    def severity(self, tier: TierName) -> Severity:
        """The tier's own severity, else page_severity for the page tiers and ticket_severity for the others."""
        own = self.tiers.of(tier).severity
        if own is not None:
            return own
        return self.page_severity if tier.startswith("page") else self.ticket_severity


PolicyName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63, description="RFC 1123")]


class BurnCondition(_Model):
    """An alert condition of a policy: the SLO's burn rate over `lookback_window` is above `threshold` for
    `alert_after` (OpenSLO's AlertCondition of kind burnrate), compiled into one more burn alert of each SLO that
    names the policy."""

    name: PolicyName
    description: Text = ""
    severity: LabelValue = Field(min_length=1, description="the alert's severity label (OpenSLO: page, ticket...)")
    op: Literal["gt", "gte"] = "gt"
    threshold: Threshold = Field(
        ge=MIN_CONDITION_BURN_RATE, description="burn rate: 1 spends the budget exactly over the period"
    )
    lookback_window: Duration
    alert_after: Duration = "0s"


class NotificationTarget(_Model):
    """Where a policy's alerts go (OpenSLO's AlertNotificationTarget): an Alertmanager receiver of the same name."""

    name: PolicyName
    target: str = Field(min_length=1, description="the kind of integration (slack, pagerduty, email...)")
    description: str = ""


class AlertPolicy(_Model):
    """Conditions and the targets notified when one holds; alerts of the policy carry `alert_policy: <name>`."""

    name: PolicyName
    description: str = ""
    conditions: tuple[BurnCondition, ...] = Field(min_length=1)
    notify: tuple[PolicyName, ...] = Field(min_length=1, description="names of notification_targets")
    send_resolved: bool = True
    alert_when_no_data: bool = False


class SLO(_Model):
    name: SloName
    description: str = Field(min_length=1)
    objective: Objective
    alerts: tuple[ThresholdAlert, ...] = ()
    burn_rate: BurnRateAlerting | None = None
    labels: Labels = Field(default_factory=dict)
    alert_policies: tuple[PolicyName, ...] = Field(default=(), description="names of the file's alert_policies")
    min_events: Annotated[int, Field(ge=0, le=MAX_MIN_EVENTS, strict=True)] | None = Field(
        default=None,
        description="events per window below which the SLO's alerts stay silent and GET /slo reads insufficient_data: "
        "a burn-rate alert's long window, a quantile's window, a gauge's `events.window` (absent or 0: no floor)",
    )

    @model_validator(mode="after")
    def _alerting_fits_kind(self) -> SLO:
        if self.budgeted:
            if self.alerts:
                raise ValueError(f"a {self.objective.kind} SLO is alerted by `burn_rate`, not `alerts`")
        elif self.burn_rate is not None:
            raise ValueError(f"a {self.objective.kind} SLO has no error budget: use `alerts`, not `burn_rate`")
        return self

    @property
    def budgeted(self) -> bool:
        return isinstance(self.objective, BUDGETED)

    @property
    def sanity_alert(self) -> str | None:
        """The ticket raised when the SLI's inputs disagree (an error ratio outside [0, 1]), for a ratio SLO with
        burn-rate alerts whose ratio can leave that range: `<burn_rate.name>InputsInconsistent`."""
        if self.burn_rate is None or not isinstance(self.objective, RatioObjective):
            return None
        return f"{self.burn_rate.name}InputsInconsistent" if self.objective.may_leave_range else None

    @property
    def status_threshold(self) -> float:
        """The threshold GET /slo reports: the objective's threshold, or the target in percent for budgeted SLOs."""
        if isinstance(self.objective, BUDGETED):
            return round(self.objective.target * 100, 6)
        return self.objective.threshold

    @property
    def status_op(self) -> Op:
        if isinstance(self.objective, BUDGETED):
            return Op.GE
        return self.objective.op

    def compliant(self, current: float) -> bool:
        """Whether a current value (in the units of `status_threshold`) meets the SLO."""
        return self.status_op.holds(current, self.status_threshold)


class TimeRange(_Model):
    """Alertmanager's `times` entry: `HH:MM` to `HH:MM`, the end excluded."""

    start_time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
    end_time: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.start_time >= self.end_time:
            raise ValueError(f"start_time {self.start_time} is not before end_time {self.end_time}")
        return self


_WEEKDAY = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)"


class TimeInterval(_Model):
    """One Alertmanager `time_interval`: every field given must match (an omitted field matches any time)."""

    times: tuple[TimeRange, ...] = ()
    weekdays: tuple[Annotated[str, Field(pattern=rf"^{_WEEKDAY}(:{_WEEKDAY})?$")], ...] = ()
    days_of_month: tuple[Annotated[str, Field(pattern=r"^-?\d{1,2}(:-?\d{1,2})?$")], ...] = ()
    months: tuple[Annotated[str, Field(pattern=r"^([a-z]+|\d{1,2})(:([a-z]+|\d{1,2}))?$")], ...] = ()
    years: tuple[Annotated[str, Field(pattern=r"^\d{4}(:\d{4})?$")], ...] = ()
    location: Annotated[str, AfterValidator(_time_zone)] = Field(
        default="UTC", min_length=1, description="IANA time zone the times are read in"
    )


class MaintenanceWindow(_Model):
    """A named planned window: the SLO alerts of `slos` (default: every SLO of the file) are muted during it."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    description: str = ""
    time_intervals: tuple[TimeInterval, ...] = Field(min_length=1)
    slos: tuple[SloName, ...] = ()


class SpecFile(_Model):
    """One native spec file: a service and its SLOs."""

    version: Literal["featurestore/v1"]
    service: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    description: str = ""
    runbook_base_url: Annotated[str, AfterValidator(_web_url)] = Field(
        min_length=1, description="runbook_url = <this>/<AlertName>.md"
    )
    labels: Labels = Field(default_factory=dict)
    target_down: TargetDownAlert | None = None
    slos: tuple[SLO, ...] = Field(min_length=1)
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    notification_targets: tuple[NotificationTarget, ...] = ()
    alert_policies: tuple[AlertPolicy, ...] = ()

    @field_validator("slos")
    @classmethod
    def _unique_names(cls, slos: tuple[SLO, ...]) -> tuple[SLO, ...]:
        seen: set[str] = set()
        for slo in slos:
            if slo.name in seen:
                raise ValueError(f"SLO name {slo.name!r} is used twice")
            seen.add(slo.name)
        return slos

    @model_validator(mode="after")
    def _windows_name_slos(self) -> SpecFile:
        names = {slo.name for slo in self.slos}
        seen: set[str] = set()
        for window in self.maintenance_windows:
            if window.name in seen:
                raise ValueError(f"maintenance window {window.name!r} is defined twice")
            seen.add(window.name)
            unknown = sorted(set(window.slos) - names)
            if unknown:
                raise ValueError(f"maintenance window {window.name!r} names no SLO of this file: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _policies_resolve(self) -> SpecFile:
        targets = _unique("notification target", [t.name for t in self.notification_targets])
        policies = _unique("alert policy", [p.name for p in self.alert_policies])
        for policy in self.alert_policies:
            for name in policy.notify:
                if name not in targets:
                    raise ValueError(f"alert policy {policy.name!r} notifies {name!r}, which is no notification target")
        for slo in self.slos:
            for name in slo.alert_policies:
                if name not in policies:
                    raise ValueError(f"SLO {slo.name!r} names alert policy {name!r}, which is not defined")
        return self

    def policies(self, slo: SLO) -> tuple[AlertPolicy, ...]:
        by_name = {policy.name: policy for policy in self.alert_policies}
        return tuple(by_name[name] for name in slo.alert_policies)

    def muting(self, slo: SLO) -> tuple[str, ...]:
        """Names of the maintenance windows that mute `slo`'s alerts, in spec order."""
        return tuple(w.name for w in self.maintenance_windows if not w.slos or slo.name in w.slos)


def _unique(what: str, names: list[str]) -> set[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is defined twice")
        seen.add(name)
    return seen
