"""Kubernetes resources: the rules as PrometheusRule (prometheus-operator), the scrape job as ServiceMonitor, and the
monitoring service's Deployment and Service, consistent with each other and with prometheus.yml; and how a training
job is observed: a Job whose pod runs the workers beside the service as a sidecar, sharing an emptyDir as the
multiprocess metrics folder, scraped through a PodMonitor.

The ServiceMonitor selects the Service by `SELECTOR`, scrapes its port `http` at the guide's path and interval, and
takes `job` from the Service's `app.kubernetes.io/name` label, so series carry `job="featurestore"` as with
prometheus.yml. One replica with the Recreate strategy: the embedded DuckDB fallback file admits one writer process.

Every pod passes the Pod Security Standards' `restricted` profile (generators/pod_security.py), and a NetworkPolicy
admits only Prometheus to the service's port: the load endpoint shares that port with /metrics, so the policy
filters by who connects, and nothing but a Prometheus pod reaches it.
"""

from __future__ import annotations

from typing import Any

from featurestore.conventions import DEFAULT_PORT as PORT
from featurestore.conventions import LIVE_PATH, METRICS_PATH, READY_PATH
from generators import prometheus
from generators.pod_security import VERSION, Resources, container, empty_dir, pod_spec
from generators.profile import Profile

NAME = "featurestore-monitoring"
IMAGE = f"featurestore-monitoring:{VERSION}"  # the Dockerfile's image, tagged with the package version
PORT_NAME = "http"
JOB_LABEL = "app.kubernetes.io/name"
SELECTOR = {JOB_LABEL: prometheus.JOB, "app.kubernetes.io/component": "monitoring-service"}
LABELS = {**SELECTOR, "app.kubernetes.io/part-of": "featurestore"}
CACHE_DIR = "/var/cache/featurestore"
# The DSN carries a password: it comes from a Secret the deploy repo provides. Required: without it the pod would not
# start rather than run production on a DuckDB file in an emptyDir that is gone with the pod.
DSN_SECRET = {"name": "featurestore-manifest", "key": "dsn", "optional": False}
SERVICE_RESOURCES = Resources(cpu="100m", memory="128Mi", cpu_limit="1", memory_limit="512Mi")
# The Parquet frames a pod computes: past this the kubelet evicts the pod; a PersistentVolumeClaim holds more.
CACHE_SIZE = "1Gi"
TMP_SIZE = "64Mi"
# prometheus-operator labels its Prometheus pods app.kubernetes.io/name=prometheus, in whatever namespace they run.
PROMETHEUS_PODS = {"namespaceSelector": {}, "podSelector": {"matchLabels": {JOB_LABEL: "prometheus"}}}


# The training job's pod: its workers write to the folder, the sidecar serves the aggregate.
TRAINING_NAME = "featurestore-training"
TRAINING_SELECTOR = {JOB_LABEL: prometheus.JOB, "app.kubernetes.io/component": "training-worker"}
TRAINING_LABELS = {**TRAINING_SELECTOR, "app.kubernetes.io/part-of": "featurestore"}
# The deploy repo's training image, with this package installed: tagged with the version of the package it installs.
WORKER_IMAGE = f"training-worker:{VERSION}"
# An example for a launcher of 64 worker processes on one pod: size it to the training code.
WORKER_RESOURCES = Resources(cpu="2", memory="4Gi", cpu_limit="8", memory_limit="16Gi")
METRICS_DIR = "/var/run/featurestore-metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _metadata(name: str) -> dict[str, Any]:
    return {"name": name, "labels": dict(LABELS)}


def prometheus_rule(name: str, rule_file: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {**_metadata(f"{name}-slos"), "labels": {**LABELS, "role": "alert-rules"}},
        "spec": rule_file,
    }


def service_monitor(profile: Profile) -> dict[str, Any]:
    return monitor_resource(
        "ServiceMonitor", _metadata(NAME), JOB_LABEL, SELECTOR, PORT_NAME, METRICS_PATH, profile.scrape_interval
    )


def monitor_resource(
    kind: str, metadata: dict[str, Any], job_label: str, selector: dict[str, str], port: str, path: str, interval: str
) -> dict[str, Any]:
    """A prometheus-operator ServiceMonitor or PodMonitor scraping one named port of what `selector` matches."""
    endpoints = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": kind,
        "metadata": metadata,
        "spec": {
            "jobLabel": job_label,
            "selector": {"matchLabels": dict(selector)},
            endpoints: [{"port": port, "path": path, "interval": interval}],
        },
    }


