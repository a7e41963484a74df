"""The mutation harness (tests/promtool/mutants.py): its mutants are the ones it promises, and a fixed sample of them
is killed by the promtool tests (`make mutants` runs them all)."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool
from tests.promtool import mutants

pytestmark = pytest.mark.promtool

# Evenly spread over the ~500 mutants; ~40-90 s on 2 cores with 2 promtool workers.
SAMPLE = 16


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


def test_a_fixed_sample_of_mutants_is_killed_by_the_promtool_tests() -> None:
    rules = mutants.load_rules()
    chosen = mutants.sample(mutants.mutants(rules), SAMPLE)
    assert len(chosen) == SAMPLE
    report = mutants.run_all(chosen, rules, require_tool("promtool"), workers=2)
    assert report.unexplained == [], report.summary()
