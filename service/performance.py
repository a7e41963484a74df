"""GET /performance: throughput and latency quantiles per backend, lock waits, cache hits and the busiest symbols,
over the same trailing window as /slo (computed from bucket increases, as Prometheus would)."""

from __future__ import annotations

from typing import Any

from featurestore.metrics import (
    ADVISORY_LOCK_WAIT,
    BACKENDS,
    HITS,
    INSERT_ERRORS_TOTAL,
    LABEL_BACKEND,
    LABEL_ERROR,
    LABEL_SYMBOL,
    MANIFEST_INSERT_LATENCY,
    MANIFEST_READ_LATENCY,
    MISSES,
    POOL_ACTIVE,
    POOL_TOTAL,
    POOL_WAITING,
)
from service.window import Window

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def _rate(count: float, window: Window) -> float:
    return round(count / window.seconds, 3) if window.seconds > 0 else 0.0


def _quantiles(window: Window, histogram: str, matchers: dict[str, str] | None = None) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, q in QUANTILES.items():
        value = window.quantiles(q, histogram, matchers).get((), None)
        out[name] = None if value is None else round(value, 3)
    return out


def _gauge(window: Window, name: str) -> int:
    return int(sum(value for _, value in window.gauges(name)))


def _backend(window: Window, backend: str) -> dict[str, Any]:
    matchers = {LABEL_BACKEND: backend}
    inserts = window.increase_total(f"{MANIFEST_INSERT_LATENCY.name}_count", matchers)
    reads = window.increase_total(f"{MANIFEST_READ_LATENCY.name}_count", matchers)
    errors = window.increases(INSERT_ERRORS_TOTAL.name, matchers, by=(LABEL_ERROR,))
    return {
        "inserts": int(inserts),
        "inserts_per_s": _rate(inserts, window),
        "insert_latency_ms": _quantiles(window, MANIFEST_INSERT_LATENCY.name, matchers),
        "reads": int(reads),
        "reads_per_s": _rate(reads, window),
        "read_latency_ms": _quantiles(window, MANIFEST_READ_LATENCY.name, matchers),
        "insert_errors": {kind: int(count) for (kind,), count in sorted(errors.items()) if count > 0},
    }


def _top_symbols(window: Window, limit: int) -> list[dict[str, Any]]:
    by = (LABEL_SYMBOL,)
    inserts = window.increases(f"{MANIFEST_INSERT_LATENCY.name}_count", by=by)
    hits = window.increases(HITS.name, by=by)
    misses = window.increases(MISSES.name, by=by)
    activity = {
        symbol: inserts.get(symbol, 0.0) + hits.get(symbol, 0.0) + misses.get(symbol, 0.0)
        for symbol in {*inserts, *hits, *misses}
    }
    busiest = sorted((group for group, total in activity.items() if total > 0), key=lambda g: (-activity[g], g))
    rows = []
    for group in busiest[:limit]:
        p95 = window.quantiles(0.95, MANIFEST_INSERT_LATENCY.name, {LABEL_SYMBOL: group[0]}).get(())
        rows.append(
            {
                "symbol": group[0],
                "operations": int(activity[group]),
                "inserts": int(inserts.get(group, 0.0)),
                "inserts_per_s": _rate(inserts.get(group, 0.0), window),
                "insert_p95_ms": None if p95 is None else round(p95, 3),
                "hits": int(hits.get(group, 0.0)),
                "misses": int(misses.get(group, 0.0)),
            }
        )
    return rows


def summary(window: Window, *, backend_in_use: str, window_s: float, top: int) -> dict[str, Any]:
    """The body of GET /performance."""
    hits = window.increase_total(HITS.name)
    misses = window.increase_total(MISSES.name)
    lock_waits = window.increase_total(f"{ADVISORY_LOCK_WAIT.name}_count")
    return {
        "window_seconds": window_s,
        "measured_seconds": round(window.seconds, 3),
        "backend_in_use": backend_in_use,
        "backends": {backend: _backend(window, backend) for backend in BACKENDS},
        "lock_wait_ms": {"observations": int(lock_waits), **_quantiles(window, ADVISORY_LOCK_WAIT.name)},
        "cache": {
            "hits": int(hits),
            "misses": int(misses),
            "hit_ratio": round(hits / (hits + misses), 4) if hits + misses > 0 else None,
        },
        "pool": {
            "total": _gauge(window, POOL_TOTAL.name),
            "active": _gauge(window, POOL_ACTIVE.name),
            "waiting": _gauge(window, POOL_WAITING.name),
        },
        "top_symbols": _top_symbols(window, top),
    }
