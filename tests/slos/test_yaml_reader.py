"""Alias bombs in every input form are refused by the one spec reader, naming the file, before anything walks them.

Each bomb is loaded in a child process capped at 1 GiB of address space, so a reader that walks it fails the test
with a MemoryError instead of taking the machine's memory; the child reports the reader's peak allocation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slos.errors import SpecError
from slos.loader import load_file
from slos.yaml_reader import MAX_EXPANDED_NODES, MAX_SPEC_BYTES, read_documents

# Nine aliases of nine: 9**9 (387 million) leaves from a few hundred bytes.
BOMB = "\n".join(
    [
        '  l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
        *(f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)),
    ]
)
FORMS = {
    "native": f"version: featurestore/v1\nservice: bomb\nrunbook_base_url: https://x\nslos: []\nlabels:\n{BOMB}\n",
    "openslo": (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: bomb}\n"
        f"spec:\n  service: bomb\n  budgetingMethod: Occurrences\n{BOMB}\n"
    ),
    "sloth prometheus/v1": f"version: prometheus/v1\nservice: bomb\nslos: []\nlabels:\n{BOMB}\n",
    "sloth PrometheusServiceLevel": (
        f"apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata: {{name: bomb}}\nspec:\n{BOMB}\n"
    ),
}
CHILD = """
import json, resource, sys, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from pathlib import Path
from slos.errors import SpecError
from slos.loader import load_file
tracemalloc.start()
try:
    load_file(Path(sys.argv[1]))
    problems = []
except SpecError as exc:
    problems = [[p.path, p.field, p.reason] for p in exc.problems]
print(json.dumps({"problems": problems, "peak": tracemalloc.get_traced_memory()[1]}))
"""


@pytest.mark.parametrize("form", FORMS)
def test_an_alias_bomb_is_refused_naming_the_file_in_every_input_form(form: str, tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(FORMS[form], encoding="utf-8")
    assert len(FORMS[form]) < 1000
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, child.stderr[-2000:]
    report = json.loads(child.stdout)
    (problem,) = report["problems"]
    assert problem[0] == str(path)
    assert f"above the limit of {MAX_EXPANDED_NODES}" in problem[2]
    assert report["peak"] < 100 * 1024 * 1024


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("version: featurestore/v1\nlabels: &self {a: *self}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="contains it"):
        load_file(path)


def test_a_file_above_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "large.yaml"
    path.write_text("# " + "x" * MAX_SPEC_BYTES + "\n", encoding="utf-8")
    with pytest.raises(SpecError, match=f"at most {MAX_SPEC_BYTES} bytes"):
        read_documents(path)


def test_aliases_that_expand_modestly_are_read(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("a: &labels {team: x}\nb: *labels\n", encoding="utf-8")
    assert read_documents(path) == [{"a": {"team": "x"}, "b": {"team": "x"}}]
