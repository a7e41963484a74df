"""What the mutation harness (tests/promtool/mutants.py) mutates: a target is one rule file and the promtool test files
that check it, laid out as the test files' `rule_files` expect them under a scratch folder.

    featurestore            rendered/prometheus/rules/featurestore.yml: its generated tests, tests/promtool/*_test.yml
    timeslices              tests/promtool/specs/checkout.yaml (slices of threshold verdicts), rendered in memory
    openslo-<example>       each OpenSLO example of a time-slice SLO (tests/slos/test_openslo_examples.py: occurrences,
                            ratio-timeslices, calendar-month, calendar-week), rendered in memory where
                            ../shared/reference/openslo-examples is checked out
    clusters-per-cluster    rendered/clusters/per-cluster/featurestore.yml: tests/generators/cluster_cases.py
    clusters-global         rendered/clusters/thanos/featurestore.yml (the Mimir file holds the same groups): ditto,
                            the period case in a file of its own, evaluated at its one check

Nothing is written into rendered/: the time-slice specs are rendered into the returned data.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generators.profile import PRODUCTION
from generators.render import render
from slos.loader import load_specs
from tests.generators import cluster_cases

REPO = Path(__file__).resolve().parents[2]
RENDERED = REPO / "rendered"
HAND_WRITTEN = REPO / "tests" / "promtool"
TIMESLICE_SPECS = HAND_WRITTEN / "specs"
DEFAULT = "featurestore"


class Unavailable(Exception):
    """A target whose sources are not here (the OpenSLO examples beside the checkout)."""


@dataclass(frozen=True)
class TestFile:
    path: Path  # relative to the scratch root
    data: dict[str, Any]


@dataclass(frozen=True)
class Target:
    name: str
    rule_path: Path  # relative to the scratch root, where the test files' `rule_files` look for it
    rules: dict[str, Any]
    tests: tuple[TestFile, ...]


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def featurestore() -> Target:
    """Generated tests first (the fine file, then the long one), then the hand-written ones."""
    generated = sorted((RENDERED / "prometheus" / "tests").glob("*_test.yml"), key=lambda p: ("windows" in p.name, p))
    files = [TestFile(Path("rendered/prometheus/tests") / p.name, _load(p)) for p in generated]
    files += [TestFile(Path("tests/promtool") / p.name, _load(p)) for p in sorted(HAND_WRITTEN.glob("*_test.yml"))]
    rule_path = Path("rendered/prometheus/rules/featurestore.yml")
    return Target(DEFAULT, rule_path, _load(REPO / rule_path), tuple(files))


def rendered_target(name: str, files: dict[str, str], stem: str) -> Target:
    """The rule file of spec `stem` among rendered `files`, with every generated test file of it."""
    tests = sorted(p for p in files if p.startswith(f"prometheus/tests/{stem}_") and p.endswith("_test.yml"))
    rule_path = f"prometheus/rules/{stem}.yml"
    return Target(
        name,
        Path(rule_path),
        yaml.safe_load(files[rule_path]),
        tuple(TestFile(Path(p), yaml.safe_load(files[p])) for p in tests),
    )


def timeslices() -> Target:
    files = render(load_specs(TIMESLICE_SPECS), PRODUCTION, "test")
    return rendered_target("timeslices", files, "checkout")


def openslo(short: str) -> Target:
    """One time-slice example of the OpenSLO repository, on Prometheus queries as its test module reads it."""
    from tests.slos import test_openslo_examples as examples  # a test module: only when asked for

    example = OPENSLO_EXAMPLES[short]
    if not (examples.EXAMPLES / f"{example}.yaml").is_file():
        raise Unavailable(f"the OpenSLO examples are not at {examples.EXAMPLES}")
    with tempfile.TemporaryDirectory(prefix="mutants-openslo-") as folder:
        spec = Path(folder) / f"{example}.yaml"
        spec.write_text(yaml.safe_dump_all(examples.documents(example, month=example == examples.CALENDAR_MONTH)))
        # the monthly calendar reads 31 days back, past the 30d retention rendered for by default
        files = render(load_specs(Path(folder)), PRODUCTION, "test", retention="31d")
    return rendered_target(f"openslo-{short}", files, example)


def cluster_test(name: str, layer: str, cases: list[dict[str, Any]], evaluation: str = "1m") -> TestFile:
    test = {"rule_files": [f"../{layer}/featurestore.yml"], "evaluation_interval": evaluation, "tests": cases}
    return TestFile(Path(f"rendered/clusters/tests/{name}.yml"), test)


def clusters(name: str, layer: str, *tests: TestFile) -> Target:
    rule_path = Path("rendered/clusters") / layer / "featurestore.yml"
    return Target(name, rule_path, _load(REPO / rule_path), tests)


def clusters_per_cluster() -> Target:
    evaluation = cluster_cases.PER_CLUSTER_EVALUATION
    cases = cluster_test("clusters-per-cluster", "per-cluster", cluster_cases.per_cluster_events(), evaluation)
    return clusters("clusters-per-cluster", "per-cluster", cases)


def clusters_global() -> Target:
    """The global cases on minutes first; then the period case in its own file, evaluated at its one check."""
    cases = cluster_test("clusters-global", "thanos", cluster_cases.global_cases())
    period = cluster_test(
        "clusters-global-period", "thanos", cluster_cases.period_windows(), cluster_cases.period_evaluation()
    )
    return clusters("clusters-global", "thanos", cases, period)


OPENSLO_EXAMPLES = {
    "occurrences": "budgeting-method_occurences-slo",
    "ratio-timeslices": "budgeting-method_ratio-timeslices",
    "calendar-month": "budgeting-method_timeslices-slo",
    "calendar-week": "treat-low-traffic-as-equally-important_timeslices-slo",
}

TARGETS: dict[str, Callable[[], Target]] = {
    DEFAULT: featurestore,
    "timeslices": timeslices,
    **{f"openslo-{short}": (lambda short=short: openslo(short)) for short in OPENSLO_EXAMPLES},  # type: ignore[misc]
    "clusters-per-cluster": clusters_per_cluster,
    "clusters-global": clusters_global,
}


def load(names: list[str] | None = None) -> tuple[dict[str, Target], dict[str, str]]:
    """The named targets (all by default) that are available here, and why each other one is not."""
    found: dict[str, Target] = {}
    missing: dict[str, str] = {}
    for name in names or list(TARGETS):
        try:
            found[name] = TARGETS[name]()
        except Unavailable as exc:
            missing[name] = str(exc)
    return found, missing
