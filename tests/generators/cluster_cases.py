"""The promtool cases of the cluster target (generators/clusters*.py), as test groups: tests/generators/test_clusters.py
runs them against the committed rule files and the mutation harness (tests/promtool/mutants.py) against its mutants.

The per-cluster case feeds one Prometheus's raw series (no `cluster` anywhere); the global cases feed the per-cluster
records of two clusters, carrying `cluster` the way Thanos Query or Mimir returns them after each Prometheus attached
its external label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from generators.profile import PRODUCTION, format_duration
from generators.promql import error_budget
from generators.synthetic import encode
from slos.loader import load_specs
from slos.models import SLO, LatencyBudgetObjective, RatioObjective, duration_seconds
from slos.windows import WindowPair, enabled_pairs

AVAILABILITY = "http_availability_percent"
BURN_ALERT = "FeatureStoreAvailabilityBudgetBurn"
SCOPE = {"job": "featurestore", "namespace": "featurestore"}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def availability() -> SLO:
    (slo,) = [slo for slo in load_specs().specs[0].spec.slos if slo.name == AVAILABILITY]
    return slo


def cluster_events(cluster: str, bad: int, total: int) -> list[dict[str, str]]:
    """The availability SLO's per-cluster records of one cluster, steady over every window, with its label."""
    windows = sorted({w for pair in enabled_pairs(availability()) for w in (pair.long, pair.short)} | {"5m"})
    labels = {**SCOPE, "cluster": cluster, "slo": AVAILABILITY}
    out = [series(f"slo:sli_bad_events:increase{w}", labels, f"{bad}+0x20") for w in windows]
    return out + [series(f"slo:sli_events:increase{w}", labels, f"{total}+0x20") for w in windows]


def two_clusters() -> list[dict[str, str]]:
    """Cluster a: 100 bad of 1,000 (10 %, a 100x burn of the 0.1 % budget). Cluster b: 0 of 9,000. The fleet: 100 of
    10,000, 1 % (10x: past the 6x, 3x and 1x pairs, short of 14.4x); the mean of the two ratios, 5 %, pages at 14.4x."""
    return [*cluster_events("a", 100, 1000), *cluster_events("b", 0, 9000)]


def global_case(exprs: list[dict[str, Any]], *more: dict[str, str]) -> list[dict[str, Any]]:
    return [{"interval": "1m", "input_series": [*two_clusters(), *more], "promql_expr_test": exprs}]


def _sample(name: str, value: float, **labels: str) -> dict[str, Any]:
    return {"labels": series(name, labels, "")["series"], "value": value}


# The per-cluster cases: (input interval, samples, when checked, windows with their minutes). Each is checked an
# hour or a day after the counters start, so twice a window reads more; the day-long windows on half-hourly samples,
# which keep four days of counters as cheap as seven hours of minutes.
PER_CLUSTER_CASES = (
    ("1m", 430, "7h", {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360}),
    ("30m", 193, "4d", {"1d": 1440, "3d": 4320}),
)
# The test file's evaluation_interval: every check falls on one, and the four-day case stays cheap.
PER_CLUSTER_EVALUATION = "30m"


