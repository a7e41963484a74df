"""The cluster target (generators/clusters*.py) on the committed spec: the per-cluster rules leave `cluster` to the
external labels, the global rules weight clusters by their events, alert per cluster with its label and for the
fleet without it, and record one series per SLO (or per cluster and SLO), never more.

promtool evaluates the two layers apart, as they run, on the cases of tests/generators/cluster_cases.py (which the
mutation harness, tests/promtool/mutants.py, runs against the rules' mutants too).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestore import metrics
from generators.__main__ import DEFAULT_OUT
from slos.loader import load_specs
from slos.models import ALERT_NAME
from slos.windows import enabled_pairs
from tests.conftest import require_tool
from tests.generators import cluster_cases
from tests.generators.promql_names import selectors

CLUSTERS = DEFAULT_OUT / "clusters"
PER_CLUSTER = CLUSTERS / "per-cluster" / "featurestore.yml"
THANOS = CLUSTERS / "thanos" / "featurestore.yml"
MIMIR = CLUSTERS / "mimir" / "featurestore.yml"
KUBERNETES = CLUSTERS / "kubernetes"
SINGLE = DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load(path)["groups"] for rule in group["rules"]]


def records(path: Path) -> set[str]:
    return {rule["record"] for rule in rules(path) if "record" in rule}


def promtool_test(
    tmp_path: Path, tests: list[dict[str, Any]], *rule_files: Path, evaluation: str = "1m"
) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "clusters_test.yml"
    rules = [str(f) for f in rule_files]
    test_file.write_text(yaml.safe_dump({"rule_files": rules, "evaluation_interval": evaluation, "tests": tests}))
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_per_cluster_rules_leave_the_cluster_label_to_the_external_labels() -> None:
    found = [rule for rule in rules(PER_CLUSTER) if "cluster" in rule["expr"] or "cluster" in rule.get("labels", {})]
    assert found == []
    assert all(rule["expr"].count("sum by (namespace, job)") >= 1 for rule in rules(PER_CLUSTER))


def test_the_per_cluster_rules_read_catalog_metrics_and_the_global_ones_read_records() -> None:
    samples = {name for spec in metrics.CATALOG for name in spec.sample_names}
    assert [r["expr"] for r in rules(PER_CLUSTER) if set(selectors(r["expr"])) - samples] == []
    known = records(PER_CLUSTER) | records(THANOS)
    assert [r["expr"] for r in rules(THANOS) if set(selectors(r["expr"])) - known] == []


def test_the_global_records_share_no_name_with_the_records_each_cluster_holds() -> None:
    assert records(THANOS) & (records(SINGLE) | records(PER_CLUSTER)) == set()


def test_the_global_alerts_keep_the_single_cluster_names_once_per_cluster_and_once_for_the_fleet() -> None:
    spec = load_specs().specs[0].spec
    single = {rule["alert"]: rule for rule in rules(SINGLE) if "alert" in rule}
    found = [rule for rule in rules(THANOS) if "alert" in rule]
    expected = [
        (slo.burn_rate.name, scope, pair.name)
        for slo in spec.slos
        if slo.burn_rate is not None
        for scope in ("cluster", "fleet")
        for pair in enabled_pairs(slo)
    ]
    assert [(a["alert"], a["labels"]["burnrate_scope"], a["labels"]["burnrate_tier"]) for a in found] == expected
    for alert in found:
        assert ALERT_NAME.match(alert["alert"]) and alert["alert"] in single
        assert alert["annotations"] == single[alert["alert"]]["annotations"]


def test_the_mimir_namespace_file_holds_the_thanos_groups_under_the_spec_name() -> None:
    mimir = load(MIMIR)
    assert list(mimir) == ["namespace", "groups"]
    assert mimir == {"namespace": "featurestore", **load(THANOS)}


def test_the_prometheus_rules_wrap_the_rule_files_and_only_a_thanos_ruler_selects_the_global_one() -> None:
    """A cluster's Prometheus selects `role: alert-rules` (docs/deployment.md): the global rules must not match it."""
    per_cluster = load(KUBERNETES / "prometheusrule-featurestore-per-cluster.yaml")
    global_rule = load(KUBERNETES / "prometheusrule-featurestore-global.yaml")
    assert per_cluster["spec"] == load(PER_CLUSTER) and global_rule["spec"] == load(THANOS)
    assert per_cluster["metadata"]["labels"]["role"] == "alert-rules"
    assert global_rule["metadata"]["labels"]["role"] == "thanos-rules"


@pytest.mark.promtool
def test_every_rendered_cluster_rule_file_passes_promtool_check_rules(tmp_path: Path) -> None:
    """The Mimir file's groups are checked without its `namespace` key, which only mimirtool reads."""
    groups = tmp_path / "mimir-groups.yml"
    groups.write_text(yaml.safe_dump({"groups": load(MIMIR)["groups"]}))
    promtool = require_tool("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", "--lint-fatal", str(PER_CLUSTER), str(THANOS), str(groups)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.promtool
def test_the_per_cluster_rules_count_the_bad_and_all_events_of_one_prometheus(tmp_path: Path) -> None:
    """Each namespace and SLO gets its own count, without a `cluster` label (cluster_cases.per_cluster_events)."""
    evaluation = cluster_cases.PER_CLUSTER_EVALUATION
    result = promtool_test(tmp_path, cluster_cases.per_cluster_events(), PER_CLUSTER, evaluation=evaluation)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_a_burning_cluster_alerts_with_its_label_and_a_healthy_one_does_not(tmp_path: Path) -> None:
    """A cluster alerts with its label, a healthy or low-traffic one does not, the fleet without one
    (cluster_cases.burning_cluster)."""
    result = promtool_test(tmp_path, cluster_cases.burning_cluster(), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_each_global_burn_alert_fires_just_over_its_factors_and_floor_and_not_just_under(tmp_path: Path) -> None:
    """Per pair, each window 1 % either side of the factor and the floor met or missed by one event, per cluster
    and for the fleet (cluster_cases.burn_straddles)."""
    result = promtool_test(tmp_path, cluster_cases.burn_straddles(), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_fleet_sli_weights_every_cluster_by_its_events(tmp_path: Path) -> None:
    result = promtool_test(tmp_path, cluster_cases.fleet_weights(), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_global_records_hold_one_series_per_slo_and_one_per_cluster_and_slo(tmp_path: Path) -> None:
    result = promtool_test(tmp_path, cluster_cases.one_series_each(), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_fleet_period_weighs_a_cluster_by_its_events_not_by_how_often_it_evaluates(tmp_path: Path) -> None:
    result = promtool_test(tmp_path, cluster_cases.sparse_cluster_period(), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_every_global_record_reads_its_own_window_and_slo_and_divides_by_its_budget(tmp_path: Path) -> None:
    result = promtool_test(tmp_path, cluster_cases.every_window(), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_a_fleet_without_events_records_no_ratio_and_one_of_a_good_event_records_0(tmp_path: Path) -> None:
    result = promtool_test(tmp_path, cluster_cases.idle_fleet(), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_period_records_average_the_5m_counts_over_the_period_not_half_or_twice_it(tmp_path: Path) -> None:
    """Two periods of daily 5m counts, each stretch its own ratio (cluster_cases.period_windows)."""
    evaluation = cluster_cases.period_evaluation()
    result = promtool_test(tmp_path, cluster_cases.period_windows(), THANOS, evaluation=evaluation)
    assert result.returncode == 0, result.stdout + result.stderr
