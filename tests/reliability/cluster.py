"""A throwaway PostgreSQL cluster the fault tests may kill: its own data folder, port and socket folder.

Never the shared cluster on 5432: other people's tests run against that one. We are root in CI and root may not run
postgres, so every server command runs as the `postgres` OS user (`runuser -u postgres --`); the data folder is owned
by that user with mode 0700 and its parents are o+x so the server can reach it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

SERVER_USER = "postgres"
START_TIMEOUT_S = 30.0


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: `pg_config --bindir` when it has them, else the newest Debian one."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(Path(path).parent.name), reverse=True)
    candidates.extend(Path(path) for path in debian)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user(argv: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *argv]
    return list(argv)


@dataclass
class ThrowawayCluster:
    """An initdb'd cluster on 127.0.0.1:<port>; `kill()` is the outage, `start()` the recovery (same port and data)."""

    bindir: Path
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def sockdir(self) -> Path:
        return self.root / "sock"

    @property
    def logfile(self) -> Path:
        return self.root / "sock" / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @classmethod
    def create(cls, bindir: Path) -> ThrowawayCluster:
        root = Path(tempfile.mkdtemp(prefix="fs-pg-"))
        root.chmod(0o711)  # the server user must traverse it; /tmp itself is o+x
        cluster = cls(bindir, root)
        for folder in (cluster.datadir, cluster.sockdir):
            folder.mkdir(mode=0o700)
            if os.geteuid() == 0:
                shutil.chown(folder, SERVER_USER, SERVER_USER)
        cluster._run(
            "initdb", "-D", str(cluster.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
            "--no-sync",
        )  # fmt: skip
        return cluster

    def _run(self, tool: str, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = _as_server_user([str(self.bindir / tool), *args])
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
        return result

    def start(self) -> None:
        """Start the server and wait until it accepts connections; a port taken meanwhile moves it to a free one."""
        for _attempt in range(3):
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.sockdir} "
                "-c max_connections=200"
            )
            result = self._run(
                "pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", str(int(START_TIMEOUT_S)),
                "-o", options, "start", check=False, timeout=START_TIMEOUT_S + 10,
            )  # fmt: skip
            if result.returncode == 0 and self.accepts_connections():
                return
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            if "could not bind" not in log and "already in use" not in log:
                raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()}\n{log}")
            self.port = free_port()
        raise RuntimeError("the throwaway cluster found no free port in 3 attempts")

    def kill(self) -> None:
        """The outage: `pg_ctl -m immediate stop` (no checkpoint, every connection cut, like a crash)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.datadir), "status", check=False).returncode == 0

    def ensure_running(self) -> None:
        if not self.running():
            self.start()

    def accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def wait_until_down(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.accepts_connections():
            if time.monotonic() > deadline:
                raise AssertionError(f"the throwaway cluster on port {self.port} still answers after kill()")
            time.sleep(0.05)

    def create_database(self) -> str:
        """A fresh database; advisory locks in pg_locks are per database, so each test sees only its own."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