def per_cluster_events() -> list[dict[str, Any]]:
    """Per minute: 90 2xx and 10 5xx requests in one namespace, 50 2xx (its 5xx counter never created) in another;
    100 inserts, 95 of them within 5 ms, 98 within 10 ms. Exact label sets: a `cluster` label would fail the match."""
    quiet = {**SCOPE, "namespace": "quiet"}
    requests = "featurestore_http_requests_total"
    available, inserts = {"slo": AVAILABILITY}, {"slo": "manifest_insert_under_5ms_percent"}
    # per minute: (busy namespace, quiet namespace, inserts) bad events, then all events
    rates = {"slo:sli_bad_events:increase": (10, 0, 5), "slo:sli_events:increase": (100, 50, 100)}
    cases = []
    for interval, samples, at, windows in PER_CLUSTER_CASES:
        every = round(duration_seconds(interval) / 60)
        inputs = [
            series(name, labels, f"0+{per_minute * every}x{samples}")
            for name, labels, per_minute in (
                (requests, {**SCOPE, "status_class": "2xx"}, 90),
                (requests, {**SCOPE, "status_class": "5xx"}, 10),
                (requests, {**quiet, "status_class": "2xx"}, 50),
                ("manifest_insert_latency_ms_count", SCOPE, 100),
                ("manifest_insert_latency_ms_bucket", {**SCOPE, "le": "5.0"}, 95),
                ("manifest_insert_latency_ms_bucket", {**SCOPE, "le": "10.0"}, 98),
            )
        ]
        exprs = [
            {
                "expr": f"{prefix}{window}",
                "eval_time": at,
                "exp_samples": [
                    _sample(f"{prefix}{window}", busy * minutes, **SCOPE, **available),
                    _sample(f"{prefix}{window}", idle * minutes, **quiet, **available),
                    _sample(f"{prefix}{window}", slow * minutes, **SCOPE, **inserts),
                ],
            }
            for window, minutes in windows.items()
            for prefix, (busy, idle, slow) in rates.items()
        ]
        cases.append({"interval": interval, "input_series": inputs, "promql_expr_test": exprs})
    return cases


def burning_cluster() -> list[dict[str, Any]]:
    """Cluster a pages and tickets on every pair; cluster b, healthy, raises nothing; cluster c, 5 bad of 10, burns
    500x but stays under the SLO's 100-event floor; the fleet, at 10.5x, alerts on the three pairs below it, without
    a `cluster` label."""
    firing = (
        f'count by (cluster, burnrate_scope, burnrate_tier) (ALERTS{{alertname="{BURN_ALERT}", alertstate="firing"}})'
    )
    tiers = ("page_fast", "page_slow", "ticket_fast", "ticket_slow")
    cluster_a = [f'{{burnrate_scope="cluster", burnrate_tier="{t}", cluster="a"}}' for t in tiers]
    fleet = [f'{{burnrate_scope="fleet", burnrate_tier="{t}"}}' for t in ("page_slow", "ticket_fast", "ticket_slow")]
    exprs = [
        {"expr": firing, "eval_time": "10m", "exp_samples": [{"labels": x, "value": 1} for x in cluster_a + fleet]}
    ]
    return global_case(exprs, *cluster_events("c", 5, 10))


def fleet_weights() -> list[dict[str, Any]]:
    """100 bad of 10,000 is 1 %, over every window and the period; the mean of the clusters' ratios would be 5 %."""
    selector = f'{{slo="{AVAILABILITY}"}}'
    exprs = [
        {
            "expr": f"fleet_slo:sli_error:ratio_rate{w}{selector}",
            "eval_time": "10m",
            "exp_samples": [{"labels": f"fleet_slo:sli_error:ratio_rate{w}{selector}", "value": 0.01}],
        }
        for w in ("1h", "30d")
    ]
    exprs.append(
        {
            "expr": f"cluster_slo:sli_error:ratio_rate1h{selector}",
            "eval_time": "10m",
            "exp_samples": [
                {"labels": f'cluster_slo:sli_error:ratio_rate1h{{cluster="{c}", slo="{AVAILABILITY}"}}', "value": v}
                for c, v in (("a", 0.1), ("b", 0.0))
            ],
        }
    )
    return global_case(exprs)


def one_series_each() -> list[dict[str, Any]]:
    """The global records hold one series per SLO (fleet) and one per cluster and SLO."""
    windows = ("5m", "1h", "3d", "30d")
    exprs = [
        {
            "expr": f'count by (__name__) ({{__name__=~"{level}:(sli_error|burn_rate):ratio_rate{w}"}})',
            "eval_time": "10m",
            "exp_samples": [
                {"labels": f'{{__name__="{level}:{kind}:ratio_rate{w}"}}', "value": count}
                for kind in ("burn_rate", "sli_error")
            ],
        }
        for level, count in (("fleet_slo", 1), ("cluster_slo", 2))
        for w in windows
    ]
    return global_case(exprs)


