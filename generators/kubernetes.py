"""Kubernetes resources: the rules as PrometheusRule (prometheus-operator), the scrape job as ServiceMonitor, and the
monitoring service's Deployment and Service, consistent with each other and with prometheus.yml; and how a training
job is observed: a Job whose pod runs the workers beside the service as a sidecar, sharing an emptyDir as the
multiprocess metrics folder, scraped through a PodMonitor.

The ServiceMonitor selects the Service by `SELECTOR`, scrapes its port `http` at the guide's path and interval, and
takes `job` from the Service's `app.kubernetes.io/name` label, so series carry `job="featurestore"` as with
prometheus.yml. One replica with the Recreate strategy: the embedded DuckDB file admits one writer process.
"""

from __future__ import annotations

from typing import Any

from featurestore.conventions import DEFAULT_PORT as PORT
from featurestore.conventions import LIVE_PATH, METRICS_PATH, READY_PATH
from generators import prometheus
from generators.profile import Profile

NAME = "featurestore-monitoring"
IMAGE = "featurestore-monitoring:latest"
PORT_NAME = "http"
JOB_LABEL = "app.kubernetes.io/name"
SELECTOR = {JOB_LABEL: prometheus.JOB, "app.kubernetes.io/component": "monitoring-service"}
LABELS = {**SELECTOR, "app.kubernetes.io/part-of": "featurestore"}
RUN_AS = 10001  # the Dockerfile's non-root user
CACHE_DIR = "/var/cache/featurestore"
# The DSN carries a password: it comes from a Secret the deploy repo provides; without it the service runs on DuckDB.
DSN_SECRET = {"name": "featurestore-manifest", "key": "dsn", "optional": True}


# The training job's pod: its workers write to the folder, the sidecar serves the aggregate.
TRAINING_NAME = "featurestore-training"
TRAINING_SELECTOR = {JOB_LABEL: prometheus.JOB, "app.kubernetes.io/component": "training-worker"}
TRAINING_LABELS = {**TRAINING_SELECTOR, "app.kubernetes.io/part-of": "featurestore"}
WORKER_IMAGE = "training-worker:latest"  # the deploy repo's training image, with this package installed
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


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _service_container(name: str, env: list[Any], mounts: list[Any], **extra: Any) -> dict[str, Any]:
    """The monitoring service's container (`extra`: probes, restart policy), for the Deployment and the sidecar."""
    return {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "service", "--host", "0.0.0.0", "--port", str(PORT)],
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "env": env,
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
        **extra,
    }


def deployment() -> dict[str, Any]:
    env = [
        {"name": "FEATURESTORE_CACHE_DIR", "value": CACHE_DIR},
        {"name": "FEATURESTORE_PG_DSN", "valueFrom": {"secretKeyRef": dict(DSN_SECRET)}},
    ]
    mounts = [{"name": "feature-cache", "mountPath": CACHE_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    container = _service_container(
        "service", env, mounts, livenessProbe=_probe(LIVE_PATH, 10, 3), readinessProbe=_probe(READY_PATH, 5, 2)
    )
    pod_security = {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS}
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
                "spec": {
                    "securityContext": pod_security,
                    "containers": [container],
                    # A lost frame is recomputed on its next lookup; a PersistentVolumeClaim keeps them across restarts.
                    "volumes": [{"name": "feature-cache", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return service_resource(_metadata(NAME), SELECTOR, {PORT_NAME: PORT})


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
        {"name": "FEATURESTORE_PG_DSN", "valueFrom": {"secretKeyRef": {**DSN_SECRET, "optional": False}}},
    ]
    mounts = [metrics_mount, {"name": "feature-cache", "mountPath": CACHE_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
    sidecar = _service_container(
        "metrics",
        env,
        mounts,
        restartPolicy="Always",
        startupProbe=_probe(LIVE_PATH, 1, 30),
        readinessProbe=_probe(READY_PATH, 5, 2),
    )
    worker = {
        "name": "worker",
        "image": WORKER_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        # The launcher: it starts the worker processes (64 of them on one pod, for example), each opening the store.
        "command": ["python", "-m", "train"],
        "env": env,
        "volumeMounts": mounts,
        "securityContext": security,
    }
    pod_security = {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": TRAINING_NAME, "labels": dict(TRAINING_LABELS)},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": dict(TRAINING_LABELS)},
                "spec": {
                    "restartPolicy": "Never",
                    "shareProcessNamespace": True,
                    "securityContext": pod_security,
                    "initContainers": [sidecar],
                    "containers": [worker],
                    "volumes": [
                        {"name": "metrics", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
                        {"name": "feature-cache", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
