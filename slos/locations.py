"""Where an SLO's fields are in the file it was read from, so a problem found on the native model names the user's
own field: `slos[latency_p95].objective.threshold` (native), `documents[0].spec.objectives[0].target` (OpenSLO),
`slos[0].sli.events.error_query` (Sloth). Each reader builds them once, while converting, and the loaded spec carries
them (`slos.loader.LoadedSpec.locate`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Locations = dict[str, str]  # native field path inside an SLO ("objective.target") -> path in the file


@dataclass(frozen=True)
class SloLocation:
    """One SLO's fields: native field paths (and prefixes of them) mapped to paths in the file; "" is the SLO."""

    fields: Mapping[str, str]
    # Prefixes whose sub-fields keep their native names in the file: every field of a native SLO, the user's own
    # keys under `labels` in the other formats.
    mirrored: frozenset[str] = frozenset()

    @classmethod
    def native(cls, at: str) -> SloLocation:
        """An SLO of a native file, at `slos[<name>]` (or `slos[<index>]`): its fields are written as they are."""
        return cls({"": at}, frozenset({""}))

    @classmethod
    def mapped(cls, fields: Mapping[str, str]) -> SloLocation:
        """An SLO converted from another format; the keys of its label maps are the user's."""
        return cls(fields, frozenset(key for key in fields if key.endswith("labels")))

    def of(self, native: str) -> str:
        """Where a native field is: its longest known prefix, else the SLO itself."""
        parts = native.split(".") if native else []
        for size in range(len(parts), -1, -1):
            key = ".".join(parts[:size])
            if key in self.fields:
                rest = ".".join(parts[size:])
                return f"{self.fields[key]}.{rest}" if rest and key in self.mirrored else self.fields[key]
        return self.fields[""]
