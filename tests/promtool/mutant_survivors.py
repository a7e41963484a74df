"""Why a mutant of tests/promtool/mutants.py survives: equivalent (no test could tell it from the original rule), or
a known survivor (a test could, none does yet), per target (tests/promtool/mutant_targets.py), each with the reason.
Any other survivor fails `make test`'s sample and `make mutants`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.promtool.mutant_targets import DEFAULT

if TYPE_CHECKING:
    from tests.promtool.mutants import Mutant

# The monthly calendar's period start (generators/calendar.py, a -5h zone, a boundary on day 1 at 12:00): its
# mutants that read as the original at every moment; each number's occurrences counted from the expression's start.
MONTH_START_EQUIVALENT = (
    r"\] slo:calendar_period_start:timestamp: expr: (18000 -> 18360 \(occurrence 3\)|18000 -> \d+ \(occurrence 4\)"
    r"|18000 -> 17640 \(occurrence [56]\)|86400 -> \d+ \(occurrence (6|10)\)|86400 -> 88128 \(occurrence 8\)"
    r"|86400 -> 84672 \(occurrence 9\)|1 -> [\d.]+ \(occurrence 2\)|1 -> 0\.98 \(occurrence 3\))$"
)


# Per target, mutants no test can tell from the original, each with the reason: (pattern over Mutant.key, pattern
# over the mutated expression, reason).
EQUIVALENT_RULES: dict[str, tuple[tuple[str, str, str], ...]] = {
    DEFAULT: (
        (
            r"slo:sli_error:ratio_rate\w+: expr: drop slo=\"[^\"]+\"( \(occurrence 2\))?$",
            r"_over_time\(",
            "a period ratio's two `_over_time` sides (bad events over total events, or a raw ratio's sum over count): "
            "the other side keeps the slo matcher and the division matches one to one on every label, slo included, "
            "so another SLO's records find no partner",
        ),
    ),
    "openslo-calendar-month": (
        (
            MONTH_START_EQUIVALENT,
            r"days_in_month\(",
            "the monthly start's `days_in_month(…)` counts only in the first local hours of a month before its "
            "boundary (`into < bool boundary`), where its argument is the last second of the month before: a mutant "
            "moving that moment earlier, or changing a `(day - 1)` term that is 0 on day 1, leaves it there; in the "
            "`< bool` test, a `(day - 1)` term 0 on day 1 and past the boundary on any other day, or a day turning "
            "6 minutes later at a time past the boundary, decides alike. Each reads as the original at every minute "
            "around each month's turn of 1970-1973 and every 10 minutes between (tests/promtool/test_month_start.py)",
        ),
    ),
    "clusters-global": (
        (
            r"_slo:sli_error:ratio_rate\w+: expr: drop slo=\"[^\"]+\"( \(occurrence 2\))?$",
            r" / \(sum by \(",
            "one side of a cluster or fleet ratio `sum by (…, slo) (bad{slo=…}) / (sum by (…, slo) (all{slo=…}) > 0)`: "
            "the other side keeps the slo matcher and the division matches one to one on every label, slo included, "
            "so another SLO's sums find no partner",
        ),
        (
            r"BudgetBurn: expr: drop slo=\"[^\"]+\" \(occurrence 3\)$",
            r"sum by \([^)]*\bslo\) \(slo:sli_events:increase\w+\) >= ",
            "the event floor's sum of a burn alert: it keeps `slo` in its `by` and `and` matches one to one on every "
            "label, so another SLO's sums find no partner",
        ),
    ),
}


_FALLBACK = re.compile(r" or 0 \* (sum by \([^)]*\) \((?:rate|increase)\([^\[]*\[(?P<window>[^\]]+)\]\)\))")
FALLBACK_WINDOW = (
    "the window of the `0 * total` fallback, which only lends the total's labels when no bad series exists: twice the "
    "window sees a superset of the samples (the same labels), half of it differs only while a target that vanished "
    "between the two windows' starts is still in the denominator's window, and then only in whether a 0 is recorded "
    "for at most half a window; not killed, and left as it is"
)


VERDICT_MATCHER = (
    "a matcher dropped from one side of a verdict's NaN filter `((q) == (q)) op bool t`: the other side keeps it and "
    "`==` matches one to one on every label, so the series the dropped matcher let in find no partner"
)


_ABSENT_QUANTILE = re.compile(r"^absent\(\(?histogram_quantile\((\S+?), ")
ABSENT_QUANTILE = (
    "φ of the histogram quantile inside an absent-metrics alert: `histogram_quantile` returns a sample for any φ "
    "(±Inf past 0 and 1, NaN without traffic) wherever the buckets' sum has one, so `absent(…)` reads the same"
)


_FALLBACK_FACTOR = re.compile(r" or -1 \* sum by .* >= bool 0\.\d*[1-9]\d*$")
FALLBACK_FACTOR = (
    "the factor of the `or 0 * total` fallback in a slice compared with a positive slice target: where no good events "
    "are counted the slice's good fraction is the factor itself, 0 or -1, under the target either way, so the slice "
    "reads bad alike (a slice recorded without a target, in ratio-timeslices, tells them apart)"
)


BURN_PAIR_SLO = (
    "a burn-rate alert's `long{slo=…} > f and short{slo=…} > f` with one side's slo matcher dropped: `and` matches "
    "one to one on every label, slo included, so another SLO's burn rates on that side find no partner"
)


# Per target, mutants the tests do not kill yet, each with why (not equivalent: a test could kill them). `make test`'s
# sample fails on any other survivor.
KNOWN_SURVIVORS: dict[str, tuple[tuple[str, str], ...]] = {
    DEFAULT: (
        (
            r"BudgetBurn: expr: (14\.4 -> 14\.112|6 -> 5\.88|3 -> 2\.94|1 -> 0\.98)( \(occurrence 2\))?$",
            "a factor 2 % down on one side of the pair's `and`: the straddles burn both windows alike, so one side's "
            "factor alone never decides; a case with one window 1 % under while the other burns far over is designed "
            "(generators/burn_tests.py) but not landed: it tripled the fine file's time",
        ),
        (
            r"\] \w+BudgetBurn: expr: slo:burn_rate:ratio_rate1h -> slo:burn_rate:ratio_rate(30m|2h)$",
            "the 1h/5m page's long window is told apart only in the 15-minute long-case file, where the 30m and 2h "
            "records cross 14.4x at the same evaluation as the 1h one",
        ),
        (
            r"slo:sli_events:increase5m: expr: \[5m\] -> \[(150s|10m)\] \(occurrence 2\)$",
            "the window of a latency budget's bucket-presence test (`count and sum(increase(bucket[5m]))`), which only "
            "decides whether a window's events count: half or twice it differs only in the minutes after the threshold "
            "bucket first appears or before it vanishes, which the period case aligns with an evaluation",
        ),
    ),
    # every time-slice target: tests/promtool/specs/checkout.yaml and the OpenSLO examples
    "time-slices": (
        (
            r"\] slo:sli_error:ratio_calendar: expr: ((300|1800) -> \d+|drop slo=\"[^\"]+\" \(occurrence 2\))$",
            "the calendar period's error ratio: the first step it counts, `start + step`, moved 2 % earlier (the "
            "steps fall on the step's grid, so the same ones count) or, with 5-minute steps, 2 % later (the calendar "
            "case's first step is bad, but Prometheus 2 and 3 read 5 one-minute slices a step or 6, and its band "
            "holds the mean without it); the start read without its slo matcher, where the only other SLO is a "
            "made-up neighbour without a start record",
        ),
        (
            r"\] slo:sli_timeslice_good:ratio: expr: >= bool -> > bool$",
            "an event slice exactly at its target: the slice case straddles the target 1 % either side, and events "
            "meet it exactly only by chance; the share case that puts a slice exactly at its bar is generated for "
            "threshold slices, which the calendar examples have none of (the timeslices target kills it)",
        ),
    ),
}


def time_slices(target: str) -> bool:
    return target == "timeslices" or target.startswith("openslo-")


def known_survivor(mutant: Mutant) -> str | None:
    """Why a mutant the tests do not kill yet survives, or None."""
    shared = KNOWN_SURVIVORS["time-slices"] if time_slices(mutant.target) else ()
    known = KNOWN_SURVIVORS.get(mutant.target, ()) + shared
    return next((reason for pattern, reason in known if re.search(pattern, mutant.key)), None)


def equivalent(mutant: Mutant) -> str | None:
    """Why `mutant` cannot be told from the original (by any input, or as the reason says), or None."""
    if mutant.rule == "slo:sli_threshold_good:bool" and mutant.what.startswith("expr: drop "):
        return VERDICT_MATCHER
    if (
        mutant.rule.endswith("BudgetBurn")
        and re.search(r"expr: drop slo=\"[^\"]+\"( \(occurrence 2\))?$", mutant.key)
        and " and " in mutant.value
    ):
        return BURN_PAIR_SLO
    fallback = _FALLBACK.search(mutant.value)
    if (
        mutant.rule.startswith(("slo:sli_error:", "slo:sli_bad_events:", "slo:sli_timeslice_good:"))
        and fallback is not None
        and mutant.what.startswith("expr: [")
        and mutant.what.endswith("(occurrence 2)")
        and f"-> [{fallback.group('window')}]" in mutant.what
    ):
        return FALLBACK_WINDOW
    if mutant.what == "expr: 0 -> -1" and _FALLBACK_FACTOR.search(mutant.value):
        return FALLBACK_FACTOR
    phi = _ABSENT_QUANTILE.search(mutant.value)
    if (
        mutant.rule.endswith("MetricsAbsent")
        and phi
        and re.fullmatch(rf"expr: \S+ -> {re.escape(phi[1])}", mutant.what)
    ):
        return ABSENT_QUANTILE
    rules = EQUIVALENT_RULES.get(mutant.target, ())
    return next(
        (reason for key, value, reason in rules if re.search(key, mutant.key) and re.search(value, mutant.value)), None
    )
