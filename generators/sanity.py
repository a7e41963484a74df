"""Input sanity alerts: a ratio SLO whose inputs disagree (pyrra#448: a success counter that grows faster than the
total) records an error ratio outside [0, 1], and every burn-rate alert then reads nonsense, silently. The SLO's
`sanity_alert` (a ticket) fires when its 5m error ratio stays below 0 or above 1 for `SANITY_FOR`.

Only where the ratio can leave [0, 1] (`RatioObjective.may_leave_range`): two metrics, PromQL queries or a raw error
ratio. Good or bad events that are series of the total's own metric are part of the total (slos.validate holds their
matchers to it), so their ratio cannot leave the range and an alert on it could never fire.
"""

from __future__ import annotations

from generators import naming, promql
from generators.alerts import Alert, labels, with_runbook
from generators.profile import Profile
from slos.models import SLO, SpecFile

# Three times the 5m window: a scrape that catches one counter incremented before the other, or a counter reset, is
# out of the 5m window within 5 minutes; inputs that still disagree after three windows are broken. A ticket, so
# the delay costs nothing. The test profile divides it like every `for:` (15m -> 15s).
SANITY_FOR = "15m"


def sanity_expr(slo: SLO, window: str) -> str:
    record = naming.sli_error_record(window) + promql.slo_selector(slo.name)
    return promql.checked(f"{record} < 0 or {record} > 1")


def sanity_alerts(spec: SpecFile, slo: SLO, profile: Profile, window: str) -> tuple[Alert, ...]:
    """The SLO's input sanity alert on its `window` error ratio record, with its runbook link, when its ratio can
    leave [0, 1]."""
    name = slo.sanity_alert
    if name is None or slo.burn_rate is None:
        return ()
    burn = slo.burn_rate
    alert = Alert(
        alert=name,
        expr=sanity_expr(slo, window),
        for_=profile.hold(SANITY_FOR),
        labels=labels(spec, slo, burn.ticket_severity, burn.labels),
        annotations={
            "summary": f"SLO {slo.name} reads an error ratio outside [0, 1]: its inputs disagree.",
            "description": f"The {window} error ratio of {slo.name} is {{{{ $value | humanizePercentage }}}}: the good "
            "or bad events outgrow the total (or a raw error ratio left its range), so the SLO and its burn-rate "
            "alerts read nonsense. Check that the SLO's queries count the same requests.",
        },
    )
    return (with_runbook(alert, spec.runbook_base_url),)
