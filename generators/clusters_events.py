"""The per-cluster layer of the cluster target: the raw event increases each cluster's Prometheus records.

Each budgeted SLO that counts events records, per window its alert pairs read (and the shortest window, which the
global layer averages over the period), its bad and its total events per namespace and job, labelled `slo`:

    slo:sli_bad_events:increase1h{namespace, job, slo}    bad events over the last hour
    slo:sli_events:increase1h{namespace, job, slo}        all events over the last hour

Counts and not ratios, so the global layer can weight every cluster by its traffic (a ratio per cluster cannot be
summed, and the mean of ratios gives a quiet cluster's three requests the weight of a busy one's million). The rules
never name `cluster`: each Prometheus attaches its own through `external_labels`, on remote write or through the
Thanos sidecar, so one rule file serves every cluster unchanged. An SLO given as a raw error ratio
(`error_ratio_query`) counts no events and is left out.
"""

from __future__ import annotations

from generators import naming, promql
from generators.alerts import Recording
from generators.profile import Profile
from generators.rules import SHORTEST_WINDOW, Group
from slos.models import SCOPE_LABELS, SLO, EventSelector, LatencyBudgetObjective, RatioObjective, duration_seconds
from slos.windows import enabled_pairs


def bad_events_record(window: str) -> str:
    """`slo:sli_bad_events:increase1h`: bad events of one SLO over `window`, per namespace and job (the name the
    single-cluster rules give their 5m record)."""
    return naming.sli_events_record(naming.BAD_EVENTS, window)


def events_record(window: str) -> str:
    """`slo:sli_events:increase1h`: all events of one SLO over `window`, per namespace and job."""
    return naming.sli_events_record(naming.TOTAL_EVENTS, window)


def counted(slo: SLO) -> bool:
    """Whether the SLO has an error budget and counts events, so clusters can be weighted by them."""
    objective = slo.objective
    if not slo.budgeted or slo.burn_rate is None:
        return False
    return isinstance(objective, LatencyBudgetObjective) or (
        isinstance(objective, RatioObjective) and objective.counted
    )


def event_windows(slo: SLO) -> tuple[str, ...]:
    """The windows of the SLO's enabled alert pairs and the shortest window, shortest first."""
    windows = {SHORTEST_WINDOW, *(w for pair in enabled_pairs(slo) for w in (pair.long, pair.short))}
    return tuple(sorted(windows, key=duration_seconds))


def _increase(selection: EventSelector, window: str) -> str:
    """Events of `selection` over `window`, per namespace and job (a `{{.window}}` template: its rate times it)."""
    if selection.query is not None and promql.templated(selection.query):
        return f"{promql.events(selection, window)} * {promql.number(duration_seconds(window))}"
    counter = promql.selector(selection.metric, selection.matchers) if selection.metric else selection.query
    return f"sum{promql.by_clause(SCOPE_LABELS)} (increase({counter}[{window}]))"


def _or_zero(selection: EventSelector, expr: str, total: str) -> str:
    """`expr`, or 0 with the labels of the total's traffic where `expr` has no series (a bad counter never created)."""
    if selection.query is not None and promql.templated(selection.query):
        return expr
    return f"({expr} or 0 * {total})"


def bad_events(objective: RatioObjective | LatencyBudgetObjective, window: str) -> str:
    """Bad events over `window`: the bad counter, total minus good, or a histogram's count minus its `le` bucket."""
    total = promql.event_count(objective, window, duration_seconds(window))
    if isinstance(objective, LatencyBudgetObjective):
        good = promql.selector(
            f"{objective.metric}_bucket", objective.matchers, [promql.le_matcher(objective.threshold)]
        )
        return promql.checked(f"{total} - sum{promql.by_clause(SCOPE_LABELS)} (increase({good}[{window}]))")
    if objective.bad is not None:
        return promql.checked(_or_zero(objective.bad, _increase(objective.bad, window), total))
    assert objective.good is not None
    return promql.checked(f"{total} - {_or_zero(objective.good, _increase(objective.good, window), total)}")


def event_recordings(slo: SLO, profile: Profile) -> tuple[Recording, ...]:
    """Bad then total events of one SLO over each of its event windows."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    own = {naming.SLO_LABEL: slo.name}
    records: list[Recording] = []
    for window in event_windows(slo):
        rated = profile.window(window)
        total = promql.checked(promql.event_count(objective, rated, duration_seconds(rated)))
        records.append(Recording(bad_events_record(window), bad_events(objective, rated), own))
        records.append(Recording(events_record(window), total, own))
    return tuple(records)


def event_group(service: str, slo: SLO, profile: Profile) -> Group:
    return Group(f"{service}.{slo.name}.events", event_recordings(slo, profile))
