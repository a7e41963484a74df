"""The stack's child processes: readiness polling, clean stop of the whole process group, pid files, busy ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.process import (
    LOOPBACK,
    ManagedProcess,
    StackError,
    claim_port,
    free_port,
    group_members,
    stop_pid_file,
    write_pid_file,
)

# A child that serves HTTP and starts a grandchild in its own process group, as uvicorn's workers would.
SERVER = """
import http.server, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_child_is_ready_when_its_url_answers_and_stopping_it_leaves_no_process_of_its_group(tmp_path: Path) -> None:
    port = free_port()
    child = ManagedProcess("web", [sys.executable, "-c", SERVER, str(port)], state_dir=tmp_path)
    child.start()
    try:
        assert child.wait_ready(f"http://{LOOPBACK}:{port}/", timeout_s=30) < 30
        assert child.pid_path.is_file()
        assert child.pid is not None
        deadline = time.monotonic() + 10
        while len(group_members(child.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(group_members(child.pid)) == 2
    finally:
        code = child.stop(grace_s=5)
    assert code == -signal.SIGTERM
    assert child.pid is not None and group_members(child.pid) == []
    assert not child.pid_path.exists()


def test_a_child_that_exits_before_it_is_ready_is_reported_with_its_log(tmp_path: Path) -> None:
    child = ManagedProcess(
        "broken", [sys.executable, "-c", "import sys; print('bad config line 3'); sys.exit(2)"], state_dir=tmp_path
    )
    child.start()
    with pytest.raises(StackError, match=r"broken exited before it was ready:\n(.|\n)*bad config line 3"):
        child.wait_ready(f"http://{LOOPBACK}:{free_port()}/", timeout_s=30)
    assert child.stop() == 2


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    child = ManagedProcess("stubborn", [sys.executable, "-c", stubborn], state_dir=tmp_path)
    child.start()
    deadline = time.monotonic() + 10
    while "up" not in child.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.stop(grace_s=0.5) == -signal.SIGKILL


def test_stopping_by_pid_file_stops_the_recorded_command_only(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen(argv, start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # not ours"], start_new_session=True)
    try:
        write_pid_file(tmp_path / "ours.pid", ours.pid, argv)
        # A pid file whose pid now runs another command line (a reused pid) must not be acted on.
        write_pid_file(tmp_path / "reused.pid", other.pid, argv)
        assert "stopped" in stop_pid_file(tmp_path / "ours.pid", grace_s=5)
        assert "nothing to stop" in stop_pid_file(tmp_path / "reused.pid", grace_s=5)
        assert ours.wait(timeout=5) == -signal.SIGTERM
        assert _alive(other.pid)
        assert not (tmp_path / "ours.pid").exists() and not (tmp_path / "reused.pid").exists()
    finally:
        for process in (ours, other):
            process.kill()
            process.wait(timeout=5)


def test_a_pid_file_records_pid_and_command_line(tmp_path: Path) -> None:
    write_pid_file(tmp_path / "x.pid", 123, ["/usr/bin/prometheus", "--config.file=a"])
    assert json.loads((tmp_path / "x.pid").read_text()) == {
        "pid": 123,
        "argv": ["/usr/bin/prometheus", "--config.file=a"],
    }


def test_a_taken_port_is_refused_with_a_message_that_names_the_component_and_the_way_out() -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"Prometheus port 127.0.0.1:{port} is taken .*make stack-down"):
            claim_port(port, "Prometheus")


def test_port_zero_claims_a_free_port() -> None:
    port = claim_port(0, "service")
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))
