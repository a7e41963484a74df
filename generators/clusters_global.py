"""The global layer of the cluster target: what Thanos Ruler or the Mimir ruler evaluates over every cluster's events.

It reads the per-cluster event records (`generators.clusters_events`), which arrive carrying each Prometheus's
`cluster` external label, and records, per SLO and window, the event-weighted error ratio and burn rate twice:

    cluster_slo:sli_error:ratio_rate1h{cluster, slo}   sum by (cluster, slo) of bad / of all events: one per cluster
    fleet_slo:sli_error:ratio_rate1h{slo}              sum by (slo) of bad / of all events: one per SLO, the fleet

(and `…:burn_rate:ratio_rate1h`, `…:error_budget_remaining:ratio`). The names differ from the single-cluster
records (`slo:sli_error:ratio_rate1h`) on purpose: the ruler's output is queried beside every cluster's own records,
and a shared name would put two series of one SLO into the same match group. No rule divides by another SLO record
either (the budget is a number): matching a per-cluster meta record is what breaks once several Prometheus servers
hold it. The period averages each cluster's 5m event counts (`avg_over_time`), so a cluster evaluating every 15s
weighs no more than one evaluating every 30s; the price: a series present for part of the period (a cluster added a
week ago) weighs as if its average had held the whole period.

Alerts keep the single-cluster names, labels and runbooks (`generators.alerts.burn_rate_alert`): one per enabled
window pair on the per-cluster burn rates, which keeps `cluster`, and one on the fleet's, without it. A cluster burns
its budget while the fleet does not (a small cluster failing), or the fleet burns while no single cluster crosses
the factor (every cluster a little worse): both page. The SLO's `min_events` floor reads each scope's events.
"""

from __future__ import annotations

from dataclasses import replace

from generators import naming, promql
from generators.alerts import Alert, Recording, burn_rate_alert, with_runbook
from generators.clusters_events import bad_events_record, event_windows, events_record
from generators.profile import Profile
from generators.rules import SHORTEST_WINDOW, Group
from slos.models import SLO, LatencyBudgetObjective, RatioObjective, SpecFile
from slos.windows import WindowPair, enabled_pairs

CLUSTER_SCOPE = (naming.CLUSTER_LABEL, naming.SLO_LABEL)
FLEET_SCOPE = (naming.SLO_LABEL,)
# On every global alert, `cluster` or `fleet`: routes and silences tell a cluster's page from the fleet's, and the two
# rules of one window pair differ in their labels (promtool's duplicate-rules lint). Named like `burnrate_tier`.
SCOPE_LABEL = "burnrate_scope"


def scope_name(scope: tuple[str, ...]) -> str:
    return naming.CLUSTER_LABEL if naming.CLUSTER_LABEL in scope else "fleet"


def level(scope: tuple[str, ...]) -> str:
    """`cluster_slo` or `fleet_slo`: the level of a global record, by the labels it keeps."""
    return f"{scope_name(scope)}_slo"


def error_record(scope: tuple[str, ...], window: str) -> str:
    return f"{level(scope)}:sli_error:ratio_rate{window}"


def burn_record(scope: tuple[str, ...], window: str) -> str:
    return f"{level(scope)}:burn_rate:ratio_rate{window}"


def remaining_record(scope: tuple[str, ...]) -> str:
    return f"{level(scope)}:error_budget_remaining:ratio"


def _summed(scope: tuple[str, ...], series: str) -> str:
    return f"sum{promql.by_clause(scope)} ({series})"


def weighted_ratio(slo: SLO, scope: tuple[str, ...], window: str, period: str | None = None) -> str:
    """Bad events over all events, each summed over the scope: every cluster weighs by its traffic. Over the period
    (`period`, in the profile's units) each cluster's mean 5m count stands for its events."""
    selector = promql.slo_selector(slo.name)
    bad, total = f"{bad_events_record(window)}{selector}", f"{events_record(window)}{selector}"
    if period is not None:
        bad, total = f"avg_over_time({bad}[{period}])", f"avg_over_time({total}[{period}])"
    return promql.checked(f"{_summed(scope, bad)} / ({_summed(scope, total)} > 0)")


def scope_recordings(slo: SLO, scope: tuple[str, ...], profile: Profile) -> tuple[Recording, ...]:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    budget = promql.number(promql.error_budget(objective.target))
    selector = promql.slo_selector(slo.name)
    own = {naming.SLO_LABEL: slo.name}
    counted = event_windows(slo)
    ratios = [Recording(error_record(scope, window), weighted_ratio(slo, scope, window), own) for window in counted]
    windows = list(counted)
    if objective.period not in counted:  # a period no pair reads: the mean of the 5m counts over it
        period = weighted_ratio(slo, scope, SHORTEST_WINDOW, profile.window(objective.period))
        ratios.append(Recording(error_record(scope, objective.period), period, own))
        windows.append(objective.period)
    burns = [
        Recording(burn_record(scope, w), promql.checked(f"{error_record(scope, w)}{selector} / {budget}"), own)
        for w in windows
    ]
    remaining = promql.checked(f"1 - {error_record(scope, objective.period)}{selector} / {budget}")
    return (*ratios, *burns, Recording(remaining_record(scope), remaining, own))


def scope_alert(spec: SpecFile, slo: SLO, pair: WindowPair, scope: tuple[str, ...], profile: Profile) -> Alert:
    """The SLO's burn-rate alert for `pair`, on the scope's burn rates, with the scope's labels (and event floor)."""
    selector = promql.slo_selector(slo.name)
    factor = promql.number(pair.factor)
    long, short = burn_record(scope, pair.long), burn_record(scope, pair.short)
    expr = f"{long}{selector} > {factor} and {short}{selector} > {factor}"
    if slo.min_events:
        events = _summed(scope, f"{events_record(pair.long)}{selector}")
        expr += f" and {events} >= {promql.number(profile.events(slo.min_events))}"
    alert = burn_rate_alert(spec, slo, pair)
    labels = {**alert.labels, SCOPE_LABEL: scope_name(scope)}
    return with_runbook(replace(alert, expr=promql.checked(expr), labels=labels), spec.runbook_base_url)


def fleet_group(spec: SpecFile, slo: SLO, profile: Profile) -> Group:
    """One SLO's global records (per cluster, then the fleet), then its alerts (per cluster, then the fleet)."""
    scopes = (CLUSTER_SCOPE, FLEET_SCOPE)
    records = [record for scope in scopes for record in scope_recordings(slo, scope, profile)]
    alerts = [scope_alert(spec, slo, pair, scope, profile) for scope in scopes for pair in enabled_pairs(slo)]
    return Group(f"{spec.service}.{slo.name}.fleet", (*records, *alerts))
