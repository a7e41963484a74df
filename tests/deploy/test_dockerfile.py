"""The Dockerfile, checked structurally against the app: base image, non-root user, the command and the probe."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlparse
from zipfile import ZipFile

import pytest

from devstack.process import LOOPBACK, ManagedProcess, free_port
from featurestore.conventions import DEFAULT_PORT, LIVE_PATH
from service.app import routes
from tests.conftest import REPO
from tests.deploy.dockerfile import Instruction, copy_sources, instructions, only

DOCKERFILE = REPO / "Dockerfile"
FOUND = instructions(DOCKERFILE)
APP_PATHS = {route.path for route in routes() if hasattr(route, "path")}
FIRST_PARTY = {"featurestore", "slos", "generators", "service", "devstack", "bench", "docsgen"}
DEV_ONLY = {"devstack", "bench", "docsgen"}  # make stack, make profile, python -m docsgen: never in the image


def _cmd() -> list[str]:
    return only(FOUND, "CMD").exec_form()


def _healthcheck() -> tuple[dict[str, str], list[str]]:
    options, rest = only(FOUND, "HEALTHCHECK").options()
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD"
    return options, Instruction("CMD", command).exec_form()


def _healthcheck_url() -> str:
    _, command = _healthcheck()
    urls = [word for part in command for word in part.replace("'", " ").replace('"', " ").split() if "://" in word]
    assert len(urls) == 1, command
    return urls[0]


def test_the_image_is_the_slim_python_311_base_pinned_by_digest() -> None:
    base = only(FOUND, "FROM").argument
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-[a-z]+)?@sha256:[0-9a-f]{64}", base), base


def test_the_image_runs_as_a_numeric_non_root_user_created_in_it() -> None:
    users = [instruction.argument for instruction in FOUND if instruction.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "Kubernetes runAsNonRoot needs a numeric, non-zero uid"
    creates = " ".join(instruction.argument for instruction in FOUND if instruction.keyword == "RUN")
    assert f"--uid {uid}" in creates
    last_user = max(index for index, instruction in enumerate(FOUND) if instruction.keyword == "USER")
    installs = [index for index, instruction in enumerate(FOUND) if "pip install" in instruction.argument]
    assert installs and max(installs) < last_user, "install as root, then drop to the user"


def test_the_command_is_python_dash_m_service_on_all_interfaces_on_the_exposed_port() -> None:
    assert _cmd() == ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
    assert only(FOUND, "EXPOSE").argument.split() == ["8000"]
    assert "ENTRYPOINT" not in {instruction.keyword for instruction in FOUND}


def test_the_healthcheck_probes_the_apps_liveness_route_on_the_exposed_port() -> None:
    options, _ = _healthcheck()
    url = urlparse(_healthcheck_url())
    assert url.path == "/api/v1/monitoring/health/live"
    assert url.path == LIVE_PATH  # the Dockerfile cannot import the conventions: this holds it to them
    assert url.path in APP_PATHS
    assert str(url.port) == only(FOUND, "EXPOSE").argument == str(DEFAULT_PORT)
    assert {"interval", "timeout", "retries"} <= set(options)


def _imports(package: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names & FIRST_PARTY


def test_the_image_copies_every_package_the_service_imports_and_what_pip_install_reads() -> None:
    needed, seen = {"service"}, set()
    while needed - seen:
        package = (needed - seen).pop()
        seen.add(package)
        needed |= _imports(package)
    sources = set(copy_sources(FOUND))
    assert sorted(needed - sources) == []
    assert {"pyproject.toml", "README.md"} <= sources
    runs = [instruction.argument for instruction in FOUND if instruction.keyword == "RUN"]
    assert any(re.search(r"pip install .*--no-deps .*\.( |$)", run) for run in runs), runs


def test_the_build_context_leaves_out_the_venv_the_git_folder_local_state_tests_and_the_dev_tools() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", ".stack", "tests", "rendered", *DEV_ONLY} <= ignored
    copied = set(copy_sources(FOUND))
    assert not copied & ignored


def test_the_images_command_serves_the_app_and_its_healthcheck_passes(tmp_path: Path) -> None:
    """Runs the CMD (with this interpreter, a free loopback port) and then the HEALTHCHECK command against it."""
    port = str(free_port())
    command = [sys.executable if part == "python" else part for part in _cmd()]
    command[command.index("--host") + 1] = LOOPBACK
    command[command.index("--port") + 1] = port
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FEATURESTORE_", "SERVICE_"))}
    env["FEATURESTORE_CACHE_DIR"] = str(tmp_path / "cache")
    app = ManagedProcess("image-cmd", command, state_dir=tmp_path, env=env, cwd=tmp_path)
    app.start()
    try:
        app.wait_ready(_healthcheck_url().replace(":8000/", f":{port}/").replace("0.0.0.0", LOOPBACK), 60)
        _, probe = _healthcheck()
        probe = [sys.executable if part == "python" else part.replace(":8000/", f":{port}/") for part in probe]
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
    finally:
        app.stop()
    if app.log_path.is_file() and "Traceback" in app.log_path.read_text():
        pytest.fail(app.log_tail())


def test_pip_install_of_only_the_copied_files_packages_the_service_and_the_slo_spec(tmp_path: Path) -> None:
    """The image's `pip install .` sees only what COPY brings in: build a wheel from exactly that context."""
    context = tmp_path / "context"
    context.mkdir()
    for source in copy_sources(FOUND):
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist")],
        cwd=context, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(ZipFile(wheel).namelist())
    assert {"service/__main__.py", "service/app.py", "featurestore/metrics.py", "slos/specs/featurestore.yaml"} <= names
    assert {name.split("/")[0] for name in names} & DEV_ONLY == set()
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    installed = {re.split(r"[<>=!~ \[;]", line, maxsplit=1)[0].lower() for line in requires if "extra ==" not in line}
    assert installed and not installed & {"grafanalib", "jinja2", "pytest", "httpx", "py-spy"}, installed


def test_the_image_copies_neither_the_dev_stack_nor_the_benchmarks() -> None:
    assert {source.strip("./").split("/")[0] for source in copy_sources(FOUND)} & DEV_ONLY == set()


def test_the_distributions_package_list_leaves_out_the_dev_stack_and_the_benchmarks() -> None:
    """`pip install .` from a checkout (not only from the image's context) must not install them either."""
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert [f"{name} matches {pattern}" for name in DEV_ONLY for pattern in include if fnmatch(name, pattern)] == []
