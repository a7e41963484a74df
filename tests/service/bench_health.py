"""Benchmark, not a test: GET /health latency of a real `python -m service` while a 64-worker load runs on PostgreSQL.

    .venv/bin/python -m tests.service.bench_health                       # load inside the service (POST /test/load)
    .venv/bin/python -m tests.service.bench_health --load processes      # 64 worker processes beside it (CLI)

The service runs in a scratch schema of FEATURESTORE_TEST_PG_DSN (dropped afterwards) on a free loopback port.
/health is probed one request at a time, as a Kubernetes probe or an on-call engineer's curl would, first idle, then
while the load runs; each probe is followed by a /health/live, whose latency is the floor the machine's load sets.
The guide's goal is a /health p99 under 100 ms. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from featurestore.loadtest.result import percentile
from tests.conftest import DEFAULT_TEST_PG_DSN, REPO, dsn_with_schema
from tests.service.conftest import API
from tests.service.test_health import closed_port


def summary(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 2),
        "p95_ms": round(percentile(ordered, 95), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2) if ordered else None,
    }


def probe(
    client: httpx.Client, base: str, seconds: float, until: subprocess.Popen[str] | None = None
) -> dict[str, Any]:
    """Sequential GET /health for `seconds` (or until `until` exits), each followed by a GET /health/live: the
    latter touches no database, so it is the floor the machine's load alone puts under any request."""
    health: list[float] = []
    live: list[float] = []
    answers: dict[str, int] = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end and (until is None or until.poll() is None):
        start = time.perf_counter()
        response = client.get(f"{base}/health")
        health.append((time.perf_counter() - start) * 1000.0)
        word = f"{response.status_code} {response.json().get('overall_status')}"
        answers[word] = answers.get(word, 0) + 1
        start = time.perf_counter()
        client.get(f"{base}/health/live")
        live.append((time.perf_counter() - start) * 1000.0)
    return {"health": {**summary(health), "answers": answers}, "live_floor": summary(live)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("FEATURESTORE_TEST_PG_DSN", DEFAULT_TEST_PG_DSN))
    parser.add_argument("--load", choices=["in-service", "processes"], default="in-service")
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle probing first")
    args = parser.parse_args()

    schema = f"bench_health_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    port = closed_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-health-"))
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("SERVICE_", "FEATURESTORE_"))}
    environ.update(
        FEATURESTORE_PG_DSN=dsn_with_schema(args.dsn, schema),
        FEATURESTORE_CACHE_DIR=str(folder / "cache"),
        SERVICE_PORT=str(port),
        SERVICE_LOG_LEVEL="warning",
    )
    service = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=environ, text=True)
    base = f"http://127.0.0.1:{port}{API}"
    report: dict[str, Any] = {"load": args.load, "workers": args.workers, "duration_s": args.duration}
    try:
        with httpx.Client(timeout=30) as client:
            for _ in range(600):
                try:
                    if client.get(f"{base}/health/live").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            probe(client, base, 1.0)  # warm-up
            report["idle"] = probe(client, base, args.idle)
            if args.load == "in-service":
                body = {"workers": args.workers, "duration_seconds": args.duration, "wait": False}
                started = client.post(f"{base}/test/load", json=body)
                started.raise_for_status()
                time.sleep(1.0)  # let the workers warm up and pass the start barrier
                report["under_load"] = probe(client, base, args.duration - 1.5)
                while (run := client.get(f"{base}/test/load").json())["status"] == "running":
                    time.sleep(0.5)
                result = run.get("result") or {}
            else:
                command = [
                    sys.executable, "-m", "featurestore.loadtest", "--backend", "postgresql", "--dsn", args.dsn,
                    "--workers", str(args.workers), "--processes", "--duration", str(args.duration), "--json",
                ]  # fmt: skip
                loader = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                assert loader.stderr is not None
                # The run's first progress line comes once all 64 processes have passed the start barrier.
                said = []
                for line in loader.stderr:
                    said.append(line)
                    if line.startswith("loadtest "):
                        break
                report["under_load"] = probe(client, base, args.duration, until=loader)
                output, errors = loader.communicate(timeout=300)
                if loader.returncode != 0:
                    raise SystemExit(f"the load generator failed:\n{''.join(said)}{errors}")
                result = json.loads(output)
            report["load_result"] = {
                key: result.get(key)
                for key in ("backend", "operations", "errors", "throughput_ops_s", "insert_latency_ms")
            }
    finally:
        service.send_signal(signal.SIGINT)
        service.wait(timeout=60)
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
