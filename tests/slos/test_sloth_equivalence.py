"""Sloth's own published examples, rendered by us, agree with the rules Sloth rendered from them (`_gen/`).

One promtool test per example loads both rule files side by side over the same synthetic series (about 36 hours: a
quiet day, a one-hour burst, a quiet gap, six hours of moderate burn) and asserts, every 30 minutes:
- each SLI window both generators record (5m to 3d) holds the same value in our rules as in Sloth's;
- Sloth's page alert fires exactly when one of our two page-tier rules fires, and likewise for the ticket tier;
and, so the equalities are not vacuous, that Sloth's own page fires during the burst and its ticket after the moderate
phase, and that nothing fires on the quiet day.

The period record differs by design: Sloth averages the 5m ratios over 30 days, we divide the period's bad events by
its events. A second promtool test runs both on spiky traffic (a busy half day burning half the budget, then a quiet
one burning 20x) and asserts each reads its own formula there, a factor of ~20 apart, while on the steady phases
above both read the same period ratio.

The reference folder is `shared/reference/sloth-v0.16-examples` beside the checkout or a folder above it (see its
README): absent on a user's clone, the
tests skip, and fail under CI=true.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from generators.profile import PRODUCTION
from generators.render import render
from slos.loader import load_specs
from slos.sloth import parse_document
from tests.conftest import REPO, require_tool, unavailable
from tests.promtool import parallel

pytestmark = pytest.mark.promtool

# `../shared/reference` beside the checkout, or beside a folder of worktrees above it
EXAMPLES = next(
    (found for parent in REPO.parents if (found := parent / "shared" / "reference" / "sloth-v0.16-examples").is_dir()),
    REPO.parent / "shared" / "reference" / "sloth-v0.16-examples",
)
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PAGE_WINDOWS, TICKET_WINDOWS = ("1h", "6h"), ("1d", "3d")
STEP = 1  # minutes between samples
# (minutes, burn rate of the phase in multiples of the error budget)
PHASES = ((1440, 0.5), (60, 20.0), (240, 0.5), (360, 4.0), (60, 0.5))
BURST_CHECK = 1440 + 58  # Sloth's page fires near the end of the burst (its 1h window then burns 20x)
TICKET_CHECK = 1440 + 60 + 240 + 355  # and its ticket at the end of the moderate phase
QUIET_CHECK = 1380
PERIOD_CLOSE = 1e-9  # relative difference of the two period ratios on the steady phases (float noise)
# Its events are `sum_over_time` of client counts over a `[5m:]` subquery, whose first evaluation holds one point where
# the others hold two: ours weighs that first window half, Sloth's average as much as any other (0.1 % apart here).
PERIOD_APART = ("home-wifi",)
PER_MINUTE = 100_000.0  # events per minute: every bad count below is a whole number
CLIENTS = 8  # promtool caps the samples a query loads: the 3d subqueries of the wifi examples stay under it
# Wifi clients (a gauge of satisfaction per client): how many are unhappy in each phase, at which satisfaction.
WIFI = ((0, 0.99), (7, 0.1), (0, 0.99), (2, 0.3), (0, 0.99))


def counter(per_minute: list[float], phases: tuple[tuple[int, float], ...] = PHASES) -> str:
    """promtool series notation of a counter growing by per_minute[i] in phase i."""
    parts, value = ["0"], 0.0
    for (minutes, _), increment in zip(phases, per_minute, strict=True):
        parts.append(f"{value + increment:.15g}+{increment:g}x{minutes // STEP - 1}")
        value += increment * (minutes // STEP)
    return " ".join(parts)


def gauge(values: list[float]) -> str:
    return " ".join(f"{value:g}+0x{minutes // STEP - 1}" for (minutes, _), value in zip(PHASES, values, strict=True))


def events(event: str, other: str, budget: float, *, good: bool = False) -> list[dict[str, str]]:
    """Two counters burning each phase's multiple of `budget`: bad events and the rest (their sum is the total), or,
    with `good`, good events (a histogram's `le` bucket) and the total (its `_count`)."""
    bad = [PER_MINUTE * burn * budget for _, burn in PHASES]
    rest = [PER_MINUTE - b for b in bad]
    if good:
        return [
            {"series": event, "values": counter(rest)},
            {"series": other, "values": counter([PER_MINUTE] * len(bad))},
        ]
    return [{"series": event, "values": counter(bad)}, {"series": other, "values": counter(rest)}]


def http(job: str, budget: float) -> list[dict[str, str]]:
    ok = f'http_request_duration_seconds_count{{job="{job}",code="200"}}'
    bad = f'http_request_duration_seconds_count{{job="{job}",code="500"}}'
    return events(bad, ok, budget)


def apiserver() -> list[dict[str, str]]:
    availability = events('apiserver_request_total{code="503"}', 'apiserver_request_total{code="200"}', 0.001)
    latency = events(
        'apiserver_request_duration_seconds_bucket{le="0.4",verb="GET"}',
        'apiserver_request_duration_seconds_count{verb="GET"}',
        0.01,
        good=True,
    )
    return availability + latency


def wifi() -> list[dict[str, str]]:
    series = []
    for client in range(CLIENTS):
        values = [low if client < unhappy else 0.99 for unhappy, low in WIFI]
        series.append({"series": f'unifipoller_client_satisfaction_ratio{{name="c{client}"}}', "values": gauge(values)})
    return series


SERIES: dict[str, Callable[[], list[dict[str, str]]]] = {
    "getting-started": lambda: http("myservice", 0.001),
    "k8s-getting-started": lambda: http("myservice", 0.001),
    "no-alerts": lambda: http("myapp", 0.0001),
    "kubernetes-apiserver": apiserver,
    "home-wifi": wifi,
    "raw-home-wifi": wifi,
}


def examples() -> list[str]:
    return sorted(SERIES)


def reference() -> Path:
    if not (EXAMPLES / "_gen").is_dir():
        unavailable(f"Sloth's examples are not at {EXAMPLES} (see /work/shared/reference/README.md)")
    return EXAMPLES


def _sloth_spec(path: Path) -> tuple[str, list[tuple[str, str | None]]]:
    """(service, [(sloth slo name, alert name or None)]) of a Sloth example."""
    document = yaml.safe_load(path.read_text())
    body = document.get("spec", document)
    slos = [(slo["name"], (slo.get("alerting") or {}).get("name")) for slo in body["slos"]]
    return body["service"], slos


def _tier_alerts(alert: str, sloth_id: str, tier: str, windows: tuple[str, ...]) -> str:
    """Sloth's alert of `tier` firing (1) minus one of our pairs of that tier firing (1): 0 when they agree."""
    theirs = (
        f'count(ALERTS{{alertname="{alert}", alertstate="firing", sloth_id="{sloth_id}", sloth_severity="{tier}"}})'
    )
    ours = (
        f'count(count by (alertname) (ALERTS{{alertname="{alert}", alertstate="firing", '
        f'slo="{sloth_id.replace("-", "_")}", long_window=~"{"|".join(windows)}"}}))'
    )
    return f"({theirs} or vector(0)) - ({ours} or vector(0))"


def side_by_side(name: str, ours: Path, theirs: Path) -> dict[str, object]:
    service, slos = _sloth_spec(EXAMPLES / f"{name}.yml")
    exprs: list[dict[str, object]] = []
    minutes = sum(m for m, _ in PHASES)
    for slo, alert in slos:
        sloth_id = f"{service}-{slo}"
        mine = f'slo="{sloth_id.replace("-", "_")}"'
        for at in range(30, minutes, 30):
            for window in WINDOWS:
                record = f"slo:sli_error:ratio_rate{window}"
                expr = f'sum({record}{{{mine}}}) - sum({record}{{sloth_id="{sloth_id}"}})'
                exprs.append({"expr": expr, "eval_time": f"{at}m", "exp_samples": [{"labels": "{}", "value": 0}]})
            if alert is not None:
                for tier, windows in (("page", PAGE_WINDOWS), ("ticket", TICKET_WINDOWS)):
                    exprs.append(
                        {
                            "expr": _tier_alerts(alert, sloth_id, tier, windows),
                            "eval_time": f"{at}m",
                            "exp_samples": [{"labels": "{}", "value": 0}],
                        }
                    )
        if name not in PERIOD_APART:  # steady traffic in every 5m record: the ratios' average is the events' ratio
            our_period, sloths = (f"sum(slo:sli_error:ratio_rate30d{{{w}}})" for w in (mine, f'sloth_id="{sloth_id}"'))
            exprs.append(
                {
                    "expr": f"abs({our_period} - {sloths}) < bool {PERIOD_CLOSE} * {sloths}",
                    "eval_time": f"{minutes}m",
                    "exp_samples": [{"labels": "{}", "value": 1}],
                }
            )
        firing = f'ALERTS{{alertstate="firing", sloth_id="{sloth_id}"}}'
        exprs.append({"expr": f"count({firing})", "eval_time": f"{QUIET_CHECK}m", "exp_samples": []})
        if alert is not None:
            for tier, at in (("page", BURST_CHECK), ("ticket", TICKET_CHECK)):
                count = f'count(ALERTS{{alertstate="firing", sloth_id="{sloth_id}", sloth_severity="{tier}"}})'
                exprs.append({"expr": count, "eval_time": f"{at}m", "exp_samples": [{"labels": "{}", "value": 1}]})
    # promtool evaluates groups in a random order unless told; Sloth's alerts read its recordings of the same step
    # only when its recording groups run first (in a live Prometheus, its groups run apart and may lag a step)
    order = [group["name"] for path in (ours, theirs) for group in yaml.safe_load(path.read_text())["groups"]]
    return {
        "rule_files": [str(ours), str(theirs)],
        "evaluation_interval": "5m",
        "group_eval_order": order,
        "tests": [{"interval": f"{STEP}m", "input_series": SERIES[name](), "promql_expr_test": exprs}],
    }


def rule_files(name: str, out: Path) -> tuple[Path, Path]:
    """Our rule file and Sloth's (a PrometheusRule's `spec` for the CRD example)."""
    ours = out / "prometheus" / "rules" / f"{name}.yml"
    generated = yaml.safe_load((reference() / "_gen" / f"{name}.yml").read_text())
    theirs = out / f"{name}_sloth.yml"
    theirs.write_text(yaml.safe_dump(generated.get("spec", generated), sort_keys=False))
    return ours, theirs


def run_side_by_side(name: str, out: Path) -> subprocess.CompletedProcess[str]:
    ours, theirs = rule_files(name, out)
    test = out / f"{name}_side_by_side_test.yml"
    test.write_text(yaml.safe_dump(side_by_side(name, ours, theirs), sort_keys=False))
    return parallel.run_rule_tests(require_tool("promtool"), [test])


def render_example(name: str, tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / f"{name}.yml").write_text((reference() / f"{name}.yml").read_text())
    out = tmp_path / "out"
    for relative, text in render(load_specs(specs), PRODUCTION, "test").items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text)
    return out


