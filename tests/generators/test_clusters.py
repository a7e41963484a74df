"""The cluster target (generators/clusters*.py) on the committed spec: the per-cluster rules leave `cluster` to the
external labels, the global rules weight clusters by their events, alert per cluster with its label and for the
fleet without it, and record one series per SLO (or per cluster and SLO), never more.

promtool evaluates the two layers apart, as they run: the per-cluster rules over one Prometheus's raw series (no
`cluster` anywhere), and the global rules over the per-cluster records of two clusters, written as input series that
carry `cluster` the way Thanos Query or Mimir returns them after each Prometheus attached its external label.
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
from slos.models import ALERT_NAME, SLO
from slos.windows import enabled_pairs
from tests.conftest import require_tool
from tests.generators.promql_names import selectors

CLUSTERS = DEFAULT_OUT / "clusters"
PER_CLUSTER = CLUSTERS / "per-cluster" / "featurestore.yml"
THANOS = CLUSTERS / "thanos" / "featurestore.yml"
MIMIR = CLUSTERS / "mimir" / "featurestore.yml"
KUBERNETES = CLUSTERS / "kubernetes"
SINGLE = DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml"
AVAILABILITY = "http_availability_percent"
BURN_ALERT = "FeatureStoreAvailabilityBudgetBurn"
SCOPE = {"job": "featurestore", "namespace": "featurestore"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load(path)["groups"] for rule in group["rules"]]


def records(path: Path) -> set[str]:
    return {rule["record"] for rule in rules(path) if "record" in rule}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def promtool_test(tmp_path: Path, tests: list[dict[str, Any]], *rule_files: Path) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "clusters_test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(f) for f in rule_files], "tests": tests}))
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, check=False
    )


def cluster_events(cluster: str, bad: int, total: int) -> list[dict[str, str]]:
    """The availability SLO's per-cluster records of one cluster, steady over every window, with its label."""
    windows = sorted({w for pair in enabled_pairs(availability()) for w in (pair.long, pair.short)} | {"5m"})
    labels = {**SCOPE, "cluster": cluster, "slo": AVAILABILITY}
    out = [series(f"slo:sli_bad_events:increase{w}", labels, f"{bad}+0x20") for w in windows]
    return out + [series(f"slo:sli_events:increase{w}", labels, f"{total}+0x20") for w in windows]


def availability() -> SLO:
    (slo,) = [slo for slo in load_specs().specs[0].spec.slos if slo.name == AVAILABILITY]
    return slo


def two_clusters() -> list[dict[str, str]]:
    """Cluster a: 100 bad of 1,000 (10 %, a 100x burn of the 0.1 % budget). Cluster b: 0 of 9,000. The fleet: 100 of
    10,000, 1 % (10x: past the 6x, 3x and 1x pairs, short of 14.4x); the mean of the two ratios, 5 %, pages at 14.4x."""
    return [*cluster_events("a", 100, 1000), *cluster_events("b", 0, 9000)]


