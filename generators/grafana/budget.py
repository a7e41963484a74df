"""One row per budgeted SLO (kinds `ratio` and `latency_budget`): the error budget left over the SLO's period, and
the burn rate over each alert window with the alert factors drawn as lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from generators.grafana import panels as p
from generators.grafana import queries as q
from slos.models import SLO, LatencyBudgetObjective, RatioObjective, duration_seconds


@dataclass(frozen=True)
class WindowPair:
    long: str
    short: str
    budget_share: float  # of the period's error budget, burnt within `long`, that makes the pair fire
    severity: str

    def factor(self, period: str) -> float:
        """The burn rate that spends `budget_share` of the budget within `long` (14.4 for 1h of a 30d period)."""
        return round(self.budget_share * duration_seconds(period) / duration_seconds(self.long), 6)


# SRE workbook, "Alerting on SLOs", table 5-8 and its ticket example, for a 30d period: page when 1h and 5m burn > 14.4x
# (2 % of the budget) or 6h and 30m > 6x (5 %); ticket when 1d and 2h > 3x or 3d and 6h > 1x (10 % each).
WINDOW_PAIRS: tuple[WindowPair, ...] = (
    WindowPair("1h", "5m", 0.02, "critical"),
    WindowPair("6h", "30m", 0.05, "critical"),
    WindowPair("1d", "2h", 0.10, "warning"),
    WindowPair("3d", "6h", 0.10, "warning"),
)
# Lines from the slowest pair up: ticket pairs in yellow/orange, page pairs in red/dark red.
FACTOR_COLOURS = {"warning": ("yellow", "orange"), "critical": ("red", "dark-red")}
BUDGET_STEPS = p.steps(("red", None), ("yellow", 0.0), ("green", 0.25))  # spent / under 25 % left / healthy


def burn_windows() -> list[str]:
    """Every window an alert pair reads, shortest first."""
    return sorted({w for pair in WINDOW_PAIRS for w in (pair.long, pair.short)}, key=duration_seconds)


def factor_steps(period: str) -> list[dict[str, object]]:
    pairs = sorted(WINDOW_PAIRS, key=lambda pair: pair.factor(period))
    seen: dict[str, int] = {}
    colours: list[p.Step] = [("green", None)]
    for pair in pairs:
        index = seen[pair.severity] = seen.get(pair.severity, -1) + 1
        palette = FACTOR_COLOURS[pair.severity]
        colours.append((palette[min(index, len(palette) - 1)], pair.factor(period)))
    return p.steps(*colours)


def budgeted(slos: Sequence[SLO]) -> list[SLO]:
    return [slo for slo in slos if slo.budgeted]


def section(slo: SLO) -> p.Section:
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    target = f"{objective.target * 100:g} % over {objective.period}"
    remaining = p.stat(
        f"{slo.name}: error budget remaining",
        f"Share of the {objective.period} error budget of `{slo.name}` ({target}) still unspent: 100 % at the start "
        "of the period, 0 % when the budget is gone, negative once overspent.",
        [p.target(q.budget_remaining(slo.name), slo.name)],
        "percentunit",
        BUDGET_STEPS,
    )
    windows = burn_windows()
    burn = p.timeseries(
        f"{slo.name}: burn rate",
        f"How many times faster than sustainable `{slo.name}` spends its budget, over each alert window. 1x spends "
        f"exactly the budget in {objective.period}. Dashed lines: the burn-rate alert factors (page above "
        f"{max(pair.factor(objective.period) for pair in WINDOW_PAIRS):g}x on the fastest pair).",
        p.targets(*((q.burn_rate(slo.name, window), window) for window in windows)),
        "suffix:x",
        factor_steps(objective.period),
    )
    row = p.row(f"Error budget: {slo.name}", slo.description)
    return p.Section(row, ((remaining, 6, 8), (burn, 18, 8)))
