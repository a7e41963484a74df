"""Burn-rate tiers on a live Alertmanager running the rendered config (receivers pointed at a local webhook by the
devstack overlay): while a faster tier of an SLO fires, its slower tier is inhibited and never delivered; once the
faster one resolves, the slower one is delivered. The alerts posted carry the labels of the rendered rules."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.overlay import AlertmanagerOverlay, alertmanager_config, dump_yaml, load_yaml
from devstack.process import free_port
from devstack.webhook import Notification, WebhookReceiver
from generators import naming
from generators.__main__ import DEFAULT_OUT
from tests.conftest import require_tool
from tests.e2e.prometheus_api import get_json, poll

pytestmark = pytest.mark.e2e

CONFIG = DEFAULT_OUT / "alertmanager" / "alertmanager.yml"
RULES = DEFAULT_OUT / "prometheus" / "rules" / "featurestore.yml"
ALERT = "FeatureStoreAvailabilityBudgetBurn"
SCOPE = {"job": "featurestore", "namespace": "prod"}


@dataclass(frozen=True)
class Stack:
    url: str
    webhook: WebhookReceiver


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    binary = require_tool("prometheus-alertmanager")
    webhook = WebhookReceiver().start()
    timings = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    overlay = AlertmanagerOverlay(webhook.url, CONFIG.parent, **timings)
    config = tmp_path / "alertmanager.yml"
    dump_yaml(alertmanager_config(load_yaml(CONFIG), overlay), config, CONFIG)
    port = free_port()
    command = [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}"]
    command += [f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert poll(lambda: _ready(url) or process.poll() is not None, 30) and process.poll() is None
        yield Stack(url, webhook)
    finally:
        process.terminate()
        process.wait(timeout=10)
        webhook.stop()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def rendered_labels(tier: str) -> dict[str, str]:
    """The labels of the rendered burn alert of `tier`."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"] if rule.get("alert") == ALERT]
    found = next(rule for rule in rules if rule["labels"].get(naming.TIER_LABEL) == tier)
    return {"alertname": ALERT, **found["labels"]}


def post(url: str, *alerts: dict[str, str], resolved: bool = False) -> None:
    """One request, so every alert is in Alertmanager before its first notification."""
    posted: list[dict[str, Any]] = [{"labels": labels, "annotations": {"summary": "test."}} for labels in alerts]
    if resolved:
        for alert in posted:
            alert["endsAt"] = datetime.now(UTC).isoformat()
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", json.dumps(posted).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def inhibited(url: str, labels: dict[str, str]) -> bool:
    for alert in get_json(f"{url}/api/v2/alerts"):
        if alert["labels"] == labels:
            return bool(alert["status"]["inhibitedBy"])
    raise AssertionError(f"Alertmanager does not hold {labels}")


def delivered(labels: dict[str, str]) -> Any:
    return lambda n: any(a["labels"] == labels and a["status"] == "firing" for a in n.alerts)


def test_a_firing_faster_tier_holds_back_the_slower_one_until_it_resolves(stack: Stack) -> None:
    fast = {**rendered_labels("page_fast"), **SCOPE}
    slow = {**rendered_labels("page_slow"), **SCOPE}
    ticket = {**rendered_labels("ticket_slow"), **SCOPE}
    elsewhere = {**slow, "namespace": "staging"}  # the same tier of the same SLO in another namespace: not inhibited
    post(stack.url, fast, slow, ticket, elsewhere)

    first = stack.webhook.wait_for(delivered(elsewhere), 30)
    assert first is not None, [n.describe() for n in stack.webhook.notifications()]
    assert first.path_receiver == "pager"
    assert stack.webhook.wait_for(delivered(fast), 30) is not None
    assert inhibited(stack.url, slow) and inhibited(stack.url, ticket)
    assert not inhibited(stack.url, elsewhere) and not inhibited(stack.url, fast)
    held: list[Notification] = [n for n in stack.webhook.notifications() if delivered(slow)(n) or delivered(ticket)(n)]
    assert held == []

    post(stack.url, fast, resolved=True)
    late = stack.webhook.wait_for(delivered(slow), 30)
    assert late is not None, [n.describe() for n in stack.webhook.notifications()]
    assert late.path_receiver == "pager"
    assert inhibited(stack.url, ticket)  # page_slow, still firing, holds back the ticket tier
