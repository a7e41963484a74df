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

Each condition of a policy an SLO names is compiled into a burn alert of that SLO (`generators.alerts`), labelled
`alert_policy="<policy>"` and `burnrate_tier="<condition>"`. The route tests are generated from those alerts: per SLO,
policy and condition, the alert's full label set and the receivers amtool must resolve it to.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from generators import naming
from generators.alerts import Alert
from slos.loader import SpecSet
from slos.models import NotificationTarget

POLICY_LABEL = naming.POLICY_LABEL
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


def route_cases(specs: SpecSet, alerts: Iterable[Alert]) -> list[dict[str, Any]]:
    """Per compiled policy alert (SLO, policy and condition): its labels and the receivers of the policy's targets
    (comma-separated, in order)."""
    notify = {policy.name: policy.notify for loaded in specs.specs for policy in loaded.spec.alert_policies}
    cases: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for alert in alerts:
        policy = alert.labels.get(POLICY_LABEL)
        if policy is None:
            continue
        key = tuple(sorted({"alertname": alert.alert, **alert.labels}.items()))
        cases[key] = {"labels": dict(key), "receiver": ",".join(notify[policy])}
    return [cases[key] for key in sorted(cases)]
