"""More concurrent publishers than pooled connections: the ones left without a connection get PoolTimeout after the
configured wait (never a hang), the pool gauges show the saturation, and health says degraded meanwhile."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from bench.held_lock import LockScope, open_held_store
from featurestore import PoolTimeout, metrics
from featurestore.instruments import build as build_instruments
from featurestore.manifest.base import DEGRADED, HEALTHY
from featurestore.metrics import BACKEND_POSTGRESQL, COMPONENT_POSTGRESQL, INSERT_ERRORS_TOTAL, POOL_ACTIVE, POOL_TOTAL
from featurestore.metrics import POOL_WAITING as POOL_WAITING_SPEC
from tests.reliability import workers

pytestmark = [pytest.mark.fault, pytest.mark.postgres]

POOL_SIZE = 2
CALLERS = 6
POOL_TIMEOUT_S = 1.5
HOLD_MS = 4000.0  # the callers that got a connection keep it this long, inside the lock
HARD_DEADLINE_S = POOL_TIMEOUT_S + 30.0  # hang detection only


@dataclass
class Call:
    elapsed_s: float = 0.0
    error: BaseException | None = None
    done: bool = False


def test_callers_beyond_the_pool_get_a_pool_timeout_in_the_configured_time_while_gauges_and_health_show_it(
    throwaway_dsn: str, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    registry = CollectorRegistry()
    settings = workers.settings(
        throwaway_dsn, cache_dir, pool_min_size=POOL_SIZE, pool_max_size=POOL_SIZE, pool_timeout_s=POOL_TIMEOUT_S
    )
    calls = [Call() for _ in range(CALLERS)]
    barrier = threading.Barrier(CALLERS + 1)

    # The benchmark's adapter keeps each connection busy inside the lock (production has no such knob).
    with open_held_store(settings, build_instruments(registry), LockScope.SYMBOL, HOLD_MS) as store:
        # Right after open the pool is still opening its connections in the background: none is lent out yet.
        fresh = store.pool_stats()
        fresh_gauge = registry.get_sample_value(POOL_ACTIVE.name)

        def publish(index: int) -> None:
            call = calls[index]
            table = workers.frame(index)
            barrier.wait()
            began = time.monotonic()
            try:
                store.publish(f"POOL{index}", workers.FEATURE, {"caller": index}, table)
            except BaseException as exc:  # recorded and asserted on below
                call.error = exc
            call.elapsed_s = time.monotonic() - began
            call.done = True

        threads = [threading.Thread(target=publish, args=(index,), daemon=True) for index in range(CALLERS)]
        for thread in threads:
            thread.start()
        barrier.wait()
        # Saturated as soon as every caller reached the pool; sample before the first waiter gives up.
        saturation_limit = time.monotonic() + POOL_TIMEOUT_S * 2 / 3
        stats = store.pool_stats()
        while stats["waiting"] < CALLERS - POOL_SIZE and time.monotonic() < saturation_limit:
            time.sleep(0.02)
            stats = store.pool_stats()
        gauges = {
            spec.name: registry.get_sample_value(spec.name) for spec in (POOL_TOTAL, POOL_ACTIVE, POOL_WAITING_SPEC)
        }
        health_saturated = store.health()[COMPONENT_POSTGRESQL]

        deadline = time.monotonic() + HARD_DEADLINE_S
        for thread in threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        hung = [index for index, call in enumerate(calls) if not call.done]
        stats_after = store.pool_stats()
        health_after = store.health()[COMPONENT_POSTGRESQL].status

    timeouts = [call for call in calls if isinstance(call.error, PoolTimeout)]
    served = [call for call in calls if call.error is None and call.done]
    pool_timeout_errors = registry.get_sample_value(
        INSERT_ERRORS_TOTAL.name, {metrics.LABEL_BACKEND: BACKEND_POSTGRESQL, metrics.LABEL_ERROR: "pool_timeout"}
    )
    message = str(timeouts[0].error) if timeouts else ""
    print(
        f"\npool exhaustion: pool {POOL_SIZE}, {CALLERS} callers, pool_timeout_s {POOL_TIMEOUT_S}: "
        f"{len(served)} served in {[round(call.elapsed_s, 2) for call in served]} s, {len(timeouts)} PoolTimeout after "
        f"{[round(call.elapsed_s, 2) for call in timeouts]} s; pool_stats while saturated {stats}, gauges {gauges}; "
        f"health {health_saturated.status} {health_saturated.details}; after: {stats_after}, {health_after}; "
        f"message: {message!r}"
    )

    assert fresh == {"total": POOL_SIZE, "active": 0, "waiting": 0}, "a fresh pool read as busy"
    assert fresh_gauge == 0
    assert hung == [], f"callers still blocked {HARD_DEADLINE_S:.0f} s later: {hung}"
    assert [call.error for call in calls if call.error is not None and not isinstance(call.error, PoolTimeout)] == []
    assert len(served) == POOL_SIZE
    assert len(timeouts) == CALLERS - POOL_SIZE
    assert all(call.elapsed_s >= POOL_TIMEOUT_S * 0.9 for call in timeouts), "a PoolTimeout came before the timeout"
    assert "pool" in message.lower() and f"{POOL_TIMEOUT_S}" in message, message
    assert stats["total"] == stats["active"] == POOL_SIZE
    assert stats["waiting"] > 0
    assert gauges[POOL_TOTAL.name] == gauges[POOL_ACTIVE.name] == POOL_SIZE
    assert (gauges[POOL_WAITING_SPEC.name] or 0) > 0
    assert health_saturated.status == DEGRADED
    assert pool_timeout_errors == CALLERS - POOL_SIZE
    assert stats_after["active"] == stats_after["waiting"] == 0
    assert health_after == HEALTHY
