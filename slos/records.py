"""Names of the per-SLO recording rules: the generators write them (through `generators.naming`), the SLO report
reads them back from Prometheus. They live here, upstream of both, so neither retypes them."""

from __future__ import annotations

SLO_LABEL = "slo"  # the SLO's name on every per-SLO recording rule

OBJECTIVE_RECORD = "slo:objective:ratio"
ERROR_BUDGET_RECORD = "slo:error_budget:ratio"
BUDGET_REMAINING_RECORD = "slo:error_budget_remaining:ratio"  # 1 - (error ratio over the period / budget)


def sli_error_record(window: str) -> str:
    """Error ratio of a budgeted SLO over `window`, labelled `slo="<name>"`."""
    return f"slo:sli_error:ratio_rate{window}"


def burn_rate_record(window: str) -> str:
    """Burn rate over `window`: the error ratio divided by the error budget."""
    return f"slo:burn_rate:ratio_rate{window}"
