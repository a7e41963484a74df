"""The pooler in front of PostgreSQL for fleets past one server's max_connections: PgBouncer in transaction mode with
prometheus-community's pgbouncer_exporter beside it, the one alert on its metrics, and that alert's promtool test.

    prometheus/rules/pgbouncer.yml          group `pgbouncer`: PgBouncerClientWaitHigh (silent without the exporter)
    prometheus/tests/pgbouncer_test.yml     fires on a sustained wait, not on a short or small one
    kubernetes/prometheusrule-pgbouncer.yaml
    kubernetes/pgbouncer-{configmap,deployment,service,servicemonitor,networkpolicy,pdb}.yaml

Server-side pool metrics are PgBouncer's to export: the feature store's own pool gauges count each process's client
connections to the pooler (see featurestore/manifest/postgres.py `pool_stats`), not PostgreSQL's.
"""

from __future__ import annotations

from typing import Any

from generators import kubernetes
from generators.output import to_yaml
from generators.pod_security import Resources, container, empty_dir, pod_spec
from generators.profile import Profile
from slos.models import duration_seconds

NAME = "featurestore-pgbouncer"
STEM = "pgbouncer"
RULES_PATH = f"prometheus/rules/{STEM}.yml"
TESTS_PATH = f"prometheus/tests/{STEM}_test.yml"
IMAGE = "ghcr.io/cloudnative-pg/pgbouncer:1.22.1-16"  # PgBouncer >= 1.18; pin the digest your registry mirrors
EXPORTER_IMAGE = "quay.io/prometheuscommunity/pgbouncer-exporter:v0.10.2"
POOLER_RESOURCES = Resources(cpu="100m", memory="32Mi", cpu_limit="1", memory_limit="128Mi")
EXPORTER_RESOURCES = Resources(cpu="10m", memory="16Mi", cpu_limit="100m", memory_limit="64Mi")
PORT = 6432
PORT_NAME = "postgresql"
EXPORTER_PORT = 9127
EXPORTER_PORT_NAME = "metrics"
DATABASE = "featurestore"
REPLICAS = 2
# A node drain or a cluster upgrade takes one replica at a time: the other keeps serving the fleet.
MIN_AVAILABLE = REPLICAS - 1
# Each replica keeps its own server pool: REPLICAS x SERVER_POOL = 40 of PostgreSQL's default 100 connections.
SERVER_POOL = 20
MAX_CLIENT_CONN = 1000  # a fleet of 200 processes x pool 4 per replica, with room to spare
# A client queued this long for a server connection gets an error (the store then falls back to DuckDB) instead of
# hanging: PgBouncer's default is 120 s, longer than the store's pool_timeout_s (10 s).
QUERY_WAIT_TIMEOUT_S = 10

ALERT = "PgBouncerClientWaitHigh"
# SHOW POOLS maxwait (+ maxwait_us) per pool, as named by prometheus-community/pgbouncer_exporter's metric table.
CLIENT_WAIT_METRIC = "pgbouncer_pools_client_maxwait_seconds"
# An insert's p99 objective is 25 ms: a client that waited a whole second for a server connection means the server
# pool is saturated (or PostgreSQL stopped answering), not merely busy.
CLIENT_WAIT_THRESHOLD_S = 1
HOLD = "2m"
LABELS = {
    "app.kubernetes.io/name": STEM,
    "app.kubernetes.io/component": "pooler",
    "app.kubernetes.io/part-of": "featurestore",
}
SELECTOR = {"app.kubernetes.io/name": STEM, "app.kubernetes.io/component": "pooler"}


def alert(runbook_base_url: str, profile: Profile) -> dict[str, Any]:
    return {
        "alert": ALERT,
        "expr": f"max by (job, database) ({CLIENT_WAIT_METRIC}) >= {CLIENT_WAIT_THRESHOLD_S}",
        "for": profile.hold(HOLD),
        "labels": {"severity": "warning", "component": STEM},
        "annotations": {
            "summary": "Clients of PgBouncer wait for a PostgreSQL server connection",
            "description": "The longest waiting client of pool {{ $labels.database }} has waited "
            "{{ $value | humanizeDuration }} for a server connection",
            "runbook_url": f"{runbook_base_url.rstrip('/')}/{ALERT}.md",
        },
    }


def rule_file(runbook_base_url: str, profile: Profile) -> dict[str, Any]:
    return {"groups": [{"name": STEM, "rules": [alert(runbook_base_url, profile)]}]}