def sparse_cluster_period() -> list[dict[str, Any]]:
    """Cluster b records its 5m counts every other minute (a slower evaluation interval): its mean count still
    stands for its events, and the fleet's period ratio stays 1 %. Summing the samples would count cluster a's
    twice as often and say 1.7 %."""
    labels = {**SCOPE, "cluster": "b", "slo": AVAILABILITY}
    sparse = [
        series(name, labels, " ".join([str(value), "_"] * 10))
        for name, value in (("slo:sli_bad_events:increase5m", 0), ("slo:sli_events:increase5m", 9000))
    ]
    dense = [s for s in cluster_events("a", 100, 1000) if "increase5m{" in s["series"]]
    record = f'fleet_slo:sli_error:ratio_rate30d{{slo="{AVAILABILITY}"}}'
    exprs = [{"expr": record, "eval_time": "10m", "exp_samples": [{"labels": record, "value": 0.01}]}]
    return [{"interval": "1m", "input_series": dense + sparse, "promql_expr_test": exprs}]


# Per SLO: its error budget, and the bad events of clusters a and b in the 5m window; window n of EVERY_WINDOW holds
# n times as many, of 1,000 + 100 n events. Cluster c counts 1 event, none bad; cluster d none: its ratios are absent.
BUDGETS = {AVAILABILITY: (0.001, 10, 30), "manifest_insert_under_5ms_percent": (0.05, 20, 60)}
EVERY_WINDOW = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
SAMPLES = 11  # one a minute, 0m to 10m; the 5m counts alternate between half and one and a half of their mean


