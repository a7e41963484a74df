"""OpenSLO v1 objectives and time windows, and the native objective each becomes.

| SLI | budgetingMethod | native objective |
|---|---|---|
| ratioMetric | Occurrences, rolling window | `ratio` (good or bad, with total) |
| ratioMetric | Timeslices | `timeslices`: `slice` = timeSliceWindow, `slice_target` = timeSliceTarget |
| ratioMetric | RatioTimeslices | `timeslices` without `slice_target`: the slices' good fractions averaged |
| thresholdMetric + op/value | Occurrences | `timeslices` without `slice`: each rule evaluation is one event |
| thresholdMetric + op/value | Timeslices, RatioTimeslices | `timeslices` with `threshold`, per slice as above |

A window with `isRolling: false` and `calendar: {startTime, timeZone}` of `1w` or `1M` becomes the objective's
`calendar` (time-slice objectives only). Refused, with the field: a calendar window of another length (`1m` is a
minute), Occurrences of a ratio metric over a calendar window, `op`/`value` on a ratio metric (`op: gt`/`gte` alone
is read as the ratio's direction), a threshold metric without `op` and `value`, timeSliceTarget without Timeslices,
timeSliceWindow with Occurrences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from slos.models import CALENDAR_PERIODS, Duration
from slos.openslo_documents import OpenSLOModel as _Model

Method = Literal["Occurrences", "Timeslices", "RatioTimeslices"]
OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_NATIVE_DURATION = re.compile(r"^\d+(s|m|h|d|w)$")


class CalendarSpec(_Model):
    startTime: str = Field(min_length=1)
    timeZone: str = "UTC"

    @field_validator("startTime", mode="before")
    @classmethod
    def _written(cls, value: object) -> object:
        # YAML reads an unquoted `2022-01-01 12:00:00` as a timestamp; OpenSLO means the wall-clock text.
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value


class TimeWindow(_Model):
    isRolling: bool = True
    calendar: CalendarSpec | None = None
    duration: Annotated[str, Field(pattern=r"^\d+[smhdwMQY]$")]

    @field_validator("duration")
    @classmethod
    def _fits_the_window(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("calendar") is not None:
            if value not in CALENDAR_PERIODS:
                minute = " (`1m` is one minute; a month is `1M`)" if value.endswith("m") else ""
                raise ValueError(f"a calendar window is 1w or 1M, not {value!r}{minute}")
        elif not _NATIVE_DURATION.match(value):
            raise ValueError(f"a rolling window is a fixed duration such as 28d; {value!r} is a calendar length")
        return value

    @model_validator(mode="after")
    def _calendar_iff_fixed(self) -> TimeWindow:
        if self.isRolling and self.calendar is not None:
            raise ValueError("a window with `calendar` has isRolling: false")
        if not self.isRolling and self.calendar is None:
            raise ValueError("isRolling: false needs `calendar` (startTime, timeZone)")
        return self


class Objective(_Model):
    displayName: str | None = None
    op: Literal["lt", "lte", "gt", "gte"] | None = None
    value: float | None = None
    target: Annotated[float, Field(gt=0, lt=1)] | None = None
    targetPercent: Annotated[float, Field(gt=0, lt=100)] | None = None
    timeSliceTarget: Annotated[float, Field(gt=0, le=1)] | None = None
    timeSliceWindow: Duration | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Objective:
        if (self.target is None) == (self.targetPercent is None):
            raise ValueError("give exactly one of `target` (0-1) or `targetPercent` (0-100)")
        return self

    @property
    def fraction(self) -> float:
        if self.target is not None:
            return self.target
        assert self.targetPercent is not None
        return round(self.targetPercent / 100, 12)


@dataclass(frozen=True)
class Refusal(Exception):
    """An objective the generators cannot honour: `field` inside the objective's entry, or `timeWindow[0]...`."""

    field: str
    reason: str


def _time_slices(method: Method, objective: Objective) -> dict[str, Any]:
    if method == "Occurrences":
        if objective.timeSliceWindow is not None:
            raise Refusal("timeSliceWindow", "Occurrences budgeting has no time slices: remove it, or use Timeslices")
        if objective.timeSliceTarget is not None:
            raise Refusal("timeSliceTarget", "only Timeslices budgeting reads a slice target")
        return {}
    if objective.timeSliceWindow is None:
        raise Refusal("timeSliceWindow", f"{method} budgeting needs the slice length, such as 1m")
    if method == "RatioTimeslices":
        if objective.timeSliceTarget is not None:
            raise Refusal("timeSliceTarget", "RatioTimeslices averages the slices' ratios: it reads no slice target")
        return {"slice": objective.timeSliceWindow}
    if objective.timeSliceTarget is None:
        raise Refusal("timeSliceTarget", "Timeslices budgeting needs the good fraction that makes a slice good")
    return {"slice": objective.timeSliceWindow, "slice_target": objective.timeSliceTarget}


def _calendar(window: TimeWindow) -> dict[str, Any]:
    if window.calendar is None:
        return {"period": window.duration}
    calendar = window.calendar
    return {"calendar": {"duration": window.duration, "start": calendar.startTime, "time_zone": calendar.timeZone}}


def native_objective(method: Method, objective: Objective, window: TimeWindow,
                     events: dict[str, Any] | None, threshold_query: str | None) -> dict[str, Any]:  # fmt: skip
    """The native objective's fields for one OpenSLO objective; Refusal when it cannot be honoured. `events`: the
    ratio metric's good/bad/total selectors; `threshold_query`: the threshold metric's query (one of the two)."""
    slices = _time_slices(method, objective)
    common = {"target": objective.fraction, **_calendar(window)}
    if threshold_query is not None:
        if objective.op is None or objective.value is None:
            raise Refusal("op" if objective.op is None else "value", "a threshold metric is compared with op and value")
        sli = {"query": threshold_query, "op": OPS[objective.op], "threshold": objective.value}
        return {"kind": "timeslices", "threshold": sli, **slices, **common}
    assert events is not None
    if objective.value is not None:
        raise Refusal("value", "`value` compares a threshold metric; a ratio metric's objective is its `target`")
    if objective.op in ("lt", "lte"):
        raise Refusal("op", "a ratio metric's good fraction must reach the target: only gt or gte")
    if method == "Occurrences":
        if window.calendar is not None:
            raise Refusal(
                "timeWindow[0].calendar",
                "a calendar window is read with Timeslices or RatioTimeslices budgeting, or a threshold metric: "
                "Occurrences of a ratio metric keep a rolling window",
            )
        return {"kind": "ratio", **events, **common}
    return {"kind": "timeslices", **events, **slices, **common}
