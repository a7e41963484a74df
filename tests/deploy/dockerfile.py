"""A small reader of the Dockerfile's instructions (no container engine runs here, so tests read the file)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_OPTION = re.compile(r"^--([a-z-]+)=(\S+)\s*")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    argument: str

    def exec_form(self) -> list[str]:
        """The JSON array of CMD/ENTRYPOINT/HEALTHCHECK CMD, or the shell form split as `sh -c` would see it."""
        text = self.argument
        if text.startswith("["):
            value = json.loads(text)
            assert isinstance(value, list) and all(isinstance(part, str) for part in value)
            return value
        return ["/bin/sh", "-c", text]

    def options(self) -> tuple[dict[str, str], str]:
        """`--name=value` options in front of the argument (HEALTHCHECK, COPY), and the rest."""
        options: dict[str, str] = {}
        rest = self.argument
        while match := _OPTION.match(rest):
            options[match.group(1)] = match.group(2)
            rest = rest[match.end() :]
        return options, rest


def instructions(path: Path) -> list[Instruction]:
    """Instructions in order, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    result = []
    for line in logical:
        keyword, _, argument = line.partition(" ")
        result.append(Instruction(keyword.upper(), argument.strip()))
    return result


def only(found: list[Instruction], keyword: str) -> Instruction:
    matches = [instruction for instruction in found if instruction.keyword == keyword]
    assert len(matches) == 1, f"expected one {keyword}, found {len(matches)}"
    return matches[0]


def copy_sources(found: list[Instruction]) -> list[str]:
    """Every source path of every COPY (ADD is not used), without options."""
    sources: list[str] = []
    for instruction in found:
        if instruction.keyword == "COPY":
            _, rest = instruction.options()
            sources.extend(shlex.split(rest)[:-1])
    return sources
