"""The image installs requirements/image.txt, the lock `make lock` writes from pyproject.toml: every runtime
dependency and the build backend pinned with hashes, nothing of the dev tools, installed with --require-hashes
before the project itself goes in with --no-deps."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO
from tests.deploy.dockerfile import copy_sources, instructions

LOCK = REPO / "requirements" / "image.txt"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def pins(text: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a pip-compile lock with hashes."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in text.splitlines():
        if match := _PIN.match(line):
            name = canonicalize_name(match.group(1))
            found[name] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
    return found


def test_the_lock_pins_every_runtime_dependency_and_the_build_backend_within_pyproject_ranges() -> None:
    locked = pins(LOCK.read_text())
    wanted = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
    wanted += [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {LOCK.name}: make lock"
        assert requirement.specifier.contains(locked[name][0]), f"{requirement} vs {locked[name][0]}: make lock"


def test_every_pin_carries_its_hashes_and_nothing_of_the_dev_tools_is_locked() -> None:
    locked = pins(LOCK.read_text())
    assert locked and [name for name, (_, hashes) in locked.items() if hashes == 0] == []
    optional = PYPROJECT["project"]["optional-dependencies"]
    tools = {canonicalize_name(Requirement(text).name) for extra in optional.values() for text in extra}
    tools -= {"featurestore-monitoring"}
    assert sorted(tools & set(locked)) == []


def test_the_lock_says_make_lock_regenerates_it_and_the_makefile_does() -> None:
    assert "#    make lock\n" in LOCK.read_text()
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile[makefile.index("\nlock:") :].split("\n\n")[0]
    assert "pip-compile" in recipe and "--generate-hashes" in recipe and "pyproject.toml" in recipe


def test_the_image_installs_the_lock_with_hashes_then_only_the_project() -> None:
    found = instructions(REPO / "Dockerfile")
    runs = [(index, i.argument) for index, i in enumerate(found) if i.keyword == "RUN" and "pip install" in i.argument]
    assert len(runs) == 2, runs
    (lock_at, lock_install), (project_at, project_install) = runs
    assert "--require-hashes" in lock_install and "-r requirements/image.txt" in lock_install
    assert re.search(r"pip install --no-deps --no-build-isolation \.( |$)", project_install), project_install
    assert "requirements/image.txt" in copy_sources(found[:lock_at])
    assert "pyproject.toml" not in copy_sources(found[:lock_at]), "the dependency layer must not change with the code"
    assert lock_at < project_at
