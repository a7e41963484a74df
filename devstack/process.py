"""Child processes of the local stack: start in their own process group, poll readiness, stop without orphans.

Each child gets a pid file (`<state>/pids/<name>.pid`: the pid and the command line it was started with), so that
`python -m devstack down` can stop what an earlier `up` left behind, and only that: a pid whose
`/proc/<pid>/cmdline` is no longer the recorded command line is someone else's (pids are reused) and is left alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
STOP_GRACE_S = 10.0


class StackError(RuntimeError):
    """A stack component could not start, or a port it needs is taken."""


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def claim_port(port: int, what: str, host: str = LOOPBACK) -> int:
    """`port`, or a free one when 0; raises StackError naming `what` and the override when the port is taken."""
    if port == 0:
        return free_port(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StackError(
                f"{what} port {host}:{port} is taken ({exc.strerror}). Stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'`; `make stack-down` if it is an earlier stack), "
                f"or pick another port (python -m devstack up --help)."
            ) from None
    return port


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when GET `url` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ManagedProcess:
    """One child: its own session (process group), output to a log file, a pid file while it runs."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        state_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.log_path = state_dir / "logs" / f"{name}.log"
        self.pid_path = state_dir / "pids" / f"{name}.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A new session: Ctrl-C in the terminal reaches only the supervisor, which stops children in order.
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        write_pid_file(self.pid_path, self._process.pid, self.argv)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, url: str, timeout_s: float) -> float:
        """Poll `url` until it answers 2xx; seconds it took. Raises StackError with the log tail otherwise."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if not self.running():
                raise StackError(f"{self.name} exited before it was ready:\n{self.log_tail()}")
            if http_ok(url):
                return time.monotonic() - start
            time.sleep(0.1)
        raise StackError(f"{self.name} not ready at {url} after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace_s`; the exit code (None if never started)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=grace_s)
        # The leader may have exited while helpers of its group live on; SIGKILL is delivered asynchronously, so
        # wait until none of them runs (zombies awaiting their reaper are dead and do not count).
        _signal_group(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + grace_s
        while group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.pid_path.unlink(missing_ok=True)
        return process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def group_members(pgid: int) -> list[int]:
    """The pids of process group `pgid` that are still running (zombies excluded), read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def write_pid_file(path: Path, pid: int, argv: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "argv": list(argv)}) + "\n")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def own_cmdline() -> list[str]:
    """This process's command line as /proc shows it, for the supervisor's own pid file."""
    return _cmdline(os.getpid())


def _is_ours(pid: int, argv: Sequence[str]) -> bool:
    """The pid still runs the recorded command line (a zombie's is empty, so it counts as gone)."""
    return _cmdline(pid) == list(argv)


def pid_file_running(path: Path) -> int | None:
    """The pid a pid file names if that process still runs the recorded command line, else None."""
    try:
        record = json.loads(path.read_text())
        pid, argv = int(record["pid"]), [str(part) for part in record["argv"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if _is_ours(pid, argv) else None


def stop_pid_file(path: Path, grace_s: float = STOP_GRACE_S) -> str:
    """Stop what a pid file names if it is still that program; remove the file. Returns what happened."""
    try:
        record = json.loads(path.read_text())
        pid, argv = int(record["pid"]), [str(part) for part in record["argv"]]
    except (OSError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
        return f"{path.name}: unreadable, removed"
    name = path.stem
    if not _is_ours(pid, argv):
        path.unlink(missing_ok=True)
        return f"{name}: pid {pid} no longer runs what the stack started, nothing to stop"
    # Children lead their own process group (helpers they spawn go too); the supervisor does not.
    group = _exists(pid) and os.getpgid(pid) == pid
    _send(pid, signal.SIGTERM, group=group)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _is_ours(pid, argv):
        time.sleep(0.1)
    outcome = "stopped"
    if _is_ours(pid, argv):
        _send(pid, signal.SIGKILL, group=group)
        outcome = "killed after the grace period"
    path.unlink(missing_ok=True)
    return f"{name}: pid {pid} {outcome}"


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _send(pid: int, sig: signal.Signals, *, group: bool) -> None:
    if group:
        _signal_group(pid, sig)
        return
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
