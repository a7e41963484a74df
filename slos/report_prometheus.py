"""The SLO report's reader of the Prometheus HTTP API: `query_range` only, through the standard library.

Every failure is a `PrometheusError` whose message is one line a reader can act on: a URL that is not http(s), a
server that does not answer, an answer that is not the API's JSON, or the API's own error (a bad query, a step that
asks for too many points).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT_S = 30.0


class PrometheusError(Exception):
    """Prometheus could not be read: one line that names the URL and the cause."""


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels (without `__name__`) and its (unix time, value) points."""

    labels: tuple[tuple[str, str], ...]
    points: tuple[tuple[float, float], ...]

    def legend(self) -> str:
        """`namespace=prod, job=featurestore`: the labels that tell the series of one record apart."""
        return ", ".join(f"{name}={value}" for name, value in self.labels) or "(no labels)"


@dataclass(frozen=True)
class TimeRange:
    """The unix start and end of the report and the resolution step, in seconds."""

    start: float
    end: float
    step: float


def base_url(url: str) -> str:
    """`url` without a trailing slash, or PrometheusError when it is not an http(s) URL with a host."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise PrometheusError(f"bad Prometheus URL {url!r}: give http(s)://host:port, e.g. http://127.0.0.1:9090")
    try:
        parsed.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise PrometheusError(f"bad Prometheus URL {url!r}: {exc}") from None
    return url.rstrip("/")


def selector(record: str, labels: dict[str, str]) -> str:
    """`record{name="value"}` with every value quoted as PromQL reads a string (backslash and quote escaped)."""
    matchers = ",".join(f"{name}={json.dumps(value)}" for name, value in sorted(labels.items()))
    return f"{record}{{{matchers}}}"


class PrometheusReader:
    """Range queries against one Prometheus; `url` is checked when the reader is made."""

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = base_url(url)
        self.timeout_s = timeout_s

    def query_range(self, query: str, span: TimeRange) -> tuple[Series, ...]:
        """Every series `query` returns over `span`, sorted by labels; NaN points are dropped."""
        params = {"query": query, "start": f"{span.start:.3f}", "end": f"{span.end:.3f}", "step": f"{span.step:g}"}
        body = self._get("/api/v1/query_range", params)
        result = body.get("data", {}).get("result") if isinstance(body.get("data"), dict) else None
        if not isinstance(result, list):
            raise PrometheusError(f"Prometheus at {self.url} answered without data.result for {query}")
        return tuple(sorted((_series(item) for item in result), key=lambda series: series.labels))

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if not _api_error(raw):
                raise PrometheusError(f"Prometheus at {self.url} answered HTTP {exc.code} on {path}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {reason}") from None
        problem = _api_error(raw)
        if problem:
            raise PrometheusError(f"Prometheus at {self.url} refused the query {params.get('query')}: {problem}")
        return _json(raw, self.url)


def _json(raw: bytes, url: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise PrometheusError(f"{url} did not answer with the Prometheus API's JSON: is it a Prometheus?") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        raise PrometheusError(f"{url} did not answer with the Prometheus API's JSON: is it a Prometheus?")
    return body


def _api_error(raw: bytes) -> str:
    """The API's `errorType: error` of an error answer, or '' when the answer is none."""
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    if isinstance(body, dict) and body.get("status") == "error":
        return f"{body.get('errorType', 'error')}: {body.get('error', '')}"
    return ""


def _series(item: Any) -> Series:
    metric = item.get("metric", {}) if isinstance(item, dict) else {}
    labels = tuple(sorted((str(k), str(v)) for k, v in metric.items() if k != "__name__"))
    points = []
    for stamp, text in item.get("values", []) if isinstance(item, dict) else []:
        value = float(text)
        if value == value:  # NaN: a ratio over no events says nothing
            points.append((float(stamp), value))
    return Series(labels, tuple(points))
