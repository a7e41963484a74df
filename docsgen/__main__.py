"""`python -m docsgen [--check]`: rewrite the generated regions of docs/ (or, with --check, fail listing the pages
whose regions differ from what the code and the committed benchmark reports give)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from docsgen.catalog_table import catalog_table
from docsgen.period_cost_table import period_cost_table
from docsgen.regions import region, replace_region
from docsgen.results_table import Run, results_table
from docsgen.settings_table import settings_table
from featurestore.settings import FeatureStoreSettings
from service.settings import ServiceSettings

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# The reports docs/performance.md compares, in column order: the project's 2-vCPU machine kind, then a 16-core one.
RESULTS = tuple(
    REPO / "bench" / "results" / f"{name}.json"
    for name in ("2-vcpu-64-workers", "16-cpu-64-workers", "16-cpu-128-workers")
)

# (page, region name) -> the region's text.
REGIONS: dict[tuple[str, str], Callable[[], str]] = {
    ("configuration.md", "feature-store-settings"): lambda: settings_table(FeatureStoreSettings),
    ("configuration.md", "service-settings"): lambda: settings_table(ServiceSettings),
    ("metrics.md", "catalog"): catalog_table,
    ("performance.md", "results"): lambda: results_table([Run.load(path) for path in RESULTS]),
    ("slo-specs.md", "period-cost"): period_cost_table,
}


def generated(docs: Path = DOCS) -> dict[Path, str]:
    """Every page that holds a generated region, as it should read."""
    pages: dict[Path, str] = {}
    for (name, region_name), build in REGIONS.items():
        path = docs / name
        page = pages.get(path, path.read_text(encoding="utf-8"))
        pages[path] = replace_region(page, region_name, build())
    return pages


def drifted(docs: Path = DOCS) -> list[str]:
    """`page: region` for each generated region whose committed text differs from what the sources give."""
    found = []
    for path, page in generated(docs).items():
        committed = path.read_text(encoding="utf-8")
        for name, region_name in REGIONS:
            if docs / name == path and region(committed, region_name) != region(page, region_name):
                found.append(f"{path.relative_to(docs.parent)}: {region_name}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docsgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a generated region of docs/ is out of date")
    args = parser.parse_args(argv)
    if args.check:
        found = drifted()
        for line in found:
            print(f"docsgen: out of date: {line}; run `python -m docsgen`", file=sys.stderr)
        return 1 if found else 0
    for path, page in generated().items():
        if path.read_text(encoding="utf-8") != page:
            path.write_text(page, encoding="utf-8")
            print(f"docsgen: wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
