"""One row per budgeted SLO (kinds `ratio` and `latency_budget`): the error budget left over the SLO's period, and
the burn rate over each alert window and over the period with the alert factors drawn as lines. Windows and factors
are the rules' (`slos.windows`, after the SRE workbook), so a line sits exactly where its alert fires. The period's
figures are its bad events over its events (generators/rules.py), not an average of 5m ratios."""

from __future__ import annotations

from collections.abc import Sequence

from generators.alerts import spec_text, text_values
from generators.grafana import panels as p
from generators.grafana import queries as q
from slos.models import BUDGETED, SLO
from slos.windows import Tier, WindowPair, enabled_pairs, sli_windows

# Lines from the slowest pair up: ticket pairs in yellow/orange, page pairs in red/dark red.
FACTOR_COLOURS: dict[Tier, tuple[str, ...]] = {"ticket": ("yellow", "orange"), "page": ("red", "dark-red")}
BUDGET_STEPS = p.steps(("red", None), ("yellow", 0.0), ("green", 0.25))  # spent / under 25 % left / healthy


def factor_steps(pairs: Sequence[WindowPair]) -> list[dict[str, object]]:
    """Threshold steps at each enabled alert pair's burn-rate factor (14.4, 6, 3, 1 for 30d with every tier on)."""
    seen: dict[Tier, int] = {}
    colours: list[p.Step] = [("green", None)]
    for pair in sorted(pairs, key=lambda pair: pair.factor):
        index = seen[pair.tier] = seen.get(pair.tier, -1) + 1
        palette = FACTOR_COLOURS[pair.tier]
        colours.append((palette[min(index, len(palette) - 1)], pair.factor))
    return p.steps(*colours)


def budgeted(slos: Sequence[SLO]) -> list[SLO]:
    return [slo for slo in slos if slo.budgeted]


def section(slo: SLO) -> p.Section:
    objective = slo.objective
    assert isinstance(objective, BUDGETED)
    target = f"{objective.target * 100:g} % over {objective.period}"
    remaining = p.stat(
        f"{slo.name}: error budget remaining",
        f"{spec_text(slo.description, text_values(slo)).rstrip('.')}. Share of the {objective.period} error budget of "
        f"`{slo.name}` ({target}) still unspent: 1 - (bad events / events over the last {objective.period}) / error "
        "budget. 100 % without errors, 0 % when the budget is gone, negative once overspent.",
        [p.target(q.budget_remaining(slo.name), slo.name)],
        "percentunit",
        BUDGET_STEPS,
    )
    # Lines only where an alert of this SLO fires: its enabled tiers' pairs (none without burn_rate).
    pairs = enabled_pairs(slo)
    if pairs:
        fastest = max(pairs, key=lambda pair: pair.factor)
        where = "page" if fastest.tier == "page" else f"{fastest.name} ticket"
        lines = f"Dashed lines: the burn-rate alert factors ({where} above {fastest.factor:g}x on the fastest pair)."
    else:
        lines = "No burn-rate tier of this SLO is enabled (its alert policy's conditions, if any, are in its rules)."
    burn = p.timeseries(
        f"{slo.name}: burn rate",
        f"How many times faster than sustainable `{slo.name}` spends its budget, over each alert window. 1x spends "
        f"exactly the budget in {objective.period}; the {objective.period} line is the period's bad events over its "
        f"events. {lines}",
        p.targets(*((q.burn_rate(slo.name, window), window) for window in sli_windows(objective.period))),
        "suffix:x",
        factor_steps(pairs),
    )
    row = p.row(f"Error budget: {slo.name}")
    return p.Section(row, ((remaining, 6, 8), (burn, 18, 8)))