def service_resource(metadata: dict[str, Any], selector: dict[str, str], ports: dict[str, int]) -> dict[str, Any]:
    """A Service exposing each named container port (name -> port) under the same name and number."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "selector": dict(selector),
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"} for name, port in ports.items()
            ],
        },
    }


def network_policy(metadata: dict[str, Any], selector: dict[str, str], ingress: list[Any]) -> dict[str, Any]:
    """Admits to the pods `selector` matches only what `ingress` lists (each: from which peers, to which ports);
    egress stays open: the DSN's host is the deploy repo's choice."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {"podSelector": {"matchLabels": dict(selector)}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def ingress_from(peers: list[dict[str, Any]], port: str) -> dict[str, Any]:
    """One ingress rule: these peers, to this named container port."""
    return {"from": peers, "ports": [{"port": port, "protocol": "TCP"}]}


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _service_container(name: str, env: list[Any], mounts: list[Any], **extra: Any) -> dict[str, Any]:
    """The monitoring service's container (`extra`: probes, restart policy), for the Deployment and the sidecar."""
    return container(
        name=name,
        image=IMAGE,
        resources=SERVICE_RESOURCES,
        command=["python", "-m", "service", "--host", "0.0.0.0", "--port", str(PORT)],
        ports=[{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        env=env,
        volumeMounts=mounts,
        **extra,
    )


def _dsn_env() -> dict[str, Any]:
    return {"name": "FEATURESTORE_PG_DSN", "valueFrom": {"secretKeyRef": dict(DSN_SECRET)}}


def deployment() -> dict[str, Any]:
    env = [{"name": "FEATURESTORE_CACHE_DIR", "value": CACHE_DIR}, _dsn_env()]
    mounts = [{"name": "feature-cache", "mountPath": CACHE_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    service_container = _service_container(
        "service", env, mounts, livenessProbe=_probe(LIVE_PATH, 10, 3), readinessProbe=_probe(READY_PATH, 5, 2)
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(NAME),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                # A lost frame is recomputed on its next lookup; a PersistentVolumeClaim keeps them across restarts.
                "spec": pod_spec(
                    containers=[service_container],
                    volumes=[empty_dir("feature-cache", CACHE_SIZE), empty_dir("tmp", TMP_SIZE)],
                ),
            },
        },
    }


def service() -> dict[str, Any]:
    return service_resource(_metadata(NAME), SELECTOR, {PORT_NAME: PORT})


def service_network_policy() -> dict[str, Any]:
    """The service's pods: Prometheus reaches port http (/metrics, and with it the load endpoint); nothing else does."""
    return network_policy(_metadata(NAME), SELECTOR, [ingress_from([PROMETHEUS_PODS], PORT_NAME)])


def training_network_policy() -> dict[str, Any]:
    """The training pods: Prometheus scrapes the sidecar; the workers serve nothing."""
    metadata = {"name": TRAINING_NAME, "labels": dict(TRAINING_LABELS)}
    return network_policy(metadata, TRAINING_SELECTOR, [ingress_from([PROMETHEUS_PODS], PORT_NAME)])


def pod_monitor(profile: Profile) -> dict[str, Any]:
    """Scrapes every training pod's sidecar: the aggregate of all its worker processes, `job` from the pod label."""
    metadata = {"name": TRAINING_NAME, "labels": dict(TRAINING_LABELS)}
    return monitor_resource(
        "PodMonitor", metadata, JOB_LABEL, TRAINING_SELECTOR, PORT_NAME, METRICS_PATH, profile.scrape_interval
    )


def training_job() -> dict[str, Any]:
    """A training Job: the workers' container and the service as a native sidecar (an init container that keeps
    running, Kubernetes >= 1.29), sharing the metrics folder (an emptyDir: empty at pod start, gone with the pod).

    One process namespace for the pod: prometheus_client names its files by pid, and two containers' pid 1 would
    write the same file."""
    metrics_mount = {"name": "metrics", "mountPath": METRICS_DIR}
    env = [
        {"name": MULTIPROC_ENV, "value": METRICS_DIR},
        {"name": "FEATURESTORE_CACHE_DIR", "value": CACHE_DIR},
        _dsn_env(),
    ]
    mounts = [metrics_mount, {"name": "feature-cache", "mountPath": CACHE_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    sidecar = _service_container(
        "metrics",
        env,
        mounts,
        restartPolicy="Always",
        startupProbe=_probe(LIVE_PATH, 1, 30),
        livenessProbe=_probe(LIVE_PATH, 10, 3),
        readinessProbe=_probe(READY_PATH, 5, 2),
    )
    worker = container(
        name="worker",
        image=WORKER_IMAGE,
        resources=WORKER_RESOURCES,
        # The launcher: it starts the worker processes (64 of them on one pod, for example), each opening the store.
        command=["python", "-m", "train"],
        env=env,
        volumeMounts=mounts,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": TRAINING_NAME, "labels": dict(TRAINING_LABELS)},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": dict(TRAINING_LABELS)},
                "spec": pod_spec(
                    restartPolicy="Never",
                    shareProcessNamespace=True,
                    initContainers=[sidecar],
                    containers=[worker],
                    volumes=[
                        empty_dir("metrics", "256Mi", memory=True),
                        empty_dir("feature-cache", CACHE_SIZE),
                        empty_dir("tmp", TMP_SIZE),
                    ],
                ),
            },
        },
    }
