"""What the models cannot see of a time-slice SLO (`kind: timeslices`): a slice the alert windows can hold and the
scrapes can fill, a threshold query that parses, no event floor."""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser

from slos.models import SLO, WINDOW_TEMPLATE, TimeslicesObjective, duration_seconds

Found = Iterator[tuple[str, str]]  # (field inside the SLO, reason)
SHORTEST_WINDOW = "5m"  # the short window of the fastest burn-rate pair
SCRAPES_PER_SLICE = 2  # a rate over a slice needs two samples of the counter


def timeslice_problems(slo: SLO, objective: TimeslicesObjective, scrape_seconds: float, divisor: int) -> Found:
    if objective.threshold is not None:
        query = objective.threshold.query
        try:
            promql_parser.parse(WINDOW_TEMPLATE.sub(SHORTEST_WINDOW, query))
        except ValueError as exc:
            yield "objective.threshold.query", f"does not parse as PromQL ({exc}): {query}"
    if objective.slice is not None:
        yield from _slice(objective.slice, scrape_seconds, divisor)
    if slo.min_events is not None:
        yield "min_events", "a time-slice SLO counts slices, not events: an event floor does not apply"


def _slice(slice_: str, scrape_seconds: float, divisor: int) -> Found:
    seconds, shortest = duration_seconds(slice_), duration_seconds(SHORTEST_WINDOW)
    if seconds > shortest or shortest % seconds:
        yield "objective.slice", f"the slice must divide {SHORTEST_WINDOW}, the fastest alert's short window"
    elif seconds / divisor < SCRAPES_PER_SLICE * scrape_seconds:
        yield (
            "objective.slice",
            f"a {slice_} slice holds fewer than {SCRAPES_PER_SLICE} scrapes of {scrape_seconds:g}s: its rate is empty",
        )
