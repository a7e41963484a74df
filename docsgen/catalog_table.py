"""The metric table of docs/metrics.md, from the catalog (featurestore/metrics.py): name, type, labels, meaning."""

from __future__ import annotations

from featurestore.metrics import CATALOG, DERIVED, MetricSpec


def _row(spec: MetricSpec) -> str:
    labels = ", ".join(f"`{label}`" for label in spec.labels)
    kind = f"{spec.kind.value} (computed by the service)" if spec in DERIVED else spec.kind.value
    if spec.multiprocess_mode:
        kind += f"; across processes: {spec.multiprocess_mode}"
    meaning = spec.help.replace("|", "\\|")
    return f"| `{spec.name}` | {kind} | {labels} | {meaning} |"


def catalog_table(catalog: tuple[MetricSpec, ...] = CATALOG) -> str:
    """One row per metric family, in catalog order; ends with a newline."""
    lines = ["| metric | type | labels | meaning |", "|---|---|---|---|", *(_row(spec) for spec in catalog)]
    return "\n".join(lines) + "\n"