def test_file(runbook_base_url: str, profile: Profile) -> dict[str, Any]:
    """A wait past the threshold fires after the hold; a wait below it, or one shorter than the hold, never does."""
    step = duration_seconds(profile.evaluation_interval)
    hold = duration_seconds(profile.hold(HOLD))
    steps = int(hold // step)
    start = 10  # samples at 0 before the wait begins
    wait_s = CLIENT_WAIT_THRESHOLD_S * 3
    series = f'{CLIENT_WAIT_METRIC}{{job="{STEM}",database="{DATABASE}",user="{DATABASE}"}}'
    short = f'{CLIENT_WAIT_METRIC}{{job="{STEM}",database="short",user="{DATABASE}"}}'
    small = f'{CLIENT_WAIT_METRIC}{{job="{STEM}",database="small",user="{DATABASE}"}}'
    rule = alert(runbook_base_url, profile)
    fired = {
        "exp_labels": {**rule["labels"], "job": STEM, "database": DATABASE},
        "exp_annotations": {
            "summary": rule["annotations"]["summary"],
            "description": f"The longest waiting client of pool {DATABASE} has waited {wait_s}s for a server "
            "connection",
            "runbook_url": rule["annotations"]["runbook_url"],
        },
    }

    def at(samples: int) -> str:
        return f"{int(samples * step)}s"

    return {
        "rule_files": [f"../rules/{STEM}.yml"],
        "evaluation_interval": profile.evaluation_interval,
        "tests": [
            {
                "interval": profile.evaluation_interval,
                "input_series": [
                    {"series": series, "values": f"0x{start - 1} {wait_s}x{steps * 3}"},
                    {"series": short, "values": f"0x{start - 1} {wait_s}x{max(steps - 2, 0)} 0x{steps * 2}"},
                    {"series": small, "values": f"0x{start - 1} {CLIENT_WAIT_THRESHOLD_S / 2:g}x{steps * 3}"},
                ],
                "alert_rule_test": [
                    {"eval_time": at(start - 1), "alertname": ALERT, "exp_alerts": []},
                    {"eval_time": at(start + 1), "alertname": ALERT, "exp_alerts": []},  # pending, not firing
                    {"eval_time": at(start + steps + 1), "alertname": ALERT, "exp_alerts": [fired]},
                ],
            }
        ],
    }


WHAT = (
    (RULES_PATH, "group `pgbouncer`: PgBouncerClientWaitHigh on pgbouncer_exporter's metrics (see The pooler)"),
    (TESTS_PATH, "promtool unit test of PgBouncerClientWaitHigh"),
    ("kubernetes/pgbouncer-configmap.yaml", "pgbouncer.ini: transaction pooling, server pool, client wait timeout"),
    ("kubernetes/pgbouncer-deployment.yaml", "PgBouncer in front of PostgreSQL, pgbouncer_exporter beside it"),
    ("kubernetes/pgbouncer-service.yaml", "the pooler's Service: PostgreSQL protocol and the exporter's metrics"),
    ("kubernetes/pgbouncer-servicemonitor.yaml", "scrapes the exporter (job `pgbouncer`)"),
    (
        "kubernetes/pgbouncer-networkpolicy.yaml",
        "the pooler's port admits the feature store's pods, the exporter's port Prometheus; nothing else",
    ),
    ("kubernetes/pgbouncer-pdb.yaml", "PodDisruptionBudget: a drain takes one PgBouncer replica at a time"),
)


def readme_facts(runbook_base_url: str, profile: Profile) -> dict[str, Any]:
    """What rendered/README.md says about the pooler, from the constants above (no arithmetic in the template)."""
    rule = alert(runbook_base_url, profile)
    return {
        "rules": RULES_PATH,
        "tests": TESTS_PATH,
        "alert": ALERT,
        "expr": rule["expr"],
        "hold": rule["for"],
        "replicas": REPLICAS,
        "server_pool": SERVER_POOL,
        "server_total": REPLICAS * SERVER_POOL,
        "max_client_conn": MAX_CLIENT_CONN,
        "query_wait_timeout": QUERY_WAIT_TIMEOUT_S,
        "port": PORT,
        "exporter_port": EXPORTER_PORT,
    }


def _metadata(name: str) -> dict[str, Any]:
    return {"name": name, "labels": dict(LABELS)}


def pgbouncer_ini() -> str:
    """The pooler's configuration: transaction pooling, what the store needs (see docs/deployment.md)."""
    return "\n".join(
        [
            "[databases]",
            f"{DATABASE} = host=postgresql port=5432 dbname={DATABASE}",
            "[pgbouncer]",
            "listen_addr = 0.0.0.0",
            f"listen_port = {PORT}",
            "pool_mode = transaction",
            f"default_pool_size = {SERVER_POOL}",
            f"max_db_connections = {SERVER_POOL}",
            f"max_client_conn = {MAX_CLIENT_CONN}",
            f"query_wait_timeout = {QUERY_WAIT_TIMEOUT_S}",
            "auth_type = scram-sha-256",
            "auth_file = /etc/pgbouncer/users/userlist.txt",
            "stats_users = pgbouncer_exporter",
            "ignore_startup_parameters = extra_float_digits",
            "",
        ]
    )


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(NAME),
        "data": {"pgbouncer.ini": pgbouncer_ini()},
    }


