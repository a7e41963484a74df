"""alertmanager.yml and its route tests: critical pages, warning opens a ticket, info goes to the default receiver.

Alerts are grouped by alertname and SLO; a critical alert inhibits the warnings of the same `slo` label in the same
cluster, namespace, job and pod (a page about an SLO makes its ticket noise redundant there, and only there: pod A's
exhausted pool must not mute pod B's utilization ticket, nor a page in one cluster another cluster's ticket;
Alertmanager compares a label missing on both sides as equal, so per-job alerts and single-cluster rules still inhibit
each other). A burn-rate tier firing inhibits every slower tier of the same alert and `slo` in the same cluster,
namespace and job (`burnrate_tier`: page_fast > page_slow > ticket_fast > ticket_slow), whatever severities the spec
gives them: the slower tier is delivered once the faster one resolves, if it still fires. Receivers are webhook
placeholders on 127.0.0.1 for the user to replace with PagerDuty, Slack or e-mail; `make stack` points them at its
local receiver.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from generators import naming, promql
from generators.alerts import Alert
from slos.models import POD_LABELS, TIER_NAMES, Severity

PAGER, TICKET, DEFAULT = "pager", "ticket", "default"
RECEIVER_BY_SEVERITY = {Severity.CRITICAL: PAGER, Severity.WARNING: TICKET, Severity.INFO: DEFAULT}
PLACEHOLDER_URL = "http://127.0.0.1:5001/alerts/{receiver}"  # replace with the real integration


def _receiver(name: str) -> dict[str, Any]:
    return {"name": name, "webhook_configs": [{"url": PLACEHOLDER_URL.format(receiver=name), "send_resolved": True}]}


def tier_inhibitions() -> list[dict[str, Any]]:
    """Each tier mutes the slower ones of the same burn alert, SLO, namespace and job."""
    return [
        {
            "source_matchers": [f'{naming.TIER_LABEL}="{faster}"'],
            "target_matchers": [
                f"{naming.TIER_LABEL}=~{promql.string('|'.join(map(promql.re2_literal, TIER_NAMES[index + 1 :])))}"
            ],
            "equal": ["alertname", naming.SLO_LABEL, naming.CLUSTER_LABEL, *POD_LABELS],
        }
        for index, faster in enumerate(TIER_NAMES[:-1])
    ]


def config() -> dict[str, Any]:
    group_by = ["alertname", naming.SLO_LABEL]
    return {
        "route": {
            "receiver": DEFAULT,
            "group_by": group_by,
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {"receiver": PAGER, "matchers": [f'severity="{Severity.CRITICAL.value}"'], "repeat_interval": "1h"},
                {"receiver": TICKET, "matchers": [f'severity="{Severity.WARNING.value}"'], "repeat_interval": "12h"},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": [f'severity="{Severity.CRITICAL.value}"'],
                "target_matchers": [f'severity="{Severity.WARNING.value}"'],
                "equal": [naming.SLO_LABEL, naming.CLUSTER_LABEL, *POD_LABELS],
            },
            *tier_inhibitions(),
        ],
        "receivers": [_receiver(name) for name in (DEFAULT, PAGER, TICKET)],
    }


def route_tests(alerts: Iterable[Alert]) -> list[dict[str, Any]]:
    """One case per distinct alert label set: the labels amtool routes and the receiver they must reach."""
    cases: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for alert in alerts:
        labels = {"alertname": alert.alert, **alert.labels}
        key = tuple(sorted(labels.items()))
        cases[key] = {"labels": dict(key), "receiver": RECEIVER_BY_SEVERITY[Severity(alert.labels["severity"])]}
    return [cases[key] for key in sorted(cases)]