def _alternating(mean: int) -> list[int]:
    return [mean // 2 if k % 2 == 0 else mean * 3 // 2 for k in range(SAMPLES)]


def _rounded(expr: str, found: list[tuple[dict[str, str], float]], scale: float, at: str = "10m") -> dict[str, Any]:
    """A check of `expr` to 1/scale: float division leaves the last digits to chance."""
    samples = [
        {"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}",
         "value": math.floor(value * scale + 0.5)}
        for labels, value in found
    ]  # fmt: skip
    return {"expr": f"round({expr} * {scale:g})", "eval_time": at, "exp_samples": samples}


def _window_events(slo: str, bads: list[int]) -> tuple[list[dict[str, str]], dict[str, dict[str, tuple[int, float]]]]:
    """The per-cluster records of one SLO, and per window each cluster's (bad, total) events as the rules read them
    at 10m (the 5m counts' latest sample; the period, their means)."""
    inputs = []
    read: dict[str, dict[str, tuple[int, float]]] = {}
    clusters = {"a": (bads[0], 1000), "b": (bads[1], 1000), "c": (0, 1), "d": (0, 0)}
    for cluster, (bad, total) in clusters.items():
        labels = {**SCOPE, "cluster": cluster, "slo": slo}
        scale = 100 if total >= 1000 else 0
        per_window = {w: (bad * n, total + scale * n) for n, w in enumerate(EVERY_WINDOW, start=1)}
        per_window["5m"] = (bad, total)
        for window, (bads_in, events) in per_window.items():
            counts = (_alternating(bads_in), _alternating(events)) if window == "5m" else ([bads_in], [events])
            for name, values in zip(("slo:sli_bad_events", "slo:sli_events"), counts, strict=True):
                text = " ".join(map(str, values)) if window == "5m" else f"{values[0]}+0x{SAMPLES - 1}"
                inputs.append(series(f"{name}:increase{window}", labels, text))
        bad5, total5 = _alternating(bad), _alternating(total)
        read[cluster] = {w: per_window[w] for w in EVERY_WINDOW[1:]}
        read[cluster]["5m"] = (bad5[-1], total5[-1])
        read[cluster]["30d"] = (sum(bad5), sum(total5))  # the means' ratio: SAMPLES cancels
    return inputs, read


def every_window() -> list[dict[str, Any]]:
    """Both SLOs' per-cluster records, each window its own share of bad events, the 5m counts alternating: every
    global record reads its own window and SLO, sums the clusters' events, averages the 5m counts over the period,
    divides by its SLO's budget, and records nothing for a cluster without events."""
    inputs: list[dict[str, str]] = []
    exprs: list[dict[str, Any]] = []
    for slo, (budget, *bads) in BUDGETS.items():
        found, read = _window_events(slo, bads)
        inputs += found
        selector = f'{{slo="{slo}"}}'
        for window in (*EVERY_WINDOW, "30d"):
            counted = {c: read[c][window] for c in read if read[c][window][1] > 0}
            levels = {
                "cluster_slo": [({"cluster": c, "slo": slo}, bad / total) for c, (bad, total) in counted.items()],
                "fleet_slo": [
                    ({"slo": slo}, sum(b for b, _ in counted.values()) / sum(t for _, t in counted.values()))
                ],
            }
            for level, ratios in levels.items():
                burns = [(labels, ratio / budget) for labels, ratio in ratios]
                exprs.append(_rounded(f"{level}:sli_error:ratio_rate{window}{selector}", ratios, 1e6))
                exprs.append(_rounded(f"{level}:burn_rate:ratio_rate{window}{selector}", burns, 1e3))
                if window == "30d":
                    left = [(labels, 1 - ratio / budget) for labels, ratio in ratios]
                    exprs.append(_rounded(f"{level}:error_budget_remaining:ratio{selector}", left, 1e3))
    return [{"interval": "1m", "input_series": inputs, "promql_expr_test": exprs}]


# The period case: per SLO and cluster, (bad, all) events of each daily 5m count in three stretches of the two periods
# before the check: older than one period, then the older and the newer half of the last one.
PERIOD_STRETCHES = {
    AVAILABILITY: {"a": ((30, 3000), (20, 1000), (10, 2000)), "b": ((0, 1000), (0, 1000), (5, 1000))},
    "manifest_insert_under_5ms_percent": {
        "a": ((60, 3000), (40, 1000), (20, 2000)),
        "b": ((0, 500), (10, 500), (0, 500)),
    },
}
DAY = 86400


def _period() -> str:
    (period,) = {s.objective.period for s in burn_slos() if s.name in PERIOD_STRETCHES}
    return period


def period_evaluation() -> str:
    """The period case's moment, half a day after its last count, and its file's evaluation interval: the rules run
    at 0 and then at the check, where two months of 1m evaluations would cost minutes of promtool."""
    return format_duration(2 * duration_seconds(_period()) + DAY // 2)


def period_windows() -> list[dict[str, Any]]:
    """A daily 5m count over two periods, checked half a day after the last: the period's window, half of it and
    twice it each start between two samples and hold a different mix of the stretches, so a period record that
    averages over half or twice its window, on either side of its ratio, records another ratio."""
    period, evaluation = _period(), period_evaluation()
    at = duration_seconds(evaluation)
    days = round(duration_seconds(period) / DAY)
    inputs: list[dict[str, str]] = []
    exprs: list[dict[str, Any]] = []
    for slo, clusters in PERIOD_STRETCHES.items():
        means: dict[str, tuple[float, float]] = {}
        for cluster, (old, older_half, newer_half) in clusters.items():
            counts = [
                old if t <= days else older_half if t <= days * 3 // 2 else newer_half for t in range(2 * days + 1)
            ]
            labels = {**SCOPE, "cluster": cluster, "slo": slo}
            for name, side in (("slo:sli_bad_events:increase5m", 0), ("slo:sli_events:increase5m", 1)):
                inputs.append(series(name, labels, encode([count[side] for count in counts])))
            read = [count for t, count in enumerate(counts) if at - t * DAY <= days * DAY]
            means[cluster] = (sum(b for b, _ in read) / len(read), sum(n for _, n in read) / len(read))
        bad, total = (sum(mean[side] for mean in means.values()) for side in (0, 1))
        levels = {
            "cluster_slo": [({"cluster": c, "slo": slo}, b / n) for c, (b, n) in means.items()],
            "fleet_slo": [({"slo": slo}, bad / total)],
        }
        for level, ratios in levels.items():
            record = f'{level}:sli_error:ratio_rate{period}{{slo="{slo}"}}'
            exprs.append(_rounded(record, ratios, 1e6, evaluation))
    return [{"interval": "1d", "input_series": inputs, "promql_expr_test": exprs}]


def idle_fleet() -> list[dict[str, Any]]:
    """A fleet without events records no ratio (no 0/0); a fleet of one good event records 0."""
    cases = []
    for events, expected in ((0, None), (1, 0.0)):
        inputs, exprs = [], []
        for slo in BUDGETS:
            labels = {**SCOPE, "cluster": "a", "slo": slo}
            for window in EVERY_WINDOW:
                inputs.append(series(f"slo:sli_bad_events:increase{window}", labels, f"0+0x{SAMPLES - 1}"))
                inputs.append(series(f"slo:sli_events:increase{window}", labels, f"{events}+0x{SAMPLES - 1}"))
            for window in (*EVERY_WINDOW, "30d"):
                for level, own in (("cluster_slo", {"cluster": "a", "slo": slo}), ("fleet_slo", {"slo": slo})):
                    found = [] if expected is None else [(own, expected)]
                    exprs.append(_rounded(f'{level}:sli_error:ratio_rate{window}{{slo="{slo}"}}', found, 1e6))
        cases.append({"interval": "1m", "input_series": inputs, "promql_expr_test": exprs})
    return cases


# The straddle case's burn rates, as multiples of a pair's factor: 1 % over or under it (the mutants move factors 2 %),
# or far over it (capped where every event is bad, as a latency budget of 5 % caps its burn at 20x).
OVER, UNDER, FAR = Decimal("1.01"), Decimal("0.99"), Decimal(2)
STRADDLE_EVENTS = 1_000_000  # a window's events when the floor is not probed: far above it


@dataclass(frozen=True)
class Phase:
    """One minute of the straddle case: one pair's long and short windows burn these multiples of its factor, every
    other window is quiet; `events` are clusters a's and b's events in the long window where the floor is probed."""

    long: Decimal
    short: Decimal
    events: tuple[int, int] | None = None


def _phases(floor: int | None) -> list[Phase]:
    """Each window just over and just under the factor while the other burns far over it; with a floor, cluster a
    at it and b one under it, then the fleet (a + b) at it and one under it while neither cluster reaches it."""
    found = [Phase(OVER, FAR), Phase(UNDER, FAR), Phase(FAR, OVER), Phase(FAR, UNDER)]
    if floor is not None:
        for a, b in ((floor, floor - 1), ((floor + 1) // 2, floor // 2), (floor // 2, (floor - 1) // 2)):
            found.append(Phase(FAR, FAR, (a, b)))
    return found


def burn_slos() -> list[SLO]:
    """The SLOs with global burn-rate alerts: the event-ratio ones with a burn rate."""
    slos = load_specs().specs[0].spec.slos
    return [s for s in slos if s.burn_rate and isinstance(s.objective, RatioObjective | LatencyBudgetObjective)]


def _floor(slo: SLO) -> int | None:
    if not slo.min_events:
        return None
    floor = PRODUCTION.events(slo.min_events)
    assert floor == int(floor) < STRADDLE_EVENTS
    return int(floor)


def _counts(phase: Phase | None, pair: WindowPair, window: str, budget: Decimal, at: int) -> tuple[Decimal, int]:
    """(bad, all) events of one window of cluster `at` (0: a, 1: b) in one phase of `pair`: quiet unless it burns."""
    if phase is None or window not in (pair.long, pair.short):
        return Decimal(0), STRADDLE_EVENTS
    long = window == pair.long
    share = min((phase.long if long else phase.short) * Decimal(repr(pair.factor)) * budget, Decimal(1))
    events = phase.events[at] if long and phase.events else STRADDLE_EVENTS
    return share * events, events


def _straddle_series(slo: SLO, schedule: list[tuple[str, int]], phases: dict[str, list[Phase]]) -> list[dict[str, str]]:
    """Clusters a's and b's records of one SLO, a value a minute from 0m: quiet, then each phase of `schedule`."""
    objective = slo.objective
    assert isinstance(objective, RatioObjective | LatencyBudgetObjective)
    budget = Decimal(repr(error_budget(objective.target)))
    pairs = {pair.name: pair for pair in enabled_pairs(slo)}
    windows = sorted({w for pair in pairs.values() for w in (pair.long, pair.short)} | {"5m"}, key=duration_seconds)
    out = []
    for at, cluster in enumerate(("a", "b")):
        values: dict[str, list[tuple[Decimal, int]]] = {w: [(Decimal(0), STRADDLE_EVENTS)] for w in windows}
        for name, index in schedule:
            own = phases.get(name, [])
            phase = own[index] if index < len(own) else None
            for w in windows:
                values[w].append(_counts(phase, pairs[name], w, budget, at) if name in pairs else values[w][0])
        labels = {**SCOPE, "cluster": cluster, "slo": slo.name}
        for w in windows:
            bad = " ".join(format(b.normalize(), "f") for b, _ in values[w])
            out.append(series(f"slo:sli_bad_events:increase{w}", labels, bad))
            out.append(series(f"slo:sli_events:increase{w}", labels, " ".join(str(t) for _, t in values[w])))
    return out


def _firing(slo: SLO, phase: Phase, pair: WindowPair) -> list[str]:
    """The alerts of one SLO in one phase: clusters a and b and the fleet burn alike and differ only in events."""
    floor = _floor(slo)
    if not (phase.long > 1 and phase.short > 1):
        return []
    a, b = phase.events or (STRADDLE_EVENTS, STRADDLE_EVENTS)
    scopes = {'burnrate_scope="cluster", cluster="a"': a, 'burnrate_scope="cluster", cluster="b"': b}
    scopes['burnrate_scope="fleet"'] = a + b
    assert slo.burn_rate is not None
    name = slo.burn_rate.name
    return [
        f'{{alertname="{name}", burnrate_tier="{pair.name}", {scope}}}'
        for scope, events in scopes.items()
        if floor is None or events >= floor
    ]


def burn_straddles() -> list[dict[str, Any]]:
    """Every global burn alert's factors, windows and event floor, one phase a minute for each pair in turn: each
    window 1 % over and 1 % under its factor while the other burns far over it, clusters a and b alike (so the fleet
    burns as they do), then the floor met and missed by one cluster and by the fleet; every other window stays quiet.
    A factor moved 2 %, a neighbouring window read, `and` turned into `or` or `unless`, or a floor moved 2 % changes
    which alerts fire."""
    slos = burn_slos()
    phases: dict[str, dict[str, list[Phase]]] = {
        s.name: {p.name: _phases(_floor(s)) for p in enabled_pairs(s)} for s in slos
    }
    schedule = list(
        dict.fromkeys((n, i) for own in phases.values() for n, found in own.items() for i in range(len(found)))
    )
    names = "|".join(s.burn_rate.name for s in slos if s.burn_rate)
    firing = (
        "count by (alertname, burnrate_scope, burnrate_tier, cluster) "
        f'(ALERTS{{alertname=~"{names}", alertstate="firing"}})'
    )
    exprs = []
    for minute, (name, index) in enumerate(schedule, start=1):
        found = []
        for s in slos:
            own = phases[s.name].get(name, [])
            if index < len(own):
                found += _firing(s, own[index], {p.name: p for p in enabled_pairs(s)}[name])
        exprs.append(
            {"expr": firing, "eval_time": f"{minute}m", "exp_samples": [{"labels": x, "value": 1} for x in found]}
        )
    inputs = [x for s in slos for x in _straddle_series(s, schedule, phases[s.name])]
    return [{"interval": "1m", "input_series": inputs, "promql_expr_test": exprs}]


def global_cases() -> list[dict[str, Any]]:
    """Every case of the global rules (Thanos Ruler, Mimir)."""
    return [
        *burning_cluster(),
        *burn_straddles(),
        *fleet_weights(),
        *one_series_each(),
        *sparse_cluster_period(),
        *every_window(),
        *idle_fleet(),
    ]
