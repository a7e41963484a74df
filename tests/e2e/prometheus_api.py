"""A small client of Prometheus's and the service's HTTP APIs for the end-to-end tests, with polling helpers."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ApiError(RuntimeError):
    """Prometheus answered with status `error` (a query that does not parse, a bad parameter...)."""


def get_json(url: str, timeout_s: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


def get_text(url: str, timeout_s: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body.decode()


def post_json(url: str, body: dict[str, Any], timeout_s: float = 30.0) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass(frozen=True)
class QueryResult:
    expr: str
    result_type: str
    result: list[dict[str, Any]]
    seconds: float  # wall time of the HTTP round trip

    @property
    def empty(self) -> bool:
        return self.result_type in ("vector", "matrix") and not self.result

    def values(self) -> list[float]:
        """The sample values of an instant vector (or a scalar)."""
        if self.result_type == "scalar":
            return [float(self.result[1])]  # type: ignore[call-overload]
        return [float(item["value"][1]) for item in self.result]


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            body = get_json(f"{self.url}/api/v1/{path}{query}")
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise ApiError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> QueryResult:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        start = time.perf_counter()
        data = self._api("query", **params)
        return QueryResult(expr, data["resultType"], data["result"], time.perf_counter() - start)

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._api("rules")["groups"]
        return groups

    def alert_rule(self, name: str) -> dict[str, Any] | None:
        """The alerting rule called `name` with its state (inactive/pending/firing) and active alerts."""
        for group in self.rule_groups():
            for rule in group["rules"]:
                if rule.get("type") == "alerting" and rule["name"] == name:
                    return dict(rule)
        return None

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._api("alerts")["alerts"]
        return alerts

    def targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self._api("targets", state="active")["activeTargets"]
        return targets

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's `label_values(<match>, <label>)` lists."""
        values: list[str] = self._api(f"label/{label}/values", **{"match[]": match})
        return values


def poll(check: Callable[[], T | None], timeout_s: float, interval_s: float = 0.25) -> T | None:
    """The first truthy value `check` returns within `timeout_s`, or None."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)
