"""Maintenance windows: a spec's named `maintenance_windows` become Alertmanager `time_intervals`, muted on routes that
match the `slo` label of the SLOs they cover, ahead of the severity routes.

```
route                                 (receiver default)
├── slo=~"a|b"  mute: [db-upgrade]     one route per distinct set of windows, before the severity routes
│   ├── alert_policy="p"              mute: [db-upgrade]   (a child does not inherit its parent's mute intervals:
│   │   └── → p's targets             mute: [db-upgrade]    every route under a windowed one is muted)
│   ├── severity="critical" → pager   mute: [db-upgrade]
│   └── severity="warning"  → ticket  mute: [db-upgrade]
├── severity="critical" → pager
└── severity="warning"  → ticket
```

Each windowed route copies the policy and severity routes built before it, so receivers and repeat intervals stay
those of the unmuted tree. `maintenance-tests.yml` lists, per alert label set of a windowed SLO, the receiver and the
mute intervals amtool must find on the route it resolves to.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from generators import naming, promql
from slos.loader import SpecSet
from slos.models import TimeInterval


def slo_label(labels: Mapping[str, str]) -> str:
    return labels[naming.SLO_LABEL]


def _interval(interval: TimeInterval) -> dict[str, Any]:
    data = interval.model_dump(exclude_defaults=True, mode="json")
    data["location"] = interval.location
    return data


def time_intervals(specs: SpecSet) -> list[dict[str, Any]]:
    """Alertmanager's top-level `time_intervals`, one per maintenance window of every spec, in spec order."""
    return [
        {"name": window.name, "time_intervals": [_interval(interval) for interval in window.time_intervals]}
        for loaded in specs.specs
        for window in loaded.spec.maintenance_windows
    ]


def muted_labels(specs: SpecSet) -> dict[str, tuple[str, ...]]:
    """`slo` label value -> the windows muting it (validation guarantees one value is never half muted)."""
    muted: dict[str, tuple[str, ...]] = {}
    for loaded in specs.specs:
        for slo in loaded.spec.slos:
            names = loaded.spec.muting(slo)
            if names:
                value = {naming.SLO_LABEL: slo.name, **loaded.spec.labels, **slo.labels}[naming.SLO_LABEL]
                muted[value] = names
    return muted


def slo_matcher(values: Iterable[str]) -> str:
    """`slo=~"checkout \\\\(v2\\\\)|search\\\\+"`: exactly these label values (Alertmanager anchors the regex), each
    escaped as RE2 reads it, then quoted as Alertmanager reads a matcher's value."""
    pattern = "|".join(promql.re2_literal(value) for value in sorted(values))
    return f"{naming.SLO_LABEL}=~{promql.string(pattern)}"


def _muted(route: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `route` and of every route under it muted by `names` (a child does not inherit mute intervals)."""
    muted = {**copy.deepcopy(dict(route)), "mute_time_intervals": list(names)}
    if "routes" in muted:
        muted["routes"] = [_muted(child, names) for child in muted["routes"]]
    return muted


def with_maintenance(config: dict[str, Any], specs: SpecSet) -> dict[str, Any]:
    """`config` with the specs' time intervals and a muted copy of its severity routes per set of windows."""
    muted = muted_labels(specs)
    if not muted:
        return config
    by_windows: dict[tuple[str, ...], list[str]] = {}
    for value, names in muted.items():
        by_windows.setdefault(names, []).append(value)
    routes = config["route"]["routes"]
    windowed = []
    for names, values in sorted(by_windows.items()):
        children = [_muted(route, names) for route in routes]
        windowed.append({"matchers": [slo_matcher(values)], "mute_time_intervals": list(names), "routes": children})
    result = copy.deepcopy(config)
    result["time_intervals"] = time_intervals(specs)
    result["route"]["routes"] = windowed + copy.deepcopy(routes)
    return result


def route_cases(cases: Iterable[Mapping[str, Any]], specs: SpecSet) -> list[dict[str, Any]]:
    """The route test cases (`alertmanager.route_tests`), each with the mute intervals of its route: its SLO's windows,
    none for an SLO outside every window (a matcher that matches too much mutes it); no case when no window exists."""
    muted = muted_labels(specs)
    if not muted:
        return []
    return [
        {**case, "mute_time_intervals": list(muted.get(case["labels"].get(naming.SLO_LABEL, ""), ()))} for case in cases
    ]
