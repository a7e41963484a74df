"""The rendered inhibition on a live Alertmanager: a page mutes the ticket of the same SLO on the same pod, in the same
cluster, only."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generators.__main__ import DEFAULT_OUT
from tests.conftest import require_tool

pytestmark = pytest.mark.promtool

CONFIG = DEFAULT_OUT / "alertmanager" / "alertmanager.yml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = require_tool("prometheus-alertmanager")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={CONFIG}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", json.dumps(alerts).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def states(url: str) -> dict[tuple[str, str], list[str]]:
    """(alertname, instance, or cluster when set) -> the fingerprints of the alerts that inhibit it."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        found = json.loads(response.read())
    return {
        (a["labels"]["alertname"], a["labels"].get("cluster", a["labels"]["instance"])): a["status"]["inhibitedBy"]
        for a in found
    }


def alert(name: str, severity: str, instance: str, cluster: str | None = None) -> dict[str, Any]:
    labels = {
        "alertname": name,
        "severity": severity,
        "slo": "pool_utilization",
        "job": "featurestore",
        "namespace": "prod",
        "instance": instance,
    }
    if cluster is not None:
        labels["cluster"] = cluster
    return {"labels": labels, "annotations": {"summary": "test."}}


def wait_inhibited(url: str, key: tuple[str, str], count: int) -> dict[tuple[str, str], list[str]]:
    deadline = time.monotonic() + 30
    while True:
        found = states(url)
        if len(found) == count and found.get(key):
            return found
        assert time.monotonic() < deadline, f"{key} never got inhibited: {found}"
        time.sleep(0.2)


def test_an_exhausted_pool_on_one_pod_mutes_that_pods_utilization_ticket_only(alertmanager: str) -> None:
    post(
        alertmanager,
        [
            alert("PostgreSQLPoolExhausted", "critical", "pod-a:8000"),
            alert("FeatureStorePoolUtilizationHigh", "warning", "pod-a:8000"),
            alert("FeatureStorePoolUtilizationHigh", "warning", "pod-b:8000"),
        ],
    )
    found = wait_inhibited(alertmanager, ("FeatureStorePoolUtilizationHigh", "pod-a:8000"), 3)
    assert found[("FeatureStorePoolUtilizationHigh", "pod-b:8000")] == []
    assert found[("PostgreSQLPoolExhausted", "pod-a:8000")] == []


def test_a_page_in_one_cluster_mutes_the_ticket_of_that_cluster_only(alertmanager: str) -> None:
    """The rules of many clusters (docs/clusters.md) send one SLO's alerts from every cluster, with `cluster`."""
    post(
        alertmanager,
        [
            alert("PostgreSQLPoolExhausted", "critical", "pod-a:8000", cluster="eu"),
            alert("FeatureStorePoolUtilizationHigh", "warning", "pod-a:8000", cluster="eu"),
            alert("FeatureStorePoolUtilizationHigh", "warning", "pod-a:8000", cluster="us"),
        ],
    )
    found = wait_inhibited(alertmanager, ("FeatureStorePoolUtilizationHigh", "eu"), 3)
    assert found[("FeatureStorePoolUtilizationHigh", "us")] == []
