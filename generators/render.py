"""Everything under the output folder, as data: path -> file text. Pure: validation first, no disk writes.

prometheus/rules/<spec>.yml          rule groups per SLO (+ the dashboards' recording rules)
prometheus/tests/<spec>_test.yml     generated promtool tests, one or more cases per alert
prometheus/prometheus.yml            the guide's scrape job, rule_files, the Alertmanager target
alertmanager/alertmanager.yml        routes by severity, grouping, inhibition, placeholder receivers
alertmanager/route-tests.yml         per alert label set, the receiver amtool must route it to
alertmanager/maintenance-tests.yml   per alert label set of an SLO with maintenance windows, its routes' mute intervals
alertmanager/policy-route-tests.yml  per SLO, alert policy and condition, the receivers of the policy's targets
kubernetes/*.yaml                    PrometheusRule per spec, ServiceMonitor, Deployment, Service, NetworkPolicy,
                                     PodMonitor
clusters/**                          per-cluster and global (Thanos Ruler, Mimir) rules (generators.clusters)
kubernetes/training/*.yaml           a training Job: workers + the service as a sidecar sharing the metrics folder,
                                     and its NetworkPolicy
prometheus/rules/pgbouncer.yml, kubernetes/pgbouncer-*.yaml   the pooler (generators/pooler.py), with the catalog spec
grafana/**                           generators.grafana.dashboard_files
schema/featurestore-v1.json          JSON Schema of the native spec (generators.schema), for editors
README.md                            what each file is, every alert and the test proving it
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from generators import alertmanager, clusters, kubernetes, maintenance, policies, pooler, prometheus, schema
from generators.calendar import CALENDAR_LOOKBACK
from generators.grafana import dashboard_files
from generators.output import to_yaml
from generators.profile import Profile
from generators.readme import readme
from generators.rules import rule_file, rule_groups
from generators.spec_output import SpecOutput
from generators.testfile import plan, test_files
from slos.errors import Problem, SpecError
from slos.loader import SpecSet
from slos.models import BUDGETED, LatencyBudgetObjective, RatioObjective, TimeslicesObjective, duration_seconds
from slos.validate import CATALOG_SERVICE, validate

REPO = Path(__file__).resolve().parent.parent


def display(path: Path) -> str:
    """A spec path as headers show it: relative to the repository when inside it (stable across machines)."""
    resolved = path.resolve()
    return resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else resolved.name


def _header(sources: str, command: str, profile: Profile) -> str:
    note = "" if profile.committed else f"\nThe {profile.name} profile (shortened windows and for:): never commit it."
    return f"Generated from {sources} by `{command}`. Do not edit: change the spec and regenerate.{note}"


def read_back(objective: RatioObjective | LatencyBudgetObjective | TimeslicesObjective) -> str:
    """How far back the period's error ratio reads: the period, or a calendar window's longest length."""
    if isinstance(objective, TimeslicesObjective) and objective.calendar is not None:
        return CALENDAR_LOOKBACK[objective.calendar.duration]
    return objective.period


def retention_problems(specs: SpecSet, profile: Profile, retention: str) -> list[Problem]:
    """Every budgeted SLO whose period (in the profile's windows) is longer than `retention`: its period SLI averages
    that far back, and Prometheus would silently average a shorter span."""
    problems = []
    for loaded in specs.specs:
        for index, slo in enumerate(loaded.spec.slos):
            span = read_back(slo.objective) if isinstance(slo.objective, BUDGETED) else None
            if span is not None and duration_seconds(profile.window(span)) > duration_seconds(retention):
                reason = (
                    f"the period {span} is longer than the retention {retention} the rules are "
                    "rendered for (--retention): Prometheus would compute the SLO over a shorter span without a word. "
                    "Raise --storage.tsdb.retention.time (prometheus-operator: spec.retention) and pass --retention, "
                    "or shorten the period"
                )
                problems.append(Problem(str(loaded.path), loaded.locate(index, "objective.period"), reason))
    return problems


def check_retention(specs: SpecSet, profile: Profile, retention: str) -> None:
    """SpecError listing `retention_problems`, if any."""
    problems = retention_problems(specs, profile, retention)
    if problems:
        raise SpecError(problems[0].path, more=problems)


def _spec_files(specs: SpecSet, profile: Profile, command: str) -> tuple[dict[str, str], list[SpecOutput]]:
    """Each spec's own files: its rules, their promtool tests, its PrometheusRule and its cluster layers. The first
    spec of the catalog's service gets the dashboards' recording rules."""
    files: dict[str, str] = {}
    outputs: list[SpecOutput] = []
    dashboards_done = False
    for loaded in specs.specs:
        dashboards = not dashboards_done and loaded.spec.service == CATALOG_SERVICE
        dashboards_done = dashboards_done or dashboards
        groups = rule_groups(loaded.spec, profile, dashboards=dashboards)
        output = SpecOutput(
            loaded, loaded.path.stem, tuple(a for g in groups for a in g.alerts), plan(loaded.spec, profile, groups)
        )
        if output.rules_path in files:
            raise ValueError(f"two spec files are named {output.stem}: rename one")
        header = _header(display(loaded.path), command, profile)
        rules = rule_file(groups)
        files[output.rules_path] = to_yaml(rules, header, sort_keys=False)
        for suffix, tests in test_files(output.plan, f"../rules/{output.stem}.yml", profile).items():
            files[f"prometheus/tests/{output.stem}{suffix}"] = to_yaml(tests, header, sort_keys=False)
        files[f"kubernetes/prometheusrule-{output.stem}.yaml"] = to_yaml(
            kubernetes.prometheus_rule(output.stem, rules), header, sort_keys=False
        )
        files.update(clusters.files(loaded.spec, output.stem, profile, header))
        outputs.append(output)
    return files, outputs


def _alertmanager_files(specs: SpecSet, outputs: Sequence[SpecOutput], header: str) -> dict[str, str]:
    """Alertmanager's config (routes, policies, maintenance windows) and the amtool cases of each."""
    files: dict[str, str] = {}
    routed = policies.with_policies(alertmanager.config(), specs)
    files["alertmanager/alertmanager.yml"] = to_yaml(maintenance.with_maintenance(routed, specs), header)
    alerts = [alert for output in outputs for alert in output.alerts]
    routes = alertmanager.route_tests(alert for alert in alerts if policies.POLICY_LABEL not in alert.labels)
    files["alertmanager/route-tests.yml"] = to_yaml({"config": "alertmanager.yml", "cases": routes}, header)
    policy_cases = policies.route_cases(specs, alerts)
    if policy_cases:
        files["alertmanager/policy-route-tests.yml"] = to_yaml(
            {"config": "alertmanager.yml", "cases": policy_cases}, header
        )
    muted = maintenance.route_cases([*routes, *policy_cases], specs)
    if muted:
        files["alertmanager/maintenance-tests.yml"] = to_yaml({"config": "alertmanager.yml", "cases": muted}, header)
    return files


def _kubernetes_files(profile: Profile, header: str) -> dict[str, str]:
    return {
        "kubernetes/servicemonitor.yaml": to_yaml(kubernetes.service_monitor(profile), header),
        "kubernetes/deployment.yaml": to_yaml(kubernetes.deployment(), header),
        "kubernetes/service.yaml": to_yaml(kubernetes.service(), header),
        "kubernetes/networkpolicy.yaml": to_yaml(kubernetes.service_network_policy(), header),
        "kubernetes/podmonitor-training.yaml": to_yaml(kubernetes.pod_monitor(profile), header),
        # In a folder of its own: `kubectl apply -f rendered/kubernetes/` must not start a job with a placeholder image.
        "kubernetes/training/job.yaml": to_yaml(kubernetes.training_job(), header),
        "kubernetes/training/networkpolicy.yaml": to_yaml(kubernetes.training_network_policy(), header),
    }


def render(specs: SpecSet, profile: Profile, command: str, retention: str | None = None) -> dict[str, str]:
    """Validate the specs, then build every output file. Raises SpecError (bad specs, or a period longer than the
    retention, the profile's unless given) or GeneratorError (a bug)."""
    validate(specs, profile.timing)
    check_retention(specs, profile, retention or profile.retention)
    files, outputs = _spec_files(specs, profile, command)
    sources = ", ".join(display(loaded.path) for loaded in specs.specs)
    header = _header(sources, command, profile)
    rule_paths = [output.rules_path.removeprefix("prometheus/") for output in outputs]
    catalog = next((loaded for loaded in specs.specs if loaded.spec.service == CATALOG_SERVICE), None)
    if catalog is not None:  # the feature store's fleet: PgBouncer in front of its PostgreSQL, and its one alert
        pooler_header = _header(f"generators/pooler.py (runbooks of {display(catalog.path)})", command, profile)
        files.update(pooler.files(catalog.spec.runbook_base_url, profile, pooler_header))
        rule_paths.append(pooler.RULES_PATH.removeprefix("prometheus/"))
    files["prometheus/prometheus.yml"] = to_yaml(prometheus.config(rule_paths, profile), header)
    files.update(_alertmanager_files(specs, outputs, header))
    files.update(_kubernetes_files(profile, header))
    files.update(dashboard_files(specs))
    files[schema.SCHEMA_PATH] = schema.schema_file()
    facts = pooler.readme_facts(catalog.spec.runbook_base_url, profile) if catalog is not None else None
    files["README.md"] = readme(outputs, files, sources, command, profile, facts)
    return dict(sorted(files.items()))
