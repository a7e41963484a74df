"""Errors of spec files: one `file: field: reason` line per problem, the field written as a newcomer reads it.

The loader and each format's parser (native, OpenSLO, Sloth) raise them, so they live apart from all of them.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


@dataclass(frozen=True)
class Problem:
    path: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field or '<document>'}: {self.reason}"


class SpecError(Exception):
    """Specs that cannot be used: one `file: field: reason` line per problem."""

    def __init__(self, path: Path | str, problems: Sequence[tuple[str, str]] = (), *, more: Sequence[Problem] = ()):
        self.problems = tuple(Problem(str(path), field, reason) for field, reason in problems) + tuple(more)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def field_path(loc: Iterable[int | str], slo_names: Sequence[str | None] = ()) -> str:
    """Pydantic's error location as `slos[manifest_insert_p95_ms].objective.threshold`: an SLO by its name when it has
    one (`slo_names`, by position), else by index (`slos[0]`); union tags such as `quantile` dropped."""
    text = ""
    parts = list(loc)
    for position, part in enumerate(parts):
        if isinstance(part, int):
            named = position == 1 and parts[0] == "slos" and part < len(slo_names) and slo_names[part]
            text += f"[{slo_names[part]}]" if named else f"[{part}]"
        elif part in {"quantile", "gauge", "ratio", "latency_budget", "timeslices"} and text.endswith("objective"):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def details(error: ValidationError) -> list[ErrorDetails]:
    """The errors of a validation, less a too-short list whose items failed on their own (pydantic counts only the
    items that passed, so one broken SLO also reads `Tuple should have at least 1 item`)."""
    found = error.errors()
    failed_below = {detail["loc"][:size] for detail in found for size in range(len(detail["loc"]))}
    return [detail for detail in found if not (detail["type"] == "too_short" and detail["loc"] in failed_below)]


def reason(detail: ErrorDetails, root: type[BaseModel] | None = None) -> str:
    """Pydantic's message without its `Value error, ` prefix; for an unknown field of `root` (the model validated),
    the known field it was probably meant to be."""
    text = detail["msg"].removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden" and root is not None and detail["loc"]:
        typed = str(detail["loc"][-1])
        close = difflib.get_close_matches(typed, sorted(known_fields(root, detail["loc"][:-1])), n=1)
        if close:
            text += f": did you mean {close[0]!r}?"
    return text


def known_fields(root: type[BaseModel], loc: Sequence[int | str]) -> set[str]:
    """The field names (aliases where set) of the models that `loc`, a pydantic error location under `root`, is in."""
    at: list[Any] = [root]
    for part in loc:
        at = [inner for outer in at for candidate in _members(outer) for inner in _step(candidate, part)]
    return {
        field.alias or name
        for candidate in at
        for model in _members(candidate)
        if isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items()
    }


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold: Annotated, optional and union wrappers removed."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _members(arg)]
    return [annotation]


def _step(annotation: Any, part: int | str) -> list[Any]:
    """What one step of an error location leads to inside `annotation`."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
        # A discriminated union's tag (`objective.quantile.window`) first: the member whose Literal field holds it.
        if any(
            get_origin(field.annotation) is Literal and part in get_args(field.annotation) for field in fields.values()
        ):
            return [annotation]
        return [fields[part].annotation] if isinstance(part, str) and part in fields else []
    if origin in (tuple, list) and isinstance(part, int):
        return [get_args(annotation)[0]]
    if origin is dict:
        return [get_args(annotation)[1]]
    return []
