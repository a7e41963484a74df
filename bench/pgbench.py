"""pgbench running the publish's own statement: PostgreSQL's speed for it with a C client and nothing else around it.

The script is production's manifest insert (`manifest_insert_v2` of featurestore/manifest/pg_schema.py: the symbol's
transaction advisory lock, the version, the insert, the commit, in one statement), prepared as psycopg prepares it,
with a random symbol among `symbols` (its advisory key is its number: one key per symbol, as advisory_key gives) and
a new key each time (a random 63-bit number hashed into the params digest), so every transaction inserts a row.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from featurestore.loadtest.config import SYMBOL_PREFIX
from featurestore.manifest.pg_schema import INSERT_FUNCTION

FEATURE = "floor"
FRAME_BYTES = 550  # about the load generator's 64-row frame
_TPS = re.compile(r"^tps = ([\d.]+)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([\d.]+) ms", re.MULTILINE)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)
EXIT_WAIT_S = 30.0
_DONE = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)


def insert_script(symbols: int) -> str:
    """The pgbench script: one production insert per transaction, on a random symbol, always a new key."""
    return (
        f"\\set s random(0, {symbols - 1})\n"
        "\\set k random(1, 9223372036854775806)\n"
        f"SELECT * FROM {INSERT_FUNCTION}(:s, false, '{SYMBOL_PREFIX}' || lpad(:s::text, 3, '0'), '{FEATURE}', "
        f"md5(:k::text), 'frames/' || md5(:k::text), 64, {FRAME_BYTES}, md5(:k::text) || md5(:s::text), now());\n"
    )


@dataclass(frozen=True)
class PgbenchRun:
    """What one pgbench run printed: transactions per second, mean latency, transactions done and failed."""

    tps: float
    latency_avg_ms: float
    transactions: int
    failed: int

    @classmethod
    def parse(cls, output: str) -> PgbenchRun:
        tps, latency, done = _TPS.search(output), _LATENCY.search(output), _DONE.search(output)
        if tps is None or latency is None or done is None:
            raise RuntimeError(f"pgbench printed no result:\n{output[-2000:]}")
        failed = _FAILED.search(output)
        return cls(float(tps[1]), float(latency[1]), int(done[1]), int(failed[1]) if failed else 0)


def pgbench_path() -> str | None:
    return shutil.which("pgbench") or next(
        (str(path) for path in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)), None
    )


def run_pgbench(dsn: str, *, clients: int, duration_s: float, symbols: int) -> PgbenchRun:
    """pgbench on `dsn` (whose search_path holds the manifest) with `clients` connections for `duration_s`."""
    binary = pgbench_path()
    if binary is None:
        raise RuntimeError("pgbench is not installed (apt-get install postgresql-client)")
    threads = max(1, min(clients, os.cpu_count() or 1))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", prefix="floor-") as script:
        script.write(insert_script(symbols))
        script.flush()
        command = [binary, "--no-vacuum", "--protocol=prepared", f"--client={clients}", f"--jobs={threads}"]
        command += [f"--time={max(1, round(duration_s))}", f"--file={script.name}", dsn]
        # A name of this run's own, so the wait below is for these sessions and not another pgbench's.
        application = f"pgbench-floor-{os.getpid()}"
        environment = {**os.environ, "PGAPPNAME": application}
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=duration_s + 120, env=environment
        )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    wait_for_exit(dsn, application)
    return PgbenchRun.parse(done.stdout)


def wait_for_exit(dsn: str, application: str, timeout_s: float = EXIT_WAIT_S) -> None:
    """Return once the server sessions named `application` are gone: a backend outlives its client's exit for a
    moment, and the workers that follow need every connection pgbench held."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
                [application],
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.05)
    raise RuntimeError(f"pgbench's sessions were still open {timeout_s:g} s after it ended")
