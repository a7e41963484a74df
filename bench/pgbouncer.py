"""A throwaway PgBouncer in front of one PostgreSQL database, on a free loopback port (the benchmark and the tests).

    LocalPgBouncer(target_dsn, pool_size=20).start()  ->  .dsn (what clients use), .pools() (SHOW POOLS), .stop()

It writes its own pgbouncer.ini and auth file in a temporary folder and runs Debian's `pgbouncer` in the foreground:
`pool_mode = transaction`, trust auth on loopback for the target's user, server connections made with the target
DSN's host, port, user and password. PgBouncer refuses to run as root, so under root the folder is handed to the
`postgres` OS user and PgBouncer switches to it (`-u postgres`).

PgBouncer 1.18 rejects the `options` startup parameter (an `options=-csearch_path=…` DSN): `search_path` makes every
server connection of the pool use that schema instead, set once by `connect_query` when PgBouncer opens it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DATABASE_ALIAS = "featurestore"
START_TIMEOUT_S = 10.0
RUN_AS = "postgres"  # the OS user PgBouncer drops to when started by root


class PgBouncerUnavailable(RuntimeError):
    """No pgbouncer binary, or it did not start (the message carries its log)."""


def pgbouncer_binary() -> str | None:
    """Debian installs it in /usr/sbin, which is often not on a user's PATH."""
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return found if Path(found).exists() else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalPgBouncer:
    """One PgBouncer process in transaction mode; a context manager that stops it on exit."""

    def __init__(
        self,
        target_dsn: str,
        *,
        pool_size: int = 20,
        max_client_conn: int = 1000,
        search_path: str | None = None,
        pool_mode: str = "transaction",
        query_wait_timeout_s: int = 30,
        binary: str | None = None,
    ) -> None:
        self.target = conninfo_to_dict(target_dsn)
        self.user = str(self.target.get("user") or "postgres")
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.search_path = search_path
        self.pool_mode = pool_mode
        self.query_wait_timeout_s = query_wait_timeout_s
        self.binary = binary or pgbouncer_binary() or "pgbouncer"
        self.port = 0
        self._folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        """What a client connects to: the pooled database on PgBouncer's port."""
        return make_conninfo(
            "", host="127.0.0.1", port=self.port, dbname=DATABASE_ALIAS, user=self.user, connect_timeout=5
        )

    @property
    def admin_dsn(self) -> str:
        """PgBouncer's admin console (SHOW POOLS, SHOW STATS, PAUSE, KILL, ...)."""
        return make_conninfo(
            "", host="127.0.0.1", port=self.port, dbname="pgbouncer", user=self.user, connect_timeout=5
        )

    def __enter__(self) -> LocalPgBouncer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if shutil.which(self.binary) is None:
            raise PgBouncerUnavailable(f"pgbouncer is not installed ({self.binary}; apt-get install pgbouncer)")
        for _attempt in range(3):  # the free port can be taken between our probe and PgBouncer's bind
            try:
                self._launch()
            except BaseException:
                self.stop()  # its temporary folder too
                raise
            if self._wait_ready():
                return
            log = self.log()
            self.stop()
            if "Address already in use" not in log:
                raise PgBouncerUnavailable(f"pgbouncer did not start within {START_TIMEOUT_S:g} s:\n{log}")
        raise PgBouncerUnavailable("pgbouncer found no free loopback port in 3 attempts")

    def _launch(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="featurestore-pgbouncer-"))
        self._folder = folder
        self.port = _free_port()
        (folder / "users.txt").write_text(f'"{self.user}" ""\n')
        (folder / "pgbouncer.ini").write_text(self._ini(folder))
        command = [self.binary, "-q", str(folder / "pgbouncer.ini")]
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise PgBouncerUnavailable(
                    f"PgBouncer refuses to run as root and there is no {RUN_AS!r} user"
                ) from None
            for path in (folder, *folder.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
            command[1:1] = ["-u", RUN_AS]
        with open(folder / "stderr.log", "wb") as stderr:
            self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)

    def _ini(self, folder: Path) -> str:
        server: dict[str, Any] = {
            key: self.target[key] for key in ("host", "port", "user", "password") if self.target.get(key)
        }
        server["dbname"] = self.target.get("dbname") or self.user
        server.setdefault("host", "127.0.0.1")
        if self.search_path:
            server["connect_query"] = f'SET search_path TO "{self.search_path}"'
        database = " ".join(f"{key}={_quote(str(value))}" for key, value in server.items())
        return "\n".join(
            [
                "[databases]",
                f"{DATABASE_ALIAS} = {database}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                f"auth_type = trust\nauth_file = {folder / 'users.txt'}",
                f"admin_users = {self.user}",
                f"pool_mode = {self.pool_mode}",
                f"default_pool_size = {self.pool_size}",
                "min_pool_size = 0\nreserve_pool_size = 0",
                f"max_client_conn = {self.max_client_conn}",
                # A client waits this long for a server connection, then gets an error (08P01): after PostgreSQL went
                # away, the queries queued before PgBouncer noticed wait this long before the store can fall back.
                f"query_wait_timeout = {self.query_wait_timeout_s}",
                "server_login_retry = 1",
                f"logfile = {folder / 'pgbouncer.log'}",
                "log_connections = 0\nlog_disconnections = 0",
                "",
            ]
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                self.pools()
            except psycopg.Error:
                time.sleep(0.05)
                continue
            return True
        return False

    def admin(self, command: str) -> list[dict[str, Any]]:
        """Run an admin-console command (simple query protocol, as the console requires); rows as dicts."""
        with psycopg.connect(self.admin_dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cursor = conn.execute(command)
            if cursor.description is None:
                return []
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def pools(self) -> list[dict[str, Any]]:
        """SHOW POOLS for the pooled database: cl_active, cl_waiting, sv_active, sv_idle, sv_used, maxwait, ..."""
        return [row for row in self.admin("SHOW POOLS") if row.get("database") == DATABASE_ALIAS]

    def server_connections(self) -> int:
        """Server connections PgBouncer holds to PostgreSQL for the pooled database right now."""
        keys = ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
        return sum(int(row.get(key) or 0) for row in self.pools() for key in keys)

    def log(self) -> str:
        if self._folder is None:
            return ""
        parts = [p.read_text(errors="replace") for p in (self._folder / "pgbouncer.log", self._folder / "stderr.log")
                 if p.exists()]  # fmt: skip
        return "".join(parts)[-4000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # SIGTERM: PgBouncer closes every connection and exits at once
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
