"""The mutation harness (tests/promtool/mutants.py): its mutants are the ones it promises, for every target
(tests/promtool/mutant_targets.py), and a sample of them is killed by the promtool tests (`make mutants` runs them all).

The sample draws from every target, evenly spread over each, and moves by one mutant a day (UTC): each run checks
mutants from every part of every rule file, and any stretch of ~len/size days runs every mutant of a draw once."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache

import pytest

from tests.conftest import require_tool
from tests.promtool import mutant_targets, mutants

pytestmark = pytest.mark.promtool

# (targets, how many of their mutants a day): "openslo" draws from the four OpenSLO targets together. 8 in all, as
# many as the featurestore rules alone had, ~20-50 s on 2 cores with 2 promtool workers: the featurestore ones cost
# the most, the cluster ones a fraction of a second.
DRAWS = (("featurestore", 4), ("timeslices", 1), ("openslo", 1), ("clusters-per-cluster", 1), ("clusters-global", 1))


@cache
def targets() -> dict[str, mutant_targets.Target]:
    return mutant_targets.load()[0]


def pool(draw: str) -> list[mutants.Mutant]:
    """The mutants of the draw's target, or of every target named `<draw>-…`, in order."""
    chosen = {name: t for name, t in targets().items() if name == draw or name.startswith(f"{draw}-")}
    return mutants.every_mutant(chosen)


def todays_sample(found: list[mutants.Mutant], size: int, day: int) -> list[mutants.Mutant]:
    """`size` mutants evenly spread over `found`, all moved on by `day` (modulo the spacing between two of them)."""
    spacing = math.ceil(len(found) / size)
    return [found[(round(i * len(found) / size) + day % spacing) % len(found)] for i in range(min(size, len(found)))]


def keys(target: str) -> list[str]:
    return [mutant.key for mutant in mutants.mutants(targets()[target].rules, target)]


def test_the_mutants_cover_every_kind_the_issue_names() -> None:
    found = keys("featurestore")
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
    assert len(found) == len(set(found)) and all(key.startswith("featurestore.") for key in found)


NEW_TARGETS = {
    "timeslices": [
        "checkout.checkout_good_slices[0] slo:sli_threshold_good:bool: expr: < bool -> <= bool",
        "checkout.checkout_good_slices[0] slo:sli_threshold_good:bool: expr: < bool -> <",
        "checkout.checkout_good_slices[0] slo:sli_threshold_good:bool: expr: 100 -> 102",
        "checkout.checkout_good_slices[1] slo:sli_timeslice_good:ratio: expr: avg_over_time -> min_over_time",
        "checkout.checkout_good_slices[1] slo:sli_timeslice_good:ratio: expr: avg_over_time -> max_over_time",
        "checkout.checkout_good_slices[1] slo:sli_timeslice_good:ratio: expr: >= bool -> > bool",
        "checkout.checkout_good_slices[1] slo:sli_timeslice_good:ratio: expr: >= bool -> >=",
        "checkout.checkout_good_slices[1] slo:sli_timeslice_good:ratio: expr: 0.75 -> 0.765",
        'checkout.checkout_fast_share[2] slo:sli_error:ratio_rate5m: expr: drop slo="checkout_fast_share"',
        "CheckoutGoodSlicesBudgetBurn: expr: and -> or",
    ],
    "clusters-per-cluster": [
        "slo:sli_bad_events:increase5m: expr: [5m] -> [10m]",
        "slo:sli_events:increase1h: expr: by (namespace, job): drop job",
        'slo:sli_bad_events:increase5m: expr: drop status_class="5xx"',
    ],
    "clusters-global": [
        "cluster_slo:sli_error:ratio_rate1h: expr: by (cluster, slo): drop cluster",
        "fleet_slo:sli_error:ratio_rate30d: expr: avg_over_time -> min_over_time",
        "FeatureStoreAvailabilityBudgetBurn: expr: and -> or",
        "FeatureStoreAvailabilityBudgetBurn: expr: 14.4 -> 14.688",
    ],
}


@pytest.mark.parametrize("target", list(NEW_TARGETS))
def test_the_time_slice_and_cluster_targets_have_mutants_of_every_kind_their_rules_hold(target: str) -> None:
    found = keys(target)
    assert [w for w in NEW_TARGETS[target] if not any(key.endswith(w) for key in found)] == []
    assert len(found) == len(set(found)) and all(key.startswith(f"{target}: ") for key in found)


def test_a_mutant_changes_exactly_one_rule() -> None:
    rules = targets()["featurestore"].rules
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


@pytest.mark.parametrize("draw,size", DRAWS)
def test_the_days_samples_run_every_mutant_once_in_as_many_days_as_the_sample_spacing(draw: str, size: int) -> None:
    found = pool(draw)
    if not found:
        pytest.skip(f"no target of {draw} here (mutant_targets.load)")
    spacing = math.ceil(len(found) / size)
    days = [todays_sample(found, size, day) for day in range(spacing)]
    assert all(len({m.key for m in chosen}) == size for chosen in days)
    assert {m.key for chosen in days for m in chosen} == {m.key for m in found}
    assert todays_sample(found, size, 3) == todays_sample(found, size, 3 + spacing)


def test_the_days_sample_of_mutants_is_killed_by_the_promtool_tests() -> None:
    day = datetime.now(UTC).toordinal()
    chosen = [m for draw, size in DRAWS for m in todays_sample(pool(draw), size, day)]
    assert {m.target.split("-")[0] for m in chosen} >= {"featurestore", "timeslices", "clusters"}
    report = mutants.run_all(chosen, targets(), require_tool("promtool"), workers=2)
    assert report.unexplained == [], f"day {day}: " + "\n".join(report.summaries())
