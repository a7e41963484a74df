"""rendered/kubernetes/, checked structurally against the app, the Dockerfile and prometheus.yml.

No cluster runs here: these tests hold the manifests to the facts they must agree with, namely the routes the app
serves, the port and command of the image, the Service's labels and port names, and the scrape job's `job` label and
metrics path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.routing import Route

from service.app import routes
from tests.conftest import REPO
from tests.deploy.dockerfile import instructions, only

RENDERED = REPO / "rendered"
KUBERNETES = RENDERED / "kubernetes"
DOCKERFILE = instructions(REPO / "Dockerfile")
GET_PATHS = {route.path for route in routes() if isinstance(route, Route) and "GET" in (route.methods or ())}


def _load(name: str) -> dict[str, Any]:
    path = KUBERNETES / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the generators must render it (python -m generators)")
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def _container() -> dict[str, Any]:
    (container,) = _load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _scrape_job() -> dict[str, Any]:
    (job,) = yaml.safe_load((RENDERED / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    assert isinstance(job, dict)
    return job


def _port_named(ports: list[dict[str, Any]], name: str) -> dict[str, Any]:
    matches = [port for port in ports if port.get("name") == name]
    assert len(matches) == 1, f"no single port named {name!r} in {ports}"
    return matches[0]


def test_the_manifests_are_the_expected_kinds() -> None:
    kinds = {path.name: yaml.safe_load(path.read_text())["kind"] for path in sorted(KUBERNETES.glob("*.yaml"))}
    assert {kinds.get("deployment.yaml"), kinds.get("service.yaml"), kinds.get("servicemonitor.yaml")} == {
        "Deployment", "Service", "ServiceMonitor"
    }  # fmt: skip
    assert "PrometheusRule" in kinds.values()


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_a_probe_gets_a_route_the_app_serves_on_the_containers_named_port(probe: str) -> None:
    container = _container()
    http_get = container[probe]["httpGet"]
    assert http_get["path"] in GET_PATHS
    port = http_get["port"]
    declared = _port_named(container["ports"], port) if isinstance(port, str) else None
    assert declared is not None or port == int(only(DOCKERFILE, "EXPOSE").argument)


def test_the_probes_are_the_guides_kubernetes_style_checks() -> None:
    container = _container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/monitoring/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/monitoring/health/ready"


def test_the_container_port_is_the_images_exposed_port_and_the_port_its_command_binds() -> None:
    container = _container()
    exposed = int(only(DOCKERFILE, "EXPOSE").argument)
    assert _port_named(container["ports"], "http")["containerPort"] == exposed
    command = container.get("command", []) + container.get("args", [])
    if command:
        assert command == only(DOCKERFILE, "CMD").exec_form(), "the manifest must run what the image runs"
        assert int(command[command.index("--port") + 1]) == exposed


def test_the_container_requests_cpu_and_memory() -> None:
    requests = _container()["resources"]["requests"]
    assert {"cpu", "memory"} <= set(requests)


def test_the_deployment_and_the_service_select_the_pods_the_template_labels() -> None:
    deployment, service = _load("deployment.yaml"), _load("service.yaml")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (deployment["spec"]["selector"]["matchLabels"], service["spec"]["selector"]):
        assert selector and selector.items() <= pod_labels.items()


def test_the_service_forwards_its_http_port_to_the_containers_http_port() -> None:
    service_port = _port_named(_load("service.yaml")["spec"]["ports"], "http")
    target = service_port["targetPort"]
    container_port = _port_named(_container()["ports"], "http")
    assert target in ("http", container_port["containerPort"])


def test_the_service_monitor_scrapes_the_services_http_port_at_the_apps_metrics_path() -> None:
    monitor, service = _load("servicemonitor.yaml"), _load("service.yaml")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    _port_named(service["spec"]["ports"], endpoint["port"])
    assert endpoint["path"] == _scrape_job()["metrics_path"]
    assert endpoint["path"] in GET_PATHS


def test_the_service_monitor_gives_series_the_same_job_label_as_prometheus_yml() -> None:
    monitor, service = _load("servicemonitor.yaml"), _load("service.yaml")
    job_label = monitor["spec"]["jobLabel"]
    assert service["metadata"]["labels"][job_label] == _scrape_job()["job_name"]


def test_each_prometheus_rule_carries_exactly_the_rendered_rule_file() -> None:
    for path in sorted(KUBERNETES.glob("prometheusrule-*.yaml")):
        stem = path.name.removeprefix("prometheusrule-").removesuffix(".yaml")
        rule_file = RENDERED / "prometheus" / "rules" / f"{stem}.yml"
        assert yaml.safe_load(path.read_text())["spec"] == yaml.safe_load(rule_file.read_text()), path.name


def test_every_rule_file_prometheus_loads_has_its_prometheus_rule() -> None:
    rule_files = yaml.safe_load((RENDERED / "prometheus" / "prometheus.yml").read_text())["rule_files"]
    stems = {Path(path).stem for path in rule_files}
    assert stems and {f"prometheusrule-{stem}.yaml" for stem in stems} <= {p.name for p in KUBERNETES.glob("*.yaml")}


def test_the_pod_runs_as_the_images_non_root_user() -> None:
    pod = _load("deployment.yaml")["spec"]["template"]["spec"]
    user = only(DOCKERFILE, "USER").argument.split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user


def test_the_dsn_comes_from_a_secret_and_the_cache_lives_on_a_writable_volume() -> None:
    container = _container()
    env = {item["name"]: item for item in container["env"]}
    assert "value" not in env["FEATURESTORE_PG_DSN"]  # never a literal password in the manifest
    # Required: without the Secret the pod does not start, rather than run on DuckDB in an emptyDir gone with the pod.
    assert env["FEATURESTORE_PG_DSN"]["valueFrom"]["secretKeyRef"]["optional"] is False
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["FEATURESTORE_CACHE_DIR"]["value"] in mounts
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and "/tmp" in mounts


def test_a_training_pod_runs_its_workers_beside_the_service_sharing_one_metrics_folder_and_one_pid_namespace() -> None:
    path = KUBERNETES / "training" / "job.yaml"
    job = yaml.safe_load(path.read_text())
    pod = job["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    (worker,) = pod["containers"]
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar: the Job completes when the workers do
    assert sidecar["command"] == ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
    assert pod["shareProcessNamespace"] is True  # prometheus_client names its files by pid

    def folder(container: dict[str, Any]) -> str:
        (value,) = [env["value"] for env in container["env"] if env["name"] == "PROMETHEUS_MULTIPROC_DIR"]
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == value]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert "emptyDir" in volume  # empty when the pod starts, gone with it: the launcher's folder
        return str(value)

    assert folder(sidecar) == folder(worker)


def test_the_pod_monitor_scrapes_the_training_pods_sidecar_on_the_metrics_path_as_job_featurestore() -> None:
    monitor = _load("podmonitor-training.yaml")
    pod = yaml.safe_load((KUBERNETES / "training" / "job.yaml").read_text())["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert monitor["kind"] == "PodMonitor"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (sidecar,) = pod["spec"]["initContainers"]
    assert endpoint["port"] == _port_named(sidecar["ports"], endpoint["port"])["name"]
    assert endpoint["path"] == _scrape_job()["metrics_path"] and endpoint["path"] in GET_PATHS
    assert labels[monitor["spec"]["jobLabel"]] == _scrape_job()["job_name"]
