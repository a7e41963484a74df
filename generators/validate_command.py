"""`python -m generators validate [PATH...]`: check spec files without writing anything.

Every problem of every file is printed, one `file: field: reason` line each: a file that does not parse does not stop
the others, and inside a file (native, OpenSLO or Sloth) an SLO that does not parse does not hide the semantic
problems of its siblings (they are checked on their own). Exit status: 0 when every spec is valid, 1 when any
problem was found, 2 on usage errors (a path that does not exist). `--format json` prints
`{"valid": bool, "files": int, "problems": [{path, field, reason}]}`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generators.profile import PRODUCTION
from generators.render import retention_problems
from slos import openslo, sloth
from slos.loader import (
    DEFAULT_SPECS_DIR,
    SPEC_SUFFIXES,
    LoadedSpec,
    Problem,
    SpecError,
    SpecSet,
    load_file,
    native_location,
    slo_labels,
    slo_names,
)
from slos.models import NATIVE_VERSION, SLO, SpecFile, duration_seconds
from slos.validate import validate
from slos.yaml_reader import read_documents

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def duration(text: str) -> str:
    """An argparse type: a Prometheus duration such as 30d."""
    try:
        duration_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a Prometheus duration such as 30d: {text!r}") from None
    return text


def spec_files(paths: Iterable[Path]) -> list[Path]:
    """The spec files named, folders expanded to their *.yaml / *.yml files (sorted), each once."""
    found: list[Path] = []
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file()) if path.is_dir() else [path]
        )
        found += [file for file in files if file not in found]
    return found


def _salvage(path: Path) -> LoadedSpec | None:
    """A refused file reduced to its SLOs that parse on their own, each with where it is in the file, so their
    semantic problems are reported too; None when the file's top level itself is refused."""
    try:
        documents = read_documents(path)
    except SpecError:
        return None
    if not documents or not isinstance(documents[0], dict):
        return None
    first = documents[0]
    if str(first.get("apiVersion", "")).startswith("openslo/"):
        found = openslo.salvage(documents, path)
        return LoadedSpec(path, found[0], "openslo", tuple(found[1])) if found is not None else None
    if sloth.is_sloth(first):
        salvaged = sloth.salvage(first)
        return LoadedSpec(path, salvaged[0], "sloth", tuple(salvaged[1])) if salvaged is not None else None
    return _salvage_native(path, first)


def _salvage_native(path: Path, document: dict[str, Any]) -> LoadedSpec | None:
    """The SLOs that parse on their own (the first of each name), placed by their position in the file."""
    if document.get("version") != NATIVE_VERSION or not isinstance(document.get("slos"), list):
        return None
    labels = slo_labels(slo_names(document))
    kept: list[tuple[int, Any]] = []
    names: set[str] = set()
    for index, raw in enumerate(document["slos"]):
        try:
            slo = SLO.model_validate(raw)
        except ValidationError:
            continue
        if slo.name not in names:
            kept.append((index, raw))
            names.add(slo.name)
    if not kept:
        return None
    try:
        spec = SpecFile.model_validate(
            {**document, "slos": [raw for _, raw in kept], "maintenance_windows": [], "alert_policies": []}
        )
    except ValidationError:
        return None
    return LoadedSpec(path, spec, "native", tuple(native_location(labels, index) for index, _ in kept))


def check(paths: Sequence[Path], retention: str = PRODUCTION.retention) -> tuple[list[Problem], int]:
    """(every problem of the spec files under `paths`, as `make render` with `retention` would find them, how many
    files were read)."""
    files = spec_files(paths)
    problems: list[Problem] = []
    loaded: list[LoadedSpec] = []
    salvaged: list[LoadedSpec] = []
    for path in files:
        try:
            loaded.append(load_file(path))
        except SpecError as exc:
            problems += exc.problems
            partial = _salvage(path)
            if partial is not None:
                salvaged.append(partial)
    everything = [*loaded, *salvaged]
    problems += _duplicate_slo_names(everything)
    try:
        validate(SpecSet(tuple(everything)))
    except SpecError as exc:
        problems += exc.problems
    problems += retention_problems(SpecSet(tuple(everything)), PRODUCTION, retention)
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
    parser.add_argument(
        "--retention",
        type=duration,
        default=PRODUCTION.retention,
        help=f"the TSDB retention the rules are rendered for, as render's --retention (default {PRODUCTION.retention})",
    )
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or [DEFAULT_SPECS_DIR]
    missing = [path for path in paths if not path.exists()]
    if missing:
        parser.error(f"no such file or folder: {', '.join(map(str, missing))}")
    problems, count = check(paths, args.retention)
    problems = sorted(set(problems), key=lambda p: (p.path, p.field, p.reason))
    if args.format == "json":
        body = [{"path": p.path, "field": p.field, "reason": p.reason} for p in problems]
        print(json.dumps({"valid": not problems, "files": count, "problems": body}, indent=2))
    elif problems:
        for problem in problems:
            print(problem)
        print(f"generators validate: {_count(len(problems), 'problem')} in {_count(count, 'file')}")
    else:
        print(f"generators validate: {_count(count, 'file')} valid")
    return EXIT_INVALID if problems else EXIT_VALID


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
