"""Alert policies on the Alertmanager side: every notification target is a receiver of the same name, every policy a
route matching the routing label `alert_policy="<policy>"` that fans out to its targets' receivers.

```
route
├── alert_policy="page-fast-burn"          one route per policy, ahead of the severity routes
│   ├── → payments-pager     continue: true    every target is notified, in the policy's order
│   └── → payments-slack
├── severity="critical" → pager
└── severity="warning"  → ticket
```

The route tests are generated from the policies: per SLO, policy and condition, the label set its alert will carry
(alertname, slo, severity, alert_policy) and the receivers amtool must resolve it to. Compiling the conditions into
the burn alerts that carry those labels is issue 14 phase B (generators.alerts); until then `slos.validate` refuses
to render an SLO that names a policy, so no route exists without its alerts.
"""

from __future__ import annotations

import copy
from typing import Any

from generators import naming
from slos.loader import SpecSet
from slos.models import NotificationTarget

POLICY_LABEL = "alert_policy"  # the routing label of a policy's alerts
PLACEHOLDER_URL = "http://127.0.0.1:5001/alerts/{receiver}"  # replace with the target's real integration


def receivers(specs: SpecSet) -> list[dict[str, Any]]:
    """One webhook placeholder receiver per notification target (by name); resolved notices unless no policy of the
    target wants them."""
    targets: dict[str, NotificationTarget] = {}
    resolved: dict[str, bool] = {}
    for loaded in specs.specs:
        for target in loaded.spec.notification_targets:
            targets.setdefault(target.name, target)
        for policy in loaded.spec.alert_policies:
            for name in policy.notify:
                resolved[name] = resolved.get(name, False) or policy.send_resolved
    return [
        {
            "name": name,
            "webhook_configs": [
                {"url": PLACEHOLDER_URL.format(receiver=name), "send_resolved": resolved.get(name, True)}
            ],
        }
        for name in sorted(targets)
    ]


def policy_routes(specs: SpecSet) -> list[dict[str, Any]]:
    routes: dict[str, dict[str, Any]] = {}
    for loaded in specs.specs:
        for policy in loaded.spec.alert_policies:
            children = [{"receiver": name, "continue": True} for name in policy.notify]
            children[-1].pop("continue")
            routes.setdefault(policy.name, {"matchers": [f'{POLICY_LABEL}="{policy.name}"'], "routes": children})
    return [routes[name] for name in sorted(routes)]


def with_policies(config: dict[str, Any], specs: SpecSet) -> dict[str, Any]:
    """`config` with the targets' receivers and the policies' routes ahead of its own routes."""
    routes = policy_routes(specs)
    if not routes:
        return config
    result = copy.deepcopy(config)
    taken = {receiver["name"] for receiver in result["receivers"]}
    result["receivers"] += [receiver for receiver in receivers(specs) if receiver["name"] not in taken]
    result["route"]["routes"] = routes + result["route"]["routes"]
    return result


def route_cases(specs: SpecSet) -> list[dict[str, Any]]:
    """Per SLO, policy and condition: the labels of its alert and the receivers (comma-separated, in order)."""
    cases: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for loaded in specs.specs:
        spec = loaded.spec
        for slo in spec.slos:
            alertname = slo.burn_rate.name if slo.burn_rate is not None else f"{slo.name}_burn"
            value = {naming.SLO_LABEL: slo.name, **spec.labels, **slo.labels}[naming.SLO_LABEL]
            for policy in spec.policies(slo):
                for condition in policy.conditions:
                    labels = {
                        "alertname": alertname,
                        naming.SLO_LABEL: value,
                        "severity": condition.severity,
                        POLICY_LABEL: policy.name,
                    }
                    key = tuple(sorted(labels.items()))
                    cases[key] = {"labels": dict(key), "receiver": ",".join(policy.notify)}
    return [cases[key] for key in sorted(cases)]