@pytest.mark.parametrize("name", examples())
def test_a_sloth_example_records_the_same_slis_and_fires_at_the_same_moments_as_sloths_rules(
    name: str, tmp_path: Path
) -> None:
    out = render_example(name, tmp_path)
    result = run_side_by_side(name, out)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_the_side_by_side_test_fails_when_our_rules_read_a_wrong_window(tmp_path: Path) -> None:
    """The comparison is not vacuous: our 1h SLI reading 2h of data, or our 6h page pair's factor moved, is caught."""
    out = render_example("getting-started", tmp_path)
    rules = out / "prometheus" / "rules" / "getting-started.yml"
    text = rules.read_text()
    broken = text.replace("[1h]", "[2h]").replace("> 6 and", "> 7 and")
    assert broken != text
    rules.write_text(broken)
    result = run_side_by_side("getting-started", out)
    assert result.returncode == 1
    assert "slo:sli_error:ratio_rate1h" in result.stderr + result.stdout
    assert 'sloth_severity=\\"page\\"' in result.stderr + result.stdout


def test_every_published_example_is_compared() -> None:
    names = {path.stem for path in reference().glob("*.yml")}
    assert names == set(SERIES)
    for name in names:
        document = yaml.safe_load((EXAMPLES / f"{name}.yml").read_text())
        parse_document(document, EXAMPLES / f"{name}.yml")


