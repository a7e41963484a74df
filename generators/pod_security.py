"""What every rendered pod spec shares to pass the Pod Security Standards' `restricted` profile (and checkov): a
non-root user with a high numeric uid, the runtime's default seccomp profile, no service-account token, and per
container no privilege escalation, no capabilities, a read-only root filesystem and bounded CPU and memory.

    pod_spec(containers=[...], volumes=[...])   securityContext + automountServiceAccountToken: false
    container(name=..., image=..., resources=Resources(...))   securityContext + resources + imagePullPolicy

Images carry fixed tags and are pulled `Always`: a node's cached copy of a tag is not proof that this pod may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

DISTRIBUTION = "featurestore-monitoring"
# The tag of our own images: the version in pyproject.toml, as installed (`make render` reinstalls when it changes).
VERSION = metadata.version(DISTRIBUTION)
RUN_AS = 10001  # the Dockerfile's non-root user; checkov asks for a uid >= 10000, clear of the host's accounts
SECCOMP = {"type": "RuntimeDefault"}


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container (Kubernetes quantities)."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": dict(SECCOMP),
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": dict(SECCOMP),
    }


def container(*, name: str, image: str, resources: Resources, **fields: Any) -> dict[str, Any]:
    """A container that passes `restricted`; `fields` are the rest of its spec (command, ports, probes, mounts)."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Always",
        **fields,
        "resources": resources.to_dict(),
        "securityContext": container_security_context(),
    }


def pod_spec(*, containers: list[dict[str, Any]], volumes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A pod spec whose pod needs no Kubernetes API token; `fields` are the rest (initContainers, restartPolicy)."""
    return {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        **fields,
        "containers": containers,
        "volumes": volumes,
    }


def empty_dir(name: str, size_limit: str, *, memory: bool = False) -> dict[str, Any]:
    """An emptyDir volume with a size limit: past it the kubelet evicts the pod instead of filling the node's disk
    (or, in memory, the node's RAM)."""
    source: dict[str, Any] = {"sizeLimit": size_limit}
    if memory:
        source["medium"] = "Memory"
    return {"name": name, "emptyDir": source}
