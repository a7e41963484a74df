"""rendered/README.md: what each file is, every alert with the test cases proving it, windows and profiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from featurestore.conventions import DEFAULT_PORT
from generators import alertmanager, clusters, naming, pooler
from generators.output import MARKER
from generators.profile import PRODUCTION, TEST, Profile
from generators.rules import SHORTEST_WINDOW
from generators.sanity import SANITY_FOR
from generators.spec_output import SpecOutput
from slos.models import BUDGETED, BurnRateAlerting, Severity
from slos.windows import SRE_WORKBOOK_WINDOWS, window_pairs

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)
_WHAT = (
    *pooler.WHAT,
    *clusters.WHAT,
    ("prometheus/rules/", "Prometheus rule groups: one per SLO (recording rules, then alerts), plus recording rules"),
    ("prometheus/tests/", "generated promtool unit tests of those rules (`promtool test rules`)"),
    (
        "prometheus/prometheus.yml",
        "scrape job `featurestore`, rule_files, Alertmanager target (`promtool check config`)",
    ),
    ("alertmanager/alertmanager.yml", "routes by severity, grouping by alertname and slo, inhibition, receivers"),
    ("alertmanager/route-tests.yml", "per alert label set, the receiver `amtool config routes test` must return"),
    (
        "alertmanager/maintenance-tests.yml",
        "per alert label set of an SLO with maintenance windows, the mute_time_intervals of the route it resolves to",
    ),
    (
        "alertmanager/policy-route-tests.yml",
        "per SLO, alert policy and condition, the receivers (its notification targets) amtool must return",
    ),
    ("schema/", "JSON Schema of the native spec, for editors (`yaml-language-server: $schema=`)"),
    ("kubernetes/prometheusrule-", "the same rule groups as a prometheus-operator PrometheusRule"),
    ("kubernetes/servicemonitor.yaml", "the scrape job as a ServiceMonitor (port http, same path and interval)"),
    (
        "kubernetes/deployment.yaml",
        f"the monitoring service: python -m service on port {DEFAULT_PORT}, probes, Pod Security restricted, "
        "requests and limits, the DSN Secret required",
    ),
    ("kubernetes/service.yaml", f"the Service the ServiceMonitor selects (port {DEFAULT_PORT} named http)"),
    (
        "kubernetes/networkpolicy.yaml",
        "only Prometheus pods reach the service's port (its /metrics and its load endpoint alike)",
    ),
    (
        "kubernetes/podmonitor-training.yaml",
        "scrapes each training pod's metrics sidecar (the aggregate of its workers)",
    ),
    (
        "kubernetes/training/job.yaml",
        "a training Job template: workers and the service as a sidecar sharing an emptyDir metrics folder",
    ),
    ("kubernetes/training/networkpolicy.yaml", "only Prometheus pods reach the training pods' metrics sidecar"),
    ("grafana/dashboards/", "Grafana dashboard JSON (see below)"),
    ("grafana/import/", "the dashboard wrapped for POST /api/dashboards/db (see below)"),
    ("grafana/provisioning/datasources/", "Grafana provisioning: the Prometheus datasource"),
    ("grafana/provisioning/dashboards/", "Grafana provisioning: the file provider loading grafana/dashboards/"),
    ("README.md", "this file"),
)


def _what(path: str) -> str:
    return next((what for prefix, what in _WHAT if path.startswith(prefix)), "generated")


def _alert_rows(output: SpecOutput) -> list[dict[str, Any]]:
    rows = []
    seen: set[str] = set()
    for alert in output.alerts:
        tests = [case.name for case in output.plan.cases if alert.alert in case.proves]
        rows.append(
            {
                "name": alert.alert,
                "severity": alert.labels["severity"],
                "hold": alert.for_ or "-",
                "expr": alert.expr.replace("|", "\\|"),
                "tests": "<br>".join(tests).replace("|", "\\|") if alert.alert not in seen else "(same cases)",
            }
        )
        seen.add(alert.alert)
    return rows


def _windows(outputs: Sequence[SpecOutput]) -> list[dict[str, str]]:
    periods = sorted(
        {
            slo.objective.period
            for output in outputs
            for slo in output.loaded.spec.slos
            if isinstance(slo.objective, BUDGETED)
        }
    ) or ["30d"]
    rows = []
    for period in periods:
        for row, pair in zip(SRE_WORKBOOK_WINDOWS, window_pairs(period), strict=True):
            rows.append(
                {
                    "period": period,
                    "name": pair.name,
                    "long": pair.long,
                    "short": pair.short,
                    "share": f"{float(row.budget_share) * 100:g} %",
                    "factor": f"{pair.factor:g}",
                }
            )
    return rows


# What each kind of tier asks of a human (sloth#833: users read `ticket` as a ticket in an issue tracker).
TIER_MEANINGS = {
    "page": "the budget burns fast (the windows table below): someone acts now, at any hour",
    "ticket": "the budget burns slowly but steadily: someone looks during working hours. A ticket is a notification "
    "to the team's ticket receiver (a chat channel, a queue), not an issue filed in a tracker",
}


def _kinds() -> list[dict[str, str]]:
    fields = BurnRateAlerting.model_fields
    rows = []
    for kind, meaning in TIER_MEANINGS.items():
        severity = Severity(fields[f"{kind}_severity"].default)
        receiver = alertmanager.RECEIVER_BY_SEVERITY[severity]
        rows.append({"name": kind, "meaning": meaning, "severity": severity.value, "receiver": receiver})
    return rows


def readme(
    outputs: Sequence[SpecOutput],
    files: Mapping[str, str],
    sources: str,
    command: str,
    profile: Profile,
    pooler_facts: Mapping[str, Any] | None = None,
) -> str:
    specs = [
        {
            "rules": output.rules_path,
            "tests": output.tests_path,
            "alerts": _alert_rows(output),
            "untested": output.plan.untested,
        }
        for output in outputs
    ]
    return _ENV.get_template("README.md.j2").render(
        marker=MARKER,
        sources=sources,
        command=command,
        profile=profile,
        production=PRODUCTION,
        test=TEST,
        files=[(path, _what(path)) for path in sorted({*files, "README.md"})],
        specs=specs,
        windows=_windows(outputs),
        tier_label=naming.TIER_LABEL,
        kinds=_kinds(),
        pooler=pooler_facts,
        floors=any(slo.min_events for output in outputs for slo in output.loaded.spec.slos),
        sanity={"window": SHORTEST_WINDOW, "hold": profile.hold(SANITY_FOR)}
        if any(slo.sanity_alert for output in outputs for slo in output.loaded.spec.slos)
        else None,
    )