# (minutes, events per minute, burn rate in multiples of the error budget): a busy half day, then a quiet one
SPIKY = ((720, 100_000.0, 0.5), (720, 100.0, 20.0))


def spiky_period(ours: Path, theirs: Path, budget: float) -> tuple[dict[str, object], float, float]:
    """A promtool test of both period records on SPIKY traffic, with the events' ratio and the 5m ratios' average."""
    phases = tuple((minutes, 0.0) for minutes, _, _ in SPIKY)
    bad = [per_minute * burn * budget for _, per_minute, burn in SPIKY]
    rest = [per_minute - b for (_, per_minute, _), b in zip(SPIKY, bad, strict=True)]
    events_ratio = sum(b * m for b, (m, _, _) in zip(bad, SPIKY, strict=True)) / sum(p * m for m, p, _ in SPIKY)
    # every 5m record from 5m on holds one phase: as many records per phase as 5m in it
    ratios = [
        b / per_minute for b, (minutes, per_minute, _) in zip(bad, SPIKY, strict=True) for _ in range(minutes // 5)
    ]
    averaged = sum(ratios) / len(ratios)
    sloth_id = "myservice-requests-availability"
    checks = [(f'slo="{sloth_id.replace("-", "_")}"', events_ratio), (f'sloth_id="{sloth_id}"', averaged)]
    exprs = [
        {
            "expr": f"abs(sum(slo:sli_error:ratio_rate30d{{{who}}}) - {value!r}) < bool {PERIOD_CLOSE * value!r}",
            "eval_time": f"{sum(m for m, _, _ in SPIKY)}m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
        for who, value in checks
    ]
    series = [
        {
            "series": f'http_request_duration_seconds_count{{job="myservice",code="{code}"}}',
            "values": counter(v, phases),
        }
        for code, v in (("500", bad), ("200", rest))
    ]
    order = [group["name"] for path in (ours, theirs) for group in yaml.safe_load(path.read_text())["groups"]]
    test = {
        "rule_files": [str(ours), str(theirs)],
        "evaluation_interval": "5m",
        "group_eval_order": order,
        "tests": [{"interval": f"{STEP}m", "input_series": series, "promql_expr_test": exprs}],
    }
    return test, events_ratio, averaged


def test_on_spiky_traffic_our_period_sli_divides_the_events_where_sloths_averages_the_5m_ratios(tmp_path: Path) -> None:
    """The one record that differs by design, shown: the same busy and quiet half days read the events' ratio in our
    rules and the 5m ratios' average in Sloth's, ~20x apart."""
    out = render_example("getting-started", tmp_path)
    ours, theirs = rule_files("getting-started", out)
    test, events_ratio, averaged = spiky_period(ours, theirs, 0.001)
    assert averaged > 10 * events_ratio
    path = out / "spiky_period_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = parallel.run_rule_tests(require_tool("promtool"), [path])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
