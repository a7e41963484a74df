"""Component health for GET /health and /health/ready, and the featurestore_health_check_status gauge.

Each database check runs in a worker thread (never on the event loop) under a time cap; a check that does not answer
in time is abandoned and reported `unhealthy` ("timed out"), and at most `health_check_threads` checks run at once, so
a hung database cannot pile up threads. Status words are the manifest's: healthy / degraded / unhealthy, and
not_configured for a component the install does not use.

- `overall_status` is the worst component, except that PostgreSQL unhealthy while the DuckDB fallback is healthy is
  `degraded`: inserts still land (in the fallback) and are replayed later.
- PostgreSQL not configured (no FEATURESTORE_PG_DSN) is `not_configured` with `details.configured: false`: a
  DuckDB-only install is a supported setup, not a fault, so it counts as healthy towards `overall_status`, but it
  does not claim a database it never checked is healthy. Its `postgresql` series of the gauge is absent (not 0), so
  the health alert does not fire on such an install.
- A pool with callers waiting, or with every connection lent out, is `degraded`. "Every connection" counts up to the
  pool's maximum size: psycopg's pool grows on demand, so its current size (`total`) all busy is not exhaustion yet.
- `metrics` is healthy while the background task keeps snapshotting the registry (the collect a scrape does), so
  a request does not pay for a collect of its own; `degraded`, naming the files, while the metrics folder holds
  files the last read skipped (the other processes' values are still served, and readiness does not change).
- The gauge is 0 only for `unhealthy`: `degraded` still serves requests, and the pool alerts cover exhaustion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread

from featurestore.instruments import Instruments
from featurestore.manifest.base import DEGRADED, HEALTHY, NOT_CONFIGURED, UNHEALTHY, ComponentHealth
from featurestore.metrics import COMPONENT_DUCKDB, COMPONENT_METRICS, COMPONENT_POSTGRESQL
from service.store_handle import ServiceStore
from service.window import SampleRing

SEVERITY = {HEALTHY: 0, NOT_CONFIGURED: 0, DEGRADED: 1, UNHEALTHY: 2}
# Names of the components in the JSON body (the guide's), by the gauge's `component` label.
COMPONENT_KEYS = {
    COMPONENT_POSTGRESQL: "postgresql_manifest",
    COMPONENT_DUCKDB: "duckdb_fallback",
    COMPONENT_METRICS: "metrics",
}


def iso_utc(moment: datetime) -> str:
    """`2026-01-15T10:30:00.000Z`, the guide's timestamp form."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda status: SEVERITY.get(status, SEVERITY[UNHEALTHY]), default=HEALTHY)


@dataclass(frozen=True)
class HealthReport:
    components: dict[str, ComponentHealth]  # by the gauge's component label
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def overall_status(self) -> str:
        # A component the install does not use is no fault: the overall status is one of the three words.
        statuses = {
            name: HEALTHY if health.status == NOT_CONFIGURED else health.status
            for name, health in self.components.items()
        }
        if statuses.get(COMPONENT_POSTGRESQL) == UNHEALTHY and statuses.get(COMPONENT_DUCKDB) == HEALTHY:
            statuses[COMPONENT_POSTGRESQL] = DEGRADED
        return worst(list(statuses.values()))

    def reasons(self) -> list[str]:
        """One line per component that is degraded or unhealthy."""
        lines = []
        for name, health in self.components.items():
            if SEVERITY.get(health.status, SEVERITY[UNHEALTHY]) > SEVERITY[HEALTHY]:
                reason = health.details.get("reason") or health.details.get("error") or "no details"
                lines.append(f"{COMPONENT_KEYS.get(name, name)} is {health.status}: {reason}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": iso_utc(self.checked_at),
            "overall_status": self.overall_status,
            "components": {
                COMPONENT_KEYS.get(name, name): {"status": health.status, "details": health.details}
                for name, health in self.components.items()
            },
        }


class HealthChecker:
    """Runs the checks of one store and sets the health gauge from their results."""

    def __init__(
        self,
        store: ServiceStore,
        instruments: Instruments,
        *,
        pg_configured: bool,
        ring: SampleRing,
        snapshot_interval_s: float,
        timeout_s: float,
        max_threads: int,
        skipped_files: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.store = store
        self.instruments = instruments
        self.pg_configured = pg_configured
        self.ring = ring
        # A few missed snapshots are load; many are a dead task or a registry that no longer collects.
        self.snapshot_deadline_s = 3 * snapshot_interval_s + 2.0
        self.timeout_s = timeout_s
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._skipped_files = skipped_files

    async def check(self) -> HealthReport:
        store_health: object
        try:
            with anyio.fail_after(self.timeout_s):
                store_health = await anyio.to_thread.run_sync(
                    self.store.health, abandon_on_cancel=True, limiter=self._limiter
                )
        except TimeoutError:
            store_health = TimeoutError(f"the check did not answer within {self.timeout_s:g} s")
        except Exception as exc:
            store_health = exc
        components = {
            COMPONENT_POSTGRESQL: self._postgresql(store_health),
            COMPONENT_DUCKDB: _component(store_health, COMPONENT_DUCKDB),
            COMPONENT_METRICS: self._metrics(),
        }
        self._set_gauges(components)
        return HealthReport(components)

    def _metrics(self) -> ComponentHealth:
        """Healthy while the snapshot task keeps collecting the registry (the same collect a scrape does)."""
        age = self.ring.newest_age()
        details: dict[str, object] = {"series": len(self.ring.index), "last_snapshot_age_s": age and round(age, 3)}
        if age is None or age > self.snapshot_deadline_s:
            details["error"] = f"no registry snapshot for {age if age is None else round(age, 1)} s"
            return ComponentHealth(UNHEALTHY, details)
        skipped = self._skipped_files()
        if skipped:
            details["skipped_files"] = skipped
            details["reason"] = f"{len(skipped)} metrics file(s) unreadable, their values not served: " + ", ".join(
                sorted(skipped)
            )
            return ComponentHealth(DEGRADED, details)
        return ComponentHealth(HEALTHY, details)

    def _postgresql(self, store_health: object) -> ComponentHealth:
        if not self.pg_configured:
            return ComponentHealth(
                NOT_CONFIGURED,
                {
                    "configured": False,
                    "connection": False,
                    "note": "PostgreSQL is not configured (FEATURESTORE_PG_DSN unset): the manifest is DuckDB only",
                },
            )
        found = _component(store_health, COMPONENT_POSTGRESQL)
        details: dict[str, object] = {"configured": True, "connection": found.healthy, **found.details}
        details.setdefault("lock_stats", {"total_advisory_locks": None})  # unknown while the server does not answer
        return ComponentHealth(found.status, details)

    def _set_gauges(self, components: dict[str, ComponentHealth]) -> None:
        for name, health in components.items():
            if name == COMPONENT_POSTGRESQL and not self.pg_configured:
                continue
            self.instruments.set_health(name, health.serving)
        if not self.pg_configured:
            self.instruments.forget_health(COMPONENT_POSTGRESQL)


def _describe(result: object) -> str:
    if isinstance(result, BaseException):
        return str(result) or type(result).__name__
    return f"unexpected result {type(result).__name__}"


def _component(store_health: object, name: str) -> ComponentHealth:
    if isinstance(store_health, dict) and isinstance(store_health.get(name), ComponentHealth):
        found: ComponentHealth = store_health[name]
        return found
    return ComponentHealth(UNHEALTHY, {"connection": False, "error": _describe(store_health)})
