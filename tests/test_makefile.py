"""The Makefile as a newcomer meets it: `make help` colours only on a terminal, `make install` says what it does."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

ESC = "\x1b["


def make() -> str:
    path = shutil.which("make")
    if path is None:
        pytest.fail("make is not on PATH")
    return path


def test_make_help_into_a_pipe_is_plain_text() -> None:
    run = subprocess.run([make(), "-s", "help"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert "  install " in run.stdout and "  serve " in run.stdout
    assert ESC not in run.stdout


def on_a_terminal(*args: str, env: dict[str, str] | None = None) -> str:
    """What `make ARGS` prints to a pseudo-terminal."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [make(), "-s", *args], cwd=REPO, stdin=terminal, stdout=terminal, stderr=terminal, env=env
        )
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(controller)
    return b"".join(chunks).decode()


def test_make_help_on_a_terminal_is_coloured_unless_no_color_is_set() -> None:
    assert f"{ESC}36minstall" in on_a_terminal("help")
    assert ESC not in on_a_terminal("help", env={**os.environ, "NO_COLOR": "1"})


def test_make_install_says_what_it_is_doing(tmp_path: Path) -> None:
    # A stand-in interpreter: `-m venv DIR` makes DIR/bin/python, which accepts every pip call.
    python = tmp_path / "python"
    python.write_text(
        '#!/bin/sh\nif [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"'
        ' && printf "#!/bin/sh\\nexit 0\\n" > "$3/bin/python" && chmod +x "$3/bin/python"; fi\n'
    )
    python.chmod(0o755)
    venv = tmp_path / "venv"
    run = subprocess.run(
        [make(), "install", f"VENV={venv}", f"PYTHON={python}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stdout.splitlines() if line.startswith("install: ")]
    assert said == [
        f"install: creating the virtual environment {venv} with {python}",
        f"install: installing pip and uv into {venv}",
        f"install: installing the project and its dev tools into {venv} (uv pip install -e '.[dev]')",
        "install: done; make help lists the targets",
    ]
    assert (venv / ".installed").exists()


def test_make_serve_listens_on_the_port_and_host_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SERVICE_", "FEATURESTORE_", "PROMETHEUS_"))}
    env["FEATURESTORE_CACHE_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [make(), "-s", "serve", f"PORT={port}", "HOST=127.0.0.1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"make serve PORT={port} did not answer on that port (exit status {process.poll()})")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
