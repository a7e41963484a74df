"""Every pod spec under rendered/kubernetes/, read against the Pod Security Standards' `restricted` profile (the
fields of kubernetes.io/docs/concepts/security/pod-security-standards) and this project's own rules on top: bounded
CPU, memory and emptyDirs, no service-account token, read-only root filesystems, fixed image tags.

No cluster runs here, so the profile's checks are spelt out below, one function each, over the same documents the
admission controller would see.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

KUBERNETES = REPO / "rendered" / "kubernetes"
# The volume types `restricted` admits.
ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"
}  # fmt: skip
OWN_IMAGES = ("featurestore-monitoring:", "training-worker:")
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload among `documents`."""
    for document in documents:
        spec = document.get("spec") or {}
        template = spec.get("jobTemplate", {}).get("spec", spec).get("template")
        if document.get("kind") == "Pod":
            yield f"Pod/{document['metadata']['name']}", spec
        elif template is not None:
            yield f"{document['kind']}/{document['metadata']['name']}", template["spec"]


def rendered_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        documents.extend(document for document in yaml.safe_load_all(path.read_text()) if document)
    return documents


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"], *pod.get("ephemeralContainers", [])]


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the `restricted` profile (latest) refuses in one pod spec, as readable lines; [] when it admits it."""
    found = []
    pod_context = pod.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"{field} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds - ALLOWED_VOLUMES)} not allowed")
    if pod_context.get("runAsUser") == 0:
        found.append("the pod runs as uid 0")
    for container in containers(pod):
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {capabilities['add']}")
        if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
            found.append(f"{name}: runAsNonRoot is not true (container or pod)")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{name}: runs as uid 0")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile is not RuntimeDefault (container or pod)")
        if any("hostPort" in port for port in container.get("ports", [])):
            found.append(f"{name}: hostPort")
    return found


def project_violations(pod: dict[str, Any]) -> list[str]:
    """This project's rules beyond `restricted`: what checkov asks for, and what keeps a pod off its node's toes."""
    found = []
    if pod.get("automountServiceAccountToken") is not False:
        found.append("automountServiceAccountToken is not false: no pod here calls the Kubernetes API")
    for volume in pod.get("volumes", []):
        if "emptyDir" in volume and "sizeLimit" not in volume["emptyDir"]:
            found.append(f"emptyDir {volume['name']} has no sizeLimit")
    for container in containers(pod):
        name = container["name"]
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            missing = {key for key in ("cpu", "memory") if not resources.get(section, {}).get(key)}
            if missing:
                found.append(f"{name}: no {section} for {sorted(missing)}")
        if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: the root filesystem is writable")
        image = container["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        if tag in ("", "latest"):
            found.append(f"{name}: image {image} has no fixed tag")
        if image.startswith(OWN_IMAGES) and tag != VERSION:
            found.append(f"{name}: image {image} is not tagged with the package version {VERSION}")
    return found


PODS = dict(pod_specs(rendered_documents()))


def test_the_rendered_workloads_are_the_service_the_pooler_and_the_training_job() -> None:
    assert sorted(PODS) == [
        "Deployment/featurestore-monitoring", "Deployment/featurestore-pgbouncer", "Job/featurestore-training"
    ]  # fmt: skip


@pytest.mark.parametrize("workload", sorted(PODS))
def test_the_pod_passes_the_restricted_pod_security_profile(workload: str) -> None:
    assert restricted_violations(PODS[workload]) == []


@pytest.mark.parametrize("workload", sorted(PODS))
def test_the_pod_bounds_its_resources_mounts_no_token_and_pins_its_images(workload: str) -> None:
    assert project_violations(PODS[workload]) == []


def _restricted_pod() -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "image": f"featurestore-monitoring:{VERSION}",
                "resources": {"requests": {"cpu": "1", "memory": "1Mi"}, "limits": {"cpu": "1", "memory": "1Mi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True,
                },
            }
        ],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}],
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda pod: pod["containers"][0]["securityContext"].pop("capabilities"), "capabilities do not drop ALL"),
        (lambda pod: pod["securityContext"].pop("seccompProfile"), "seccompProfile is not RuntimeDefault"),
        (lambda pod: pod["securityContext"].pop("runAsNonRoot"), "runAsNonRoot is not true"),
        (lambda pod: pod["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEsc"),
        (lambda pod: pod.update(hostNetwork=True), "hostNetwork is set"),
        (lambda pod: pod["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "['hostPath'] not allowed"),
    ],
    ids=["without drop ALL", "without seccomp", "without runAsNonRoot", "with escalation", "on the host", "hostPath"],
)
def test_the_restricted_reading_refuses_a_pod_that_misses_one_field(change: Any, expected: str) -> None:
    pod = _restricted_pod()
    assert restricted_violations(pod) == [] and project_violations(pod) == []
    change(pod)
    assert any(expected in line for line in restricted_violations(pod)), restricted_violations(pod)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda pod: pod["containers"][0]["resources"]["limits"].pop("cpu"), "no limits for ['cpu']"),
        (lambda pod: pod["volumes"][0]["emptyDir"].pop("sizeLimit"), "has no sizeLimit"),
        (lambda pod: pod.pop("automountServiceAccountToken"), "automountServiceAccountToken"),
        (lambda pod: pod["containers"][0].update(image="featurestore-monitoring:latest"), "no fixed tag"),
        (lambda pod: pod["containers"][0].update(image="featurestore-monitoring:0.0.0"), "not tagged with"),
    ],
    ids=["without a CPU limit", "an unbounded emptyDir", "with a token", "latest", "another version"],
)
def test_the_project_rules_refuse_a_pod_that_misses_one_field(change: Any, expected: str) -> None:
    pod = _restricted_pod()
    change(pod)
    assert any(expected in line for line in project_violations(pod)), project_violations(pod)
