"""Per-tier settings of burn-rate alerts: `page_labels` / `ticket_labels` and the extra `annotations` of a spec's
`burn_rate`, added to the rules `generators.rules` built (its alerts know their window pair, hence their tier).

Kept apart from `generators.alerts` while that module is being rewritten (issue 11); issue 14 phase B folds this into
the burn-rate alert builder together with the tier label.
"""

from __future__ import annotations

from dataclasses import replace

from generators import naming
from generators.alerts import Alert, Recording
from generators.rules import Group
from slos.models import SLO, LatencyBudgetObjective, RatioObjective, SpecFile
from slos.windows import window_pairs


def _tiers(slo: SLO) -> dict[tuple[str, str], str]:
    """(long window, short window) -> tier, for the SLO's burn-rate pairs."""
    objective = slo.objective
    if not isinstance(objective, RatioObjective | LatencyBudgetObjective):
        return {}
    return {(pair.long, pair.short): pair.tier for pair in window_pairs(objective.period)}


def with_tier_settings(spec: SpecFile, groups: tuple[Group, ...]) -> tuple[Group, ...]:
    """`groups` with each burn-rate alert carrying its tier's labels and the SLO's extra annotations."""
    by_alert = {slo.burn_rate.name: slo for slo in spec.slos if slo.burn_rate is not None}
    long_label, short_label = naming.WINDOW_LABELS

    def decorate(rule: Alert | Recording) -> Alert | Recording:
        slo = by_alert.get(rule.alert) if isinstance(rule, Alert) else None
        if slo is None or slo.burn_rate is None or not isinstance(rule, Alert):
            return rule
        burn = slo.burn_rate
        tier = _tiers(slo).get((rule.labels.get(long_label, ""), rule.labels.get(short_label, "")))
        own = {"page": burn.page_labels, "ticket": burn.ticket_labels}.get(tier or "", {})
        return replace(rule, labels={**rule.labels, **own}, annotations={**burn.annotations, **rule.annotations})

    return tuple(replace(group, rules=tuple(decorate(rule) for rule in group.rules)) for group in groups)
