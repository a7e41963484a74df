"""The mutation harness (tests/promtool/mutants.py): its mutants are the ones it promises, and a sample of them is
killed by the promtool tests (`make mutants` runs them all).

The sample is evenly spread over the ~500 mutants and moves by one mutant a day (UTC): each run checks SAMPLE mutants
from every part of the rule file, and any stretch of ~len/SAMPLE days runs every mutant once."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tests.conftest import require_tool
from tests.promtool import mutants

pytestmark = pytest.mark.promtool

# Evenly spread over the ~500 mutants; ~20-50 s on 2 cores with 2 promtool workers.
SAMPLE = 8


def todays_sample(found: list[mutants.Mutant], size: int, day: int) -> list[mutants.Mutant]:
    """`size` mutants evenly spread over `found`, all moved on by `day` (modulo the spacing between two of them)."""
    spacing = math.ceil(len(found) / size)
    return [found[(round(i * len(found) / size) + day % spacing) % len(found)] for i in range(min(size, len(found)))]


def keys() -> list[str]:
    return [mutant.key for mutant in mutants.mutants(mutants.load_rules())]


def test_the_mutants_cover_every_kind_the_issue_names() -> None:
    found = keys()
    wanted = [
        "FeatureStoreManifestInsertLatencyHigh: expr: 5 -> 5.1",  # a threshold up
        "FeatureStoreManifestInsertLatencyHigh: expr: 5 -> 4.9",  # and down
        "slo:sli_error:ratio_rate1h: expr: [1h] -> [2h]",  # a range window
        "FeatureStoreAvailabilityBudgetBurn: expr: slo:burn_rate:ratio_rate5m -> slo:burn_rate:ratio_rate30m",
        "FeatureStoreAvailabilityBudgetBurn: expr: and -> or",
        "FeatureStoreComponentUnhealthy: expr: min -> max",
        "FeatureStoreComponentUnhealthy: expr: by (namespace, job, instance, component): drop instance",
        'slo:sli_error:ratio_rate5m: expr: drop status_class="5xx"',  # a matcher dropped
        "FeatureStoreManifestInsertLatencyHigh: for: 10m -> 5m",
    ]
    assert [w for w in wanted if not any(key.endswith(w) for key in found)] == []
    assert len(found) == len(set(found))


def test_a_mutant_changes_exactly_one_rule() -> None:
    rules = mutants.load_rules()
    mutant = next(m for m in mutants.mutants(rules) if m.what == "expr: and -> or")
    changed = mutants.applied(rules, mutant)
    pairs = [
        (a, b)
        for ga, gb in zip(rules["groups"], changed["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
        if a != b
    ]
    # the first `and` only (a burn-rate rule with `min_events` has a second one, its floor: `(occurrence 2)`)
    assert len(pairs) == 1 and pairs[0][1]["expr"] == pairs[0][0]["expr"].replace(" and ", " or ", 1)


def test_the_days_samples_run_every_mutant_once_in_as_many_days_as_the_sample_spacing() -> None:
    found = mutants.mutants(mutants.load_rules())
    spacing = math.ceil(len(found) / SAMPLE)
    days = [todays_sample(found, SAMPLE, day) for day in range(spacing)]
    assert all(len({m.key for m in chosen}) == SAMPLE for chosen in days)
    assert {m.key for chosen in days for m in chosen} == {m.key for m in found}
    assert todays_sample(found, SAMPLE, 3) == todays_sample(found, SAMPLE, 3 + spacing)


def test_the_days_sample_of_mutants_is_killed_by_the_promtool_tests() -> None:
    rules = mutants.load_rules()
    day = datetime.now(UTC).toordinal()
    chosen = todays_sample(mutants.mutants(rules), SAMPLE, day)
    assert len(chosen) == SAMPLE
    report = mutants.run_all(chosen, rules, require_tool("promtool"), workers=2)
    assert report.unexplained == [], f"day {day}: " + report.summary()
