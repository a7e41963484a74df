"""Windows of the error-budget SLOs: the SLI windows and the multi-window multi-burn-rate alert pairs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from slos.models import BUDGETED, SLO, TierName, duration_seconds

Tier = Literal["page", "ticket"]
# The label naming a burn alert's tier (`page_fast`...; a policy condition's alert: the condition's name). Not `tier`:
# Sloth's rules and users' own use that name for other things.
TIER_LABEL = "burnrate_tier"


@dataclass(frozen=True)
class BurnWindow:
    """One row of the alerting table: a long and a short window and the share of a period's budget they spend."""

    name: TierName
    tier: Tier
    long: str
    short: str
    budget_share: Decimal


# Google SRE Workbook, "Alerting on SLOs", table 5-8 ("Recommended parameters for a 99.9% SLO alerting
# configuration", 30 days): page when 2 % of the budget burns within 1h (14.4x, short window 5m) or 5 % within 6h
# (6x, 30m); ticket when 10 % burns within 3d (1x, 6h). The 1d/2h pair at 3x (10 % within 1d) is the chapter's
# example ticket expression. A pair's factor is budget_share x period / long window, so other periods scale the
# factors and keep the windows, as sloth does: 30d gives 14.4 / 6 / 3 / 1, 28d gives 13.44 / 5.6 / 2.8 / 0.9333.
SRE_WORKBOOK_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow("page_fast", "page", "1h", "5m", Decimal("0.02")),
    BurnWindow("page_slow", "page", "6h", "30m", Decimal("0.05")),
    BurnWindow("ticket_fast", "ticket", "1d", "2h", Decimal("0.10")),
    BurnWindow("ticket_slow", "ticket", "3d", "6h", Decimal("0.10")),
)
# Every window an alert pair reads; the SLO's period is recorded too (for the error budget remaining).
SLI_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class WindowPair:
    """A burn-rate alert: fires when both windows burn faster than `factor` times the sustainable rate."""

    name: TierName
    tier: Tier
    long: str
    short: str
    factor: float


def burn_factor(window: BurnWindow, period: str) -> float:
    """budget_share x period / long window, to 4 significant digits (14.4 for 1h of 30d)."""
    exact = window.budget_share * Decimal(duration_seconds(period)) / Decimal(duration_seconds(window.long))
    return float(f"{exact:.4g}")


def window_pairs(period: str) -> tuple[WindowPair, ...]:
    return tuple(WindowPair(w.name, w.tier, w.long, w.short, burn_factor(w, period)) for w in SRE_WORKBOOK_WINDOWS)


def enabled_pairs(slo: SLO) -> tuple[WindowPair, ...]:
    """The window pairs of the SLO's enabled tiers (none without `burn_rate`)."""
    objective = slo.objective
    if slo.burn_rate is None or not isinstance(objective, BUDGETED):
        return ()
    enabled = slo.burn_rate.tiers.enabled
    return tuple(pair for pair in window_pairs(objective.period) if pair.name in enabled)


def sli_windows(period: str) -> tuple[str, ...]:
    """The SLI windows plus the period, shortest first, without repeats."""
    by_seconds = {duration_seconds(window): window for window in (*SLI_WINDOWS, period)}
    return tuple(by_seconds[seconds] for seconds in sorted(by_seconds))