def global_case(exprs: list[dict[str, Any]], *more: dict[str, str]) -> list[dict[str, Any]]:
    return [{"interval": "1m", "input_series": [*two_clusters(), *more], "promql_expr_test": exprs}]


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
    """Per minute: 90 2xx and 10 5xx requests in one namespace, 50 2xx (its 5xx counter never created) in another;
    100 inserts, 95 of them within 5 ms. Exact label sets: a `cluster` label would fail the match."""
    quiet = {**SCOPE, "namespace": "quiet"}
    requests = "featurestore_http_requests_total"
    inputs = [
        series(requests, {**SCOPE, "status_class": "2xx"}, "0+90x70"),
        series(requests, {**SCOPE, "status_class": "5xx"}, "0+10x70"),
        series(requests, {**quiet, "status_class": "2xx"}, "0+50x70"),
        series("manifest_insert_latency_ms_count", SCOPE, "0+100x70"),
        series("manifest_insert_latency_ms_bucket", {**SCOPE, "le": "5.0"}, "0+95x70"),
    ]
    available, inserts = {"slo": AVAILABILITY}, {"slo": "manifest_insert_under_5ms_percent"}

    def sample(name: str, value: float, **labels: str) -> dict[str, Any]:
        return {"labels": series(name, labels, "")["series"], "value": value}

    expected = {
        "slo:sli_bad_events:increase5m": (50, 0, 25),
        "slo:sli_events:increase5m": (500, 250, 500),
        "slo:sli_bad_events:increase1h": (600, 0, 300),
        "slo:sli_events:increase1h": (6000, 3000, 6000),
    }
    exprs = [
        {
            "expr": name,
            "eval_time": "60m",
            "exp_samples": [
                sample(name, busy, **SCOPE, **available),
                sample(name, idle, **quiet, **available),
                sample(name, slow, **SCOPE, **inserts),
            ],
        }
        for name, (busy, idle, slow) in expected.items()
    ]
    tests = [{"interval": "1m", "input_series": inputs, "promql_expr_test": exprs}]
    result = promtool_test(tmp_path, tests, PER_CLUSTER)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_a_burning_cluster_alerts_with_its_label_and_a_healthy_one_does_not(tmp_path: Path) -> None:
    """Cluster a pages and tickets on every pair; cluster b, healthy, raises nothing; cluster c, 5 bad of 10, burns
    500x but stays under the SLO's 100-event floor; the fleet, at 10.5x, alerts on the three pairs below it, without
    a `cluster` label."""
    firing = (
        f'count by (cluster, burnrate_scope, burnrate_tier) (ALERTS{{alertname="{BURN_ALERT}", alertstate="firing"}})'
    )
    tiers = ("page_fast", "page_slow", "ticket_fast", "ticket_slow")
    cluster_a = [f'{{burnrate_scope="cluster", burnrate_tier="{t}", cluster="a"}}' for t in tiers]
    fleet = [f'{{burnrate_scope="fleet", burnrate_tier="{t}"}}' for t in ("page_slow", "ticket_fast", "ticket_slow")]
    exprs = [
        {"expr": firing, "eval_time": "10m", "exp_samples": [{"labels": x, "value": 1} for x in cluster_a + fleet]}
    ]
    result = promtool_test(tmp_path, global_case(exprs, *cluster_events("c", 5, 10)), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_fleet_sli_weights_every_cluster_by_its_events(tmp_path: Path) -> None:
    """100 bad of 10,000 is 1 %, over every window and the period; the mean of the clusters' ratios would be 5 %."""
    selector = f'{{slo="{AVAILABILITY}"}}'
    exprs = [
        {
            "expr": f"fleet_slo:sli_error:ratio_rate{w}{selector}",
            "eval_time": "10m",
            "exp_samples": [{"labels": f"fleet_slo:sli_error:ratio_rate{w}{selector}", "value": 0.01}],
        }
        for w in ("1h", "30d")
    ]
    exprs.append(
        {
            "expr": f"cluster_slo:sli_error:ratio_rate1h{selector}",
            "eval_time": "10m",
            "exp_samples": [
                {"labels": f'cluster_slo:sli_error:ratio_rate1h{{cluster="{c}", slo="{AVAILABILITY}"}}', "value": v}
                for c, v in (("a", 0.1), ("b", 0.0))
            ],
        }
    )
    result = promtool_test(tmp_path, global_case(exprs), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_global_records_hold_one_series_per_slo_and_one_per_cluster_and_slo(tmp_path: Path) -> None:
    windows = ("5m", "1h", "3d", "30d")
    exprs = [
        {
            "expr": f'count by (__name__) ({{__name__=~"{level}:(sli_error|burn_rate):ratio_rate{w}"}})',
            "eval_time": "10m",
            "exp_samples": [
                {"labels": f'{{__name__="{level}:{kind}:ratio_rate{w}"}}', "value": count}
                for kind in ("burn_rate", "sli_error")
            ],
        }
        for level, count in (("fleet_slo", 1), ("cluster_slo", 2))
        for w in windows
    ]
    result = promtool_test(tmp_path, global_case(exprs), THANOS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.promtool
def test_the_fleet_period_weighs_a_cluster_by_its_events_not_by_how_often_it_evaluates(tmp_path: Path) -> None:
    """Cluster b records its 5m counts every other minute (a slower evaluation interval): its mean count still
    stands for its events, and the fleet's period ratio stays 1 %. Summing the samples would count cluster a's
    twice as often and say 1.7 %."""
    labels = {**SCOPE, "cluster": "b", "slo": AVAILABILITY}
    sparse = [
        series(name, labels, " ".join([str(value), "_"] * 10))
        for name, value in (("slo:sli_bad_events:increase5m", 0), ("slo:sli_events:increase5m", 9000))
    ]
    dense = [s for s in cluster_events("a", 100, 1000) if "increase5m{" in s["series"]]
    record = f'fleet_slo:sli_error:ratio_rate30d{{slo="{AVAILABILITY}"}}'
    exprs = [{"expr": record, "eval_time": "10m", "exp_samples": [{"labels": record, "value": 0.01}]}]
    tests = [{"interval": "1m", "input_series": dense + sparse, "promql_expr_test": exprs}]
    result = promtool_test(tmp_path, tests, THANOS)
    assert result.returncode == 0, result.stdout + result.stderr