def deployment() -> dict[str, Any]:
    pooler = container(
        name="pgbouncer",
        image=IMAGE,
        resources=POOLER_RESOURCES,
        command=["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"],
        ports=[{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        livenessProbe={"tcpSocket": {"port": PORT_NAME}, "periodSeconds": 10, "failureThreshold": 3},
        readinessProbe={"tcpSocket": {"port": PORT_NAME}, "periodSeconds": 5},
        volumeMounts=[
            {"name": "config", "mountPath": "/etc/pgbouncer/pgbouncer.ini", "subPath": "pgbouncer.ini"},
            {"name": "users", "mountPath": "/etc/pgbouncer/users", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # unix_socket_dir's default, on a read-only root filesystem
        ],
    )
    exporter = container(
        name="exporter",
        image=EXPORTER_IMAGE,
        resources=EXPORTER_RESOURCES,
        args=["--pgBouncer.connectionString=$(PGBOUNCER_EXPORTER_DSN)", f"--web.listen-address=:{EXPORTER_PORT}"],
        env=[
            {
                "name": "PGBOUNCER_EXPORTER_DSN",
                "valueFrom": {"secretKeyRef": {"name": f"{NAME}-exporter", "key": "dsn"}},
            }
        ],
        ports=[{"name": EXPORTER_PORT_NAME, "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
        # The port, not /metrics: a scrape queries PgBouncer, and a pooler restart must not restart the exporter.
        livenessProbe={"tcpSocket": {"port": EXPORTER_PORT_NAME}, "periodSeconds": 10, "failureThreshold": 3},
        readinessProbe={"tcpSocket": {"port": EXPORTER_PORT_NAME}, "periodSeconds": 5},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(NAME),
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": pod_spec(
                    containers=[pooler, exporter],
                    volumes=[
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "users", "secret": {"secretName": f"{NAME}-users"}},
                        empty_dir("tmp", "16Mi"),
                    ],
                    # The budget below means something only if the replicas are on different nodes.
                    topologySpreadConstraints=[
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": dict(SELECTOR)},
                        }
                    ],
                ),
            },
        },
    }


def pod_disruption_budget() -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(NAME),
        "spec": {"minAvailable": MIN_AVAILABLE, "selector": {"matchLabels": dict(SELECTOR)}},
    }


def network_policy() -> dict[str, Any]:
    """PostgreSQL's protocol from the feature store's pods (the service and the training workers) in this namespace,
    the exporter's metrics from Prometheus; nothing else reaches the pooler."""
    clients = {"podSelector": {"matchLabels": {kubernetes.JOB_LABEL: kubernetes.SELECTOR[kubernetes.JOB_LABEL]}}}
    return kubernetes.network_policy(
        _metadata(NAME),
        SELECTOR,
        [
            kubernetes.ingress_from([clients], PORT_NAME),
            kubernetes.ingress_from([kubernetes.PROMETHEUS_PODS], EXPORTER_PORT_NAME),
        ],
    )


def service() -> dict[str, Any]:
    return kubernetes.service_resource(_metadata(NAME), SELECTOR, {PORT_NAME: PORT, EXPORTER_PORT_NAME: EXPORTER_PORT})


def service_monitor(profile: Profile) -> dict[str, Any]:
    # job="pgbouncer" from the Service's app.kubernetes.io/name label, as the alert's tests use
    return kubernetes.monitor_resource(
        "ServiceMonitor",
        _metadata(NAME),
        kubernetes.JOB_LABEL,
        SELECTOR,
        EXPORTER_PORT_NAME,
        "/metrics",
        profile.scrape_interval,
    )


def kubernetes_resources(profile: Profile) -> dict[str, dict[str, Any]]:
    """The pooler's resources by rendered path (the PrometheusRule is rendered with the other rule files)."""
    return {
        "kubernetes/pgbouncer-configmap.yaml": config_map(),
        "kubernetes/pgbouncer-deployment.yaml": deployment(),
        "kubernetes/pgbouncer-service.yaml": service(),
        "kubernetes/pgbouncer-servicemonitor.yaml": service_monitor(profile),
        "kubernetes/pgbouncer-networkpolicy.yaml": network_policy(),
        "kubernetes/pgbouncer-pdb.yaml": pod_disruption_budget(),
    }


def files(runbook_base_url: str, profile: Profile, header: str) -> dict[str, str]:
    """Every pooler file by rendered path; prometheus.yml lists RULES_PATH beside the specs' rule files."""
    rules = rule_file(runbook_base_url, profile)
    rendered = {
        RULES_PATH: to_yaml(rules, header, sort_keys=False),
        TESTS_PATH: to_yaml(test_file(runbook_base_url, profile), header, sort_keys=False),
        f"kubernetes/prometheusrule-{STEM}.yaml": to_yaml(
            kubernetes.prometheus_rule(STEM, rules), header, sort_keys=False
        ),
    }
    for path, document in kubernetes_resources(profile).items():
        rendered[path] = to_yaml(document, header)
    return rendered
