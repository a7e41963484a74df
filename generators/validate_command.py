"""`python -m generators validate [PATH...]`: check spec files without writing anything.

Every problem of every file is printed, one `file: field: reason` line each: a file that does not parse does not stop
the others, and inside a native file an SLO that does not parse does not hide the semantic problems of its siblings
(they are checked on their own). Exit status: 0 when every spec is valid, 1 when any problem was found, 2 on usage
errors (a path that does not exist). `--format json` prints `{"valid": bool, "problems": [{path, field, reason}]}`.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from slos.loader import (
    DEFAULT_SPECS_DIR,
    SPEC_SUFFIXES,
    LoadedSpec,
    Problem,
    SpecError,
    SpecSet,
    load_file,
)
from slos.models import NATIVE_VERSION, SLO, SpecFile
from slos.validate import validate

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def spec_files(paths: Iterable[Path]) -> list[Path]:
    """The spec files named, folders expanded to their *.yaml / *.yml files (sorted), each once."""
    found: list[Path] = []
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file()) if path.is_dir() else [path]
        )
        found += [file for file in files if file not in found]
    return found


def _salvage(path: Path) -> tuple[LoadedSpec, dict[int, int]] | None:
    """A native file whose document failed validation, reduced to its top level and the SLOs that parse on their own
    (with their original indices), so their semantic problems are reported too; None when that is not possible."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(document, dict) or document.get("version") != NATIVE_VERSION:
        return None
    raw_slos = document.get("slos")
    if not isinstance(raw_slos, list):
        return None
    kept: list[Any] = []
    indices: dict[int, int] = {}
    for index, raw in enumerate(raw_slos):
        try:
            SLO.model_validate(raw)
        except ValidationError:
            continue
        indices[len(kept)] = index
        kept.append(raw)
    if not kept:
        return None
    try:
        spec = SpecFile.model_validate({**document, "slos": kept, "maintenance_windows": []})
    except ValidationError:
        return None
    return LoadedSpec(path, spec, "native"), indices


def _renumbered(problem: Problem, salvaged: dict[str, dict[int, int]]) -> Problem:
    """`problem` with the SLO indices of salvaged files (in its field, and in a reason citing one) made original."""

    def original(path: str, text: str, prefix: str) -> str:
        indices = salvaged.get(path)
        if indices is None:
            return text
        return re.sub(
            prefix + r"slos\[(\d+)\]", lambda m: m.group(0).replace(m.group(1), str(indices[int(m.group(1))])), text
        )

    field = original(problem.path, problem.field, "^")
    reason = problem.reason
    for path in salvaged:
        reason = original(path, reason, re.escape(f"{path}: "))
    return Problem(problem.path, field, reason)


def check(paths: Sequence[Path]) -> tuple[list[Problem], int]:
    """(every problem of the spec files under `paths`, how many files were read)."""
    files = spec_files(paths)
    problems: list[Problem] = []
    loaded: list[LoadedSpec] = []
    salvaged: list[tuple[LoadedSpec, dict[int, int]]] = []
    for path in files:
        try:
            loaded.append(load_file(path))
        except SpecError as exc:
            problems += exc.problems
            partial = _salvage(path)
            if partial is not None:
                salvaged.append(partial)
    everything = [*loaded, *(spec for spec, _ in salvaged)]
    renumber = {str(spec.path): indices for spec, indices in salvaged}
    found = _duplicate_slo_names(everything)
    try:
        validate(SpecSet(tuple(everything)))
    except SpecError as exc:
        found += exc.problems
    problems += [_renumbered(problem, renumber) for problem in found]
    if not files:
        problems.append(Problem(", ".join(map(str, paths)), "", "no *.yaml spec files found"))
    return problems, len(files)


def _duplicate_slo_names(loaded: Sequence[LoadedSpec]) -> list[Problem]:
    owner: dict[str, Path] = {}
    found: list[Problem] = []
    for item in loaded:
        for index, slo in enumerate(item.spec.slos):
            if slo.name in owner and owner[slo.name] != item.path:
                reason = f"SLO name {slo.name!r} is also used in {owner[slo.name]}"
                found.append(Problem(str(item.path), f"slos[{index}].name", reason))
            owner.setdefault(slo.name, item.path)
    return found


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generators validate",
        description="Check SLO spec files (native, OpenSLO v1, Sloth prometheus/v1) without writing anything. "
        "Prints every problem of every file as `file: field: reason`.",
        epilog="exit status: 0 every spec is valid, 1 problems were found, 2 usage error",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=f"spec files or folders of them (default: {DEFAULT_SPECS_DIR})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or [DEFAULT_SPECS_DIR]
    missing = [path for path in paths if not path.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(map(str, missing))}")
    problems, count = check(paths)
    problems = sorted(set(problems), key=lambda p: (p.path, p.field, p.reason))
    if args.format == "json":
        body = [{"path": p.path, "field": p.field, "reason": p.reason} for p in problems]
        print(json.dumps({"valid": not problems, "files": count, "problems": body}, indent=2))
    elif problems:
        for problem in problems:
            print(problem)
        print(f"generators validate: {len(problems)} problems in {count} files")
    else:
        print(f"generators validate: {count} files valid")
    return EXIT_INVALID if problems else EXIT_VALID
