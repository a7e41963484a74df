"""Every file in tests/slos/invalid/ is refused with its file, the field of its first line's `# expect:` and a reason
containing the expected fragment, by loading (shape) or validation (meaning), whichever catches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from slos.loader import Problem, SpecError, SpecSet, load_file
from slos.validate import validate

INVALID = Path(__file__).parent / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


def expectation(path: Path) -> tuple[str, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: <field>: <reason fragment>'"
    field, reason = first.removeprefix("# expect: ").split(": ", 1)
    return ("" if field == "<document>" else field), reason


def problems(path: Path) -> tuple[Problem, ...]:
    try:
        validate(SpecSet((load_file(path),)))
    except SpecError as exc:
        return exc.problems
    return ()


def test_there_are_at_least_thirty_invalid_specs_of_both_formats() -> None:
    openslo = [path for path in CASES if path.name.startswith("openslo_")]
    assert len(CASES) >= 30
    assert len(openslo) >= 10


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem.replace("_", " "))
def test_an_invalid_spec_is_refused_naming_its_file_field_and_reason(path: Path) -> None:
    field, reason = expectation(path)
    found = problems(path)
    assert found, f"{path.name} was accepted"
    matching = [p for p in found if p.path == str(path) and p.field == field and reason in p.reason]
    assert matching, f"expected {field!r}: {reason!r}, got {[(p.field, p.reason) for p in found]}"
    assert f"{path}: {field or '<document>'}: " in str(SpecError(path, more=found))


def test_load_specs_reports_the_problems_of_every_file_at_once(tmp_path: Path) -> None:
    from slos.loader import load_specs

    for name in ("wrong_type_threshold.yaml", "unknown_field.yaml"):
        (tmp_path / name).write_text((INVALID / name).read_text())
    with pytest.raises(SpecError) as caught:
        load_specs(tmp_path)
    assert sorted({Path(p.path).name for p in caught.value.problems}) == [
        "unknown_field.yaml",
        "wrong_type_threshold.yaml",
    ]
