"""Reading spec files: YAML → models, with errors that name the file, the field path and the reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from slos import openslo, sloth

# Problem and SpecError stay importable from here, where they were first defined.
from slos.errors import Problem as Problem
from slos.errors import SpecError as SpecError
from slos.errors import field_path
from slos.models import NATIVE_VERSION, SLO, SpecFile
from slos.yaml_reader import read_documents

DEFAULT_SPECS_DIR = Path(__file__).resolve().parent / "specs"
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedSpec:
    path: Path
    spec: SpecFile
    source_format: Literal["native", "openslo", "sloth"]


@dataclass(frozen=True)
class SpecSet:
    """Every spec of a folder, in file-name order."""

    specs: tuple[LoadedSpec, ...]

    @property
    def slos(self) -> tuple[SLO, ...]:
        return tuple(slo for loaded in self.specs for slo in loaded.spec.slos)


def slo_names(document: Any) -> list[str | None]:
    """The `name` of each entry of a native document's `slos` list, None where it has no usable one."""
    items = document.get("slos") if isinstance(document, dict) else None
    if not isinstance(items, list):
        return []
    names: list[str | None] = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        names.append(name if isinstance(name, str) and name.strip() and "]" not in name else None)
    return names


def problems_of(error: ValidationError, names: Sequence[str | None] = ()) -> list[tuple[str, str]]:
    return [(field_path(detail["loc"], names), detail["msg"]) for detail in error.errors()]


def parse_native(document: Any, path: Path) -> SpecFile:
    try:
        return SpecFile.model_validate(document)
    except ValidationError as exc:
        raise SpecError(path, problems_of(exc, slo_names(document))) from None


def load_file(path: Path) -> LoadedSpec:
    """Parse one spec file: native (`version: featurestore/v1`), OpenSLO v1 (one or several documents), or Sloth
    (`version: prometheus/v1`, or a `sloth.slok.dev/v1` PrometheusServiceLevel)."""
    documents = read_documents(path)
    if not documents:
        raise SpecError(path, [("", "the file holds no YAML document")])
    first = documents[0]
    if not isinstance(first, dict):
        raise SpecError(path, [("", f"expected a mapping at the top, got {type(first).__name__}")])
    if str(first.get("apiVersion", "")).startswith("openslo/"):
        return LoadedSpec(path, openslo.parse_documents(documents, path), "openslo")
    if sloth.is_sloth(first):
        if len(documents) > 1:
            raise SpecError(path, [("", f"a Sloth spec is one YAML document here, found {len(documents)}")])
        return LoadedSpec(path, sloth.parse_document(first, path), "sloth")
    if len(documents) > 1:
        raise SpecError(path, [("", f"a {NATIVE_VERSION} spec is one YAML document, found {len(documents)}")])
    return LoadedSpec(path, parse_native(first, path), "native")


def load_specs(folder: Path = DEFAULT_SPECS_DIR) -> SpecSet:
    """Every `*.yaml`/`*.yml` in `folder`; all problems of all files are reported together, SLO names are unique."""
    if not folder.is_dir():
        raise SpecError(folder, [("", "not a folder of spec files")])
    paths = sorted(p for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
    if not paths:
        raise SpecError(folder, [("", "no *.yaml spec files found")])
    loaded: list[LoadedSpec] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            loaded.append(load_file(path))
        except SpecError as exc:
            problems.extend(exc.problems)
    owner: dict[str, Path] = {}
    for item in loaded:
        for index, slo in enumerate(item.spec.slos):
            if slo.name in owner:
                reason = f"SLO name {slo.name!r} is also used in {owner[slo.name]}"
                problems.append(Problem(str(item.path), f"slos[{index}].name", reason))
            owner.setdefault(slo.name, item.path)
    if problems:
        raise SpecError(folder, more=problems)
    return SpecSet(tuple(loaded))
