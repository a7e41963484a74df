"""The pooler's rendered bundle: its resources agree with each other and with the alert, and Debian's PgBouncer runs
the rendered pgbouncer.ini in transaction mode with the sizes docs/deployment.md states."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from bench.pgbouncer import RUN_AS, pgbouncer_binary
from generators import pooler
from generators.__main__ import DEFAULT_OUT
from tests.conftest import require_tool

K8S = DEFAULT_OUT / "kubernetes"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((K8S / name).read_text())
    assert isinstance(data, dict)
    return data


def test_the_pooler_service_monitor_and_deployment_agree_and_the_alert_reads_the_exporters_metric() -> None:
    deployment, service = load("pgbouncer-deployment.yaml"), load("pgbouncer-service.yaml")
    monitor = load("pgbouncer-servicemonitor.yaml")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "pgbouncer"  # the alert test's job label
    pgbouncer, exporter = deployment["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    assert ports == {
        pgbouncer["ports"][0]["name"]: pgbouncer["ports"][0]["containerPort"],
        exporter["ports"][0]["name"]: exporter["ports"][0]["containerPort"],
    }
    assert monitor["spec"]["endpoints"][0]["port"] == exporter["ports"][0]["name"]
    rules = yaml.safe_load((DEFAULT_OUT / "prometheus" / "rules" / "pgbouncer.yml").read_text())
    (rule,) = rules["groups"][0]["rules"]
    assert rule["alert"] == "PgBouncerClientWaitHigh" and "pgbouncer_pools_client_maxwait_seconds" in rule["expr"]
    assert load("prometheusrule-pgbouncer.yaml")["spec"] == rules
    assert (
        "rules/pgbouncer.yml"
        in yaml.safe_load((DEFAULT_OUT / "prometheus" / "prometheus.yml").read_text())["rule_files"]
    )


def test_the_replicas_server_pools_stay_well_below_postgresqls_default_max_connections() -> None:
    deployment = load("pgbouncer-deployment.yaml")
    ini = load("pgbouncer-configmap.yaml")["data"]["pgbouncer.ini"]
    settings = dict(
        line.split(" = ", 1) for line in ini.splitlines() if " = " in line and not line.startswith("featurestore")
    )
    assert settings["pool_mode"] == "transaction"
    assert int(settings["max_db_connections"]) == int(settings["default_pool_size"])
    assert deployment["spec"]["replicas"] * int(settings["default_pool_size"]) <= 100 // 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_debians_pgbouncer_runs_the_rendered_ini_in_transaction_mode() -> None:
    binary = pgbouncer_binary() or require_tool("pgbouncer")
    # Not pytest's tmp_path: under root its parents are closed to the postgres user PgBouncer switches to.
    with tempfile.TemporaryDirectory(prefix="featurestore-pgbouncer-ini-") as folder:
        config = _run_rendered_ini(binary, Path(folder))
    assert config["pool_mode"] == "transaction"
    assert int(config["default_pool_size"]) == pooler.SERVER_POOL
    assert int(config["max_client_conn"]) == pooler.MAX_CLIENT_CONN
    assert int(config["query_wait_timeout"]) == pooler.QUERY_WAIT_TIMEOUT_S


def _run_rendered_ini(binary: str, tmp_path: Path) -> dict[str, str]:
    """Start PgBouncer on the rendered ini (changed only where a test machine must) and read back SHOW CONFIG."""
    port = _free_port()
    # Only what a test machine must change: where it listens, its user list, and its log.
    local = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "auth_type": "trust",
        "auth_file": str(tmp_path / "users.txt"),
        "admin_users": "postgres",
        "unix_socket_dir": "",
        "logfile": str(tmp_path / "pgbouncer.log"),
    }
    lines = []
    for line in pooler.pgbouncer_ini().splitlines():
        key = line.split(" = ", 1)[0]
        if key not in local:
            lines.append(line)
    lines += [f"{key} = {value}" for key, value in local.items()]
    (tmp_path / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    (tmp_path / "users.txt").write_text('"postgres" ""\n')
    command = [binary, str(tmp_path / "pgbouncer.ini")]
    if os.geteuid() == 0:
        account = pwd.getpwnam(RUN_AS)
        for path in (tmp_path, *tmp_path.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        command[1:1] = ["-u", RUN_AS]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = f"host=127.0.0.1 port={port} dbname=pgbouncer user=postgres connect_timeout=2"
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
                    config = {row[0]: row[1] for row in conn.execute("SHOW CONFIG").fetchall()}
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (tmp_path / "pgbouncer.log").read_text() if (tmp_path / "pgbouncer.log").exists() else ""
                    pytest.fail(f"pgbouncer did not run the rendered ini: {log}")
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(10)
    return config
