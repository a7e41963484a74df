from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.service.conftest import API
from tests.service.test_health import closed_port


def test_help_explains_the_flags_and_the_environment() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "service", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert run.returncode == 0, run.stderr
    for word in ("--host", "--port", "SERVICE_HOST", "SERVICE_PORT", "SERVICE_ADMIN_TOKEN", "FEATURESTORE_PG_DSN",
                 "FEATURESTORE_CACHE_DIR"):  # fmt: skip
        assert word in run.stdout


@contextmanager
def served(
    tmp_path: Path, *args: str, cwd: Path = REPO, cache_dir: bool = True, **env: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m service` on a free loopback port until the block ends (SIGINT, then wait); HOME is `tmp_path`,
    and the cache folder `tmp_path/cache` unless `cache_dir` is False (the default ~/.feature_cache then)."""
    port = closed_port()
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("SERVICE_", "FEATURESTORE_"))}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ.update(HOME=str(tmp_path), SERVICE_PORT=str(port), **env)
    if cache_dir:
        environ["FEATURESTORE_CACHE_DIR"] = str(tmp_path / "cache")
    log = (tmp_path / "service.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", *args],
        cwd=cwd,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "service.log").read_text()
            try:
                if httpx.get(f"{base}{API}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not answer within 60 s"
            time.sleep(0.2)
        yield base, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_python_m_service_answers_every_endpoint_without_postgresql(tmp_path: Path) -> None:
    with served(tmp_path) as (base, process):
        for path in ("health", "health/ready", "health/live", "slo", "performance", "metrics", "test/load"):
            response = httpx.get(f"{base}{API}/{path}", timeout=30)
            assert response.status_code == 200, (path, response.text)
        load = httpx.post(f"{base}{API}/test/load", json={"workers": 1, "duration_seconds": 1}, timeout=60)
        assert load.status_code == 200, load.text
        assert load.json()["result"]["backend"] == "duckdb"
        health = httpx.get(f"{base}{API}/health", timeout=30).json()
        assert health["components"]["postgresql_manifest"]["details"]["configured"] is False
    assert process.returncode == 0
    assert (tmp_path / "cache" / "manifest.duckdb").exists()


def test_the_service_log_never_shows_the_dsn_password(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{closed_port()}/postgres"
    with served(tmp_path, "--log-level", "debug", FEATURESTORE_PG_DSN=dsn, FEATURESTORE_CONNECT_TIMEOUT_S="1") as (
        base,
        _,
    ):
        body = httpx.get(f"{base}{API}/health", timeout=30).json()
        assert body["overall_status"] == "degraded"
    text = (tmp_path / "service.log").read_text()
    assert "Uvicorn running" in text or "Application startup complete" in text
    assert "s3cret-pw" not in text


def start_fails(tmp_path: Path, *args: str, **env: str) -> str:
    """Run `python -m service` expecting a startup failure: exit status 2, no traceback; its one problem line."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("SERVICE_", "FEATURESTORE_"))}
    environ.update(HOME=str(tmp_path), FEATURESTORE_CACHE_DIR=str(tmp_path / "cache"), SERVICE_PORT="0")
    environ.update(env)
    run = subprocess.run(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 2, output
    assert "Traceback" not in output
    assert "ERROR" not in output
    problems = [line for line in output.splitlines() if line.startswith("python -m service: ")]
    assert len(problems) == 1, output
    return problems[0]


def test_a_taken_port_stops_the_start_with_one_line_naming_the_port_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = start_fails(tmp_path, "--port", str(port))
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "--port" in line and "SERVICE_PORT" in line
    assert not (tmp_path / "cache" / "manifest.duckdb").exists()  # stopped before the store was opened


def test_a_manifest_held_by_another_process_does_not_stop_the_start_and_a_load_run_names_its_pid(
    tmp_path: Path,
) -> None:
    # The embedded default: the service does not hold manifest.duckdb, so a training process may.
    (tmp_path / "cache").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", str(tmp_path / "cache" / "manifest.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with served(tmp_path) as (base, _):
            assert httpx.get(f"{base}{API}/health/ready", timeout=30).status_code == 200
            load = httpx.post(f"{base}{API}/test/load", json={"workers": 1, "duration_seconds": 1}, timeout=60)
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    assert load.status_code == 503
    assert f"held by process PID {holder.pid}" in load.json()["error"]


def test_unreachable_postgresql_stops_the_start_when_required(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres:s3cret-pw@127.0.0.1:{closed_port()}/postgres"
    line = start_fails(tmp_path, "--require-postgresql", FEATURESTORE_PG_DSN=dsn, FEATURESTORE_CONNECT_TIMEOUT_S="1")
    assert "does not answer" in line and "FEATURESTORE_PG_DSN" in line and "SERVICE_REQUIRE_POSTGRESQL" in line
    assert "s3cret-pw" not in line
    line = start_fails(tmp_path, SERVICE_REQUIRE_POSTGRESQL="true")
    assert "FEATURESTORE_PG_DSN is not" in line


def test_a_bad_setting_stops_the_start_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    assert "SERVICE_PORT='eighty'" in start_fails(tmp_path, SERVICE_PORT="eighty")
    assert "FEATURESTORE_POOL_MAX_SIZE='0'" in start_fails(tmp_path, FEATURESTORE_POOL_MAX_SIZE="0")
    assert "--port=70000" in start_fails(tmp_path, "--port", "70000")


def test_a_set_but_empty_admin_token_stops_the_start(tmp_path: Path) -> None:
    line = start_fails(tmp_path, SERVICE_ADMIN_TOKEN="")
    assert "SERVICE_ADMIN_TOKEN: Value error, is set but empty or blank" in line
    assert "SERVICE_ADMIN_TOKEN: Value error" in start_fails(tmp_path, SERVICE_ADMIN_TOKEN="   ")


def test_the_service_says_where_it_serves_once_started(tmp_path: Path) -> None:
    with served(tmp_path) as (base, _):
        text = (tmp_path / "service.log").read_text()
        assert f"serving on {base}/ (GET / lists every endpoint" in text
