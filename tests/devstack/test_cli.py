"""`make stack` / `make stack-down`: the command line starts everything, prints the URLs and leaves nothing running."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.process import LOOPBACK, http_ok
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

READY_LINE = "Ctrl-C (or make stack-down) stops everything"
FREE_PORTS = ["--service-port", "0", "--prometheus-port", "0", "--alertmanager-port", "0", "--webhook-port", "0"]


def _stack(*args: str, state: Path) -> list[str]:
    return [sys.executable, "-m", "devstack", *args, "--state-dir", str(state)]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


Running = tuple[subprocess.Popen[str], Path, list[int], str]


@contextmanager
def _up(state: Path) -> Iterator[Running]:
    """`python -m devstack up` on free ports once it printed its URLs: (process, state dir, child pids, output)."""
    if not (REPO / "rendered" / "prometheus" / "prometheus.yml").is_file():
        pytest.fail("rendered/prometheus/prometheus.yml is missing: python -m generators must render it")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FEATURESTORE_PG_DSN", None)
    process = subprocess.Popen(
        _stack("up", *FREE_PORTS, state=state), cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if READY_LINE in line:
            break
    output = "".join(lines)
    try:
        assert READY_LINE in output, output
        pids = [json.loads(path.read_text())["pid"] for path in sorted((state / "pids").glob("*.pid"))]
        yield process, state, pids, output
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        process.stdout.close()


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory, binaries: None) -> Iterator[Running]:
    """One stack for the module's tests that leave it running; the last of them, `make stack-down`, stops it."""
    with _up(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def own_stack(tmp_path: Path, binaries: None) -> Iterator[Running]:
    """A stack of the test's own, for a test that stops it another way."""
    with _up(tmp_path) as running:
        yield running


def _finish(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    rest = process.stdout.read()
    process.wait(timeout=60)
    return rest


def test_stack_up_prints_every_url_and_each_one_answers(running_stack: Running) -> None:
    _, _, pids, output = running_stack
    pattern = r"^  (service health|Prometheus graph|Prometheus alerts|Alertmanager) +(\S+)$"
    urls = dict(re.findall(pattern, output, re.MULTILINE))
    assert sorted(urls) == ["Alertmanager", "Prometheus alerts", "Prometheus graph", "service health"]
    assert [name for name, url in urls.items() if not http_ok(url.split("#")[0], timeout_s=10)] == []
    assert len(pids) == 3 and all(_alive(pid) for pid in pids)


def test_a_second_stack_up_on_the_same_state_refuses_and_leaves_the_running_one_alone(running_stack: Running) -> None:
    process, state, pids, _ = running_stack
    second = subprocess.run(
        _stack("up", *FREE_PORTS, state=state), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 1
    assert "a stack already runs" in second.stderr and "make stack-down" in second.stderr
    assert process.poll() is None and all(_alive(pid) for pid in pids)


def test_stack_down_stops_the_supervisor_and_every_child_and_removes_their_pid_files(running_stack: Running) -> None:
    """The module's shared stack ends here: this test runs after every other test that uses it."""
    process, state, pids, _ = running_stack
    down = subprocess.run(_stack("down", state=state), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "supervisor: pid" in down.stdout
    rest = _finish(process)
    assert process.returncode == 0, rest
    assert "stack: stopped prometheus (exit 0), alertmanager (exit 0), service" in rest
    assert [pid for pid in pids if _alive(pid)] == []
    assert list(state.glob("**/*.pid")) == []


def test_ctrl_c_stops_every_child(own_stack: Running) -> None:
    process, state, pids, _ = own_stack
    process.send_signal(signal.SIGINT)
    rest = _finish(process)
    assert process.returncode == 0, rest
    assert "stack: stopping" in rest
    assert [pid for pid in pids if _alive(pid)] == []
    assert list(state.glob("**/*.pid")) == []


def test_stack_up_refuses_a_taken_port_with_a_clear_error_and_starts_nothing(tmp_path: Path, binaries: None) -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = str(sock.getsockname()[1])
        ports = [*FREE_PORTS]
        ports[ports.index("--prometheus-port") + 1] = port
        result = subprocess.run(
            _stack("up", *ports, state=tmp_path), cwd=REPO, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 1
    assert f"Prometheus port 127.0.0.1:{port} is taken" in result.stderr
    assert list(tmp_path.glob("pids/*.pid")) == []


def test_stack_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    result = subprocess.run(_stack("down", state=tmp_path), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout
