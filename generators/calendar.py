"""PromQL of calendar-aligned budget periods: when the current week or month began, and the SLI since then.

A calendar SLO records `slo:calendar_period_start:timestamp` (naming.CALENDAR_START_RECORD), the Unix time its
current period began, computed from `time()` alone at each evaluation:

- weeks: `time() - ((time() - S) % 604800 + 604800) % 604800`, S the Unix time of `calendar.start` (a week is
  604800 s in every zone without daylight saving time);
- months: the local clock `L = time() + offset` gives the seconds into the local month,
  `(day_of_month(vector(L)) - 1) * 86400 + L % 86400`; the boundary is `start`'s day, hour, minute and second of
  every month; when the clock has not reached it yet this month, the period began in the previous month, whose
  length `days_in_month(vector(L - 1) - <seconds into the month>)` reads.

The period's error ratio is the slices of the last `CALENDAR_LOOKBACK` whose subquery step is at or after that start
(`@ end()` pins the start to the rule's evaluation time inside the subquery), so the budget resets at the boundary.

Time zones: Prometheus has no zone database, so the offset is fixed: the zone's standard offset (UTC-5 for
America/New_York). In a zone with daylight saving time the boundary stays at `start`'s wall-clock time in standard
time, one hour later on the summer clock (13:00 EDT for a 12:00 start); the length of a period never changes. The
standard offset is read at `start`; a zone whose standard offset changes within the year from `start` is refused
(`calendar.time_zone`), and so is `Local`.
"""

from __future__ import annotations

from generators import promql
from slos.models import Calendar, duration_seconds

WEEK_SECONDS = 604800
DAY_SECONDS = 86400
# The longest calendar period (31 days): the subquery reads this far back, and the mask keeps the current period.
CALENDAR_LOOKBACK = {"1w": "7d", "1M": "31d"}
# The error ratio window read at each step of the period's subquery: 2016 steps a week, 1488 a month (a query may
# load 50 million samples in Prometheus, 10 000 in promtool's tests). A boundary off a multiple of the step counts the
# previous period's slices of at most one step.
CALENDAR_STEP = {"1w": "5m", "1M": "30m"}


def _month_elapsed(calendar: Calendar) -> str:
    when = calendar.when
    boundary = (when.day - 1) * DAY_SECONDS + when.hour * 3600 + when.minute * 60 + when.second
    local = f"(time() + {calendar.standard_offset()})"
    # `%` keeps the dividend's sign (Go's math.Mod): the second one brings a clock before 1970 into the day
    day = f"(({local} % {DAY_SECONDS} + {DAY_SECONDS}) % {DAY_SECONDS})"
    into = f"((day_of_month(vector({local})) - 1) * {DAY_SECONDS} + {day})"
    previous = f"days_in_month(vector({local} - 1) - {into})"
    return f"({into} - {boundary} + {DAY_SECONDS} * {previous} * ({into} < bool {boundary}))"


def period_start(calendar: Calendar) -> str:
    """PromQL (a one-series vector, no labels) of the Unix time the current calendar period began."""
    if calendar.duration == "1w":
        anchor = calendar.start_seconds
        return promql.checked(
            f"vector(time() - ((time() - {anchor}) % {WEEK_SECONDS} + {WEEK_SECONDS}) % {WEEK_SECONDS})"
        )
    return promql.checked(f"vector(time()) - {_month_elapsed(calendar)}")


def in_period(record: str, start_record: str, step: str, lookback: str) -> str:
    """The subquery of `record` (a ratio over the window `step`) over `lookback`, at `step`, kept where the window
    lies inside the current period."""
    since = f"vector(time()) >= scalar({start_record} @ end()) + {duration_seconds(step):g}"
    return f"({record} and on () ({since}))[{lookback}:{step}]"
