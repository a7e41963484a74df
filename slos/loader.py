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
from slos.errors import details, field_path, reason
from slos.locations import SloLocation
from slos.models import NATIVE_VERSION, SLO, SpecFile
from slos.yaml_reader import read_documents

DEFAULT_SPECS_DIR = Path(__file__).resolve().parent / "specs"
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedSpec:
    path: Path
    spec: SpecFile
    source_format: Literal["native", "openslo", "sloth"]
    locations: tuple[SloLocation, ...]  # per SLO of `spec`, where its fields are in the file (built while reading)

    def locate(self, index: int, field: str) -> str:
        """Where `field` (a native path such as `objective.threshold`) of the spec's SLO `index` is in the file."""
        return self.locations[index].of(field)


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


def slo_labels(names: Sequence[str | None]) -> list[str | None]:
    """How each SLO of a native file is named in messages: by its name where no other SLO of the file shares it,
    else (None) by its position, so two SLOs of one name read as `slos[0]` and `slos[1]`."""
    return [name if name is not None and names.count(name) == 1 else None for name in names]


def native_location(labels: Sequence[str | None], index: int) -> SloLocation:
    label = labels[index] if index < len(labels) else None
    return SloLocation.native(f"slos[{label if label is not None else index}]")


def problems_of(error: ValidationError, names: Sequence[str | None] = ()) -> list[tuple[str, str]]:
    """One (field, reason) per error of a native file."""
    return [(field_path(detail["loc"], names), reason(detail, SpecFile)) for detail in details(error)]


def duplicate_names(names: Sequence[str | None]) -> list[tuple[str, str]]:
    """Each SLO that reuses an earlier SLO's name, by position: on the raw names, since pydantic skips the model's
    own check (`SLO name … is used twice`) as soon as one SLO fails."""
    first: dict[str, int] = {}
    found: list[tuple[str, str]] = []
    for index, name in enumerate(names):
        if name is not None and name in first:
            found.append((f"slos[{index}].name", f"SLO name {name!r} is also used by slos[{first[name]}]"))
        first.setdefault(name or "", index)
    return found


def parse_native(document: Any, path: Path) -> LoadedSpec:
    names = slo_names(document)
    labels = slo_labels(names)
    try:
        spec = SpecFile.model_validate(document)
    except ValidationError as exc:
        twice = duplicate_names(names)
        # The model's check, when it ran, says the same as `twice` with less precision.
        problems = [found for found in problems_of(exc, labels) if not (twice and found[1].endswith("used twice"))]
        raise SpecError(path, problems + twice) from None
    return LoadedSpec(path, spec, "native", tuple(native_location(labels, i) for i in range(len(spec.slos))))


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
        spec, locations = openslo.convert(documents, path)
        return LoadedSpec(path, spec, "openslo", tuple(locations))
    if sloth.is_sloth(first):
        if len(documents) > 1:
            raise SpecError(path, [("", f"a Sloth spec is one YAML document here, found {len(documents)}")])
        spec, locations = sloth.convert(first, path)
        return LoadedSpec(path, spec, "sloth", tuple(locations))
    if len(documents) > 1:
        raise SpecError(path, [("", f"a {NATIVE_VERSION} spec is one YAML document, found {len(documents)}")])
    return parse_native(first, path)


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
