"""Golden cases: tests/generators/cases/<case>/spec.yaml renders to exactly expected/ (Grafana files and the schema
excluded: their own tests cover them). GOLDEN_UPDATE=1 rewrites expected/ from the current generators; review the
diff."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from generators.__main__ import main
from generators.output import read_tree

CASES = Path(__file__).parent / "cases"


def rendered(case: Path, out: Path) -> dict[str, str]:
    assert main(["--specs", str(case), "--out", str(out)]) == 0
    return {path: text for path, text in read_tree(out).items() if not path.startswith(("grafana/", "schema/"))}


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_a_spec_folder_renders_to_its_expected_folder(case: Path, tmp_path: Path) -> None:
    files = rendered(case, tmp_path / "out")
    expected = case / "expected"
    if os.environ.get("GOLDEN_UPDATE") == "1":
        shutil.rmtree(expected, ignore_errors=True)
        for relative, text in files.items():
            (expected / relative).parent.mkdir(parents=True, exist_ok=True)
            (expected / relative).write_text(text, encoding="utf-8")
    assert read_tree(expected) == files
