"""Errors of spec files: one `file: field: reason` line per problem, the field written as a newcomer reads it.

The loader and each format's parser (native, OpenSLO, Sloth) raise them, so they live apart from all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


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
        elif part in {"quantile", "gauge", "ratio", "latency_budget"} and text.endswith("objective"):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text
