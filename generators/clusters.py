"""The cluster target: rule files for one Prometheus per cluster under Thanos or Mimir (docs/clusters.md).

    clusters/per-cluster/<spec>.yml   each cluster's Prometheus: raw event increases (generators.clusters_events)
    clusters/thanos/<spec>.yml        Thanos Ruler (--rule-file): the global records and alerts
                                      (generators.clusters_global), over Thanos Query
    clusters/mimir/<spec>.yml         the same groups as a Mimir ruler namespace: `mimirtool rules load <file>`
    clusters/kubernetes/prometheusrule-<spec>-{per-cluster,global}.yaml
                                      the per-cluster and the Thanos groups as PrometheusRules, for each cluster's
                                      prometheus-operator and for a ThanosRuler (`role: thanos-rules`)

A render target rather than a profile: a profile changes the clock of the same rules (generators/profile.py), this
changes where rules run, and its files sit beside the single-cluster ones, rendered from the same specs on every
run. A spec without a budgeted SLO that counts events has nothing to split and gets no files.
"""

from __future__ import annotations

from typing import Any

from generators import kubernetes
from generators.clusters_events import counted, event_group
from generators.clusters_global import fleet_group
from generators.output import to_yaml
from generators.profile import Profile
from generators.rules import rule_file
from slos.models import SpecFile

PER_CLUSTER = "clusters/per-cluster/"
THANOS = "clusters/thanos/"
MIMIR = "clusters/mimir/"
KUBERNETES = "clusters/kubernetes/"
# The `role` of the global PrometheusRule: a ThanosRuler's ruleSelector picks it, and a cluster's Prometheus, selecting
# `role: alert-rules` (docs/deployment.md), never evaluates the global rules over its own cluster alone.
THANOS_ROLE = "thanos-rules"
# rendered/README.md's description of each file (generators.readme)
WHAT = (
    (PER_CLUSTER, "each cluster's Prometheus: the SLIs' raw event increases, without `cluster` (docs/clusters.md)"),
    (THANOS, "Thanos Ruler rule file: event-weighted SLIs per cluster and for the fleet, and their burn alerts"),
    (MIMIR, "the same groups as a Mimir ruler namespace file (`mimirtool rules load`)"),
    (
        f"{KUBERNETES}prometheusrule-",
        "a PrometheusRule: the per-cluster rules (`role: alert-rules`) or the global ones (`role: thanos-rules`)",
    ),
)


def mimir_namespace(namespace: str, rules: dict[str, Any]) -> dict[str, Any]:
    """A rule file as mimirtool's `rules load` reads it: the namespace its groups go to, then the groups."""
    return {"namespace": namespace, **rules}


def thanos_rule(stem: str, rules: dict[str, Any]) -> dict[str, Any]:
    """The global groups as a PrometheusRule that only a ThanosRuler selects."""
    resource = kubernetes.prometheus_rule(f"{stem}-global", rules)
    metadata = resource["metadata"]
    return {**resource, "metadata": {**metadata, "labels": {**metadata["labels"], "role": THANOS_ROLE}}}


def files(spec: SpecFile, stem: str, profile: Profile, header: str) -> dict[str, str]:
    """The rule files of one spec file, or none when no SLO of it counts events."""
    slos = [slo for slo in spec.slos if counted(slo)]
    if not slos:
        return {}
    per_cluster = rule_file(tuple(event_group(spec.service, slo, profile) for slo in slos))
    fleet = rule_file(tuple(fleet_group(spec, slo, profile) for slo in slos))
    return {
        f"{PER_CLUSTER}{stem}.yml": to_yaml(per_cluster, header, sort_keys=False),
        f"{THANOS}{stem}.yml": to_yaml(fleet, header, sort_keys=False),
        f"{MIMIR}{stem}.yml": to_yaml(mimir_namespace(stem, fleet), header, sort_keys=False),
        f"{KUBERNETES}prometheusrule-{stem}-per-cluster.yaml": to_yaml(
            kubernetes.prometheus_rule(f"{stem}-per-cluster", per_cluster), header, sort_keys=False
        ),
        f"{KUBERNETES}prometheusrule-{stem}-global.yaml": to_yaml(thanos_rule(stem, fleet), header, sort_keys=False),
    }
