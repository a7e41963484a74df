"""Mutation testing of the rendered rules: do the promtool tests notice when a rule means something else?

Each mutant changes one thing in one rule of `rendered/prometheus/rules/<spec>.yml`:

    number       every numeric literal of an expression 2 % up and 2 % down (0 becomes 1 and -1)
    range        every range window halved and doubled (`[1h]` -> `[30m]`, `[2h]`)
    record       every reference to a windowed record moved to the neighbouring window (`ratio_rate5m` -> `…30m`)
    set          every `and` / `or` / `unless` turned into each of the other two
    matcher      every label matcher dropped
    by           every label of every `by (…)` dropped; `min` and `max` aggregations swapped
    for          every `for:` halved and doubled

and is run against the generated tests (`rendered/prometheus/tests/*.yml`) and the hand-written ones
(`tests/promtool/*_test.yml`), restricted to the test groups that check the mutated rule or a rule reading it. A
mutant is killed when promtool fails. `equivalent` names the mutants no input can tell apart, each with the reason.

    python -m tests.promtool.mutants [--sample N] [--workers 2]     (make mutants runs them all)

`make test` runs a sample that moves by one mutant a day (tests/promtool/test_mutants.py).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from generators.profile import format_duration
from generators.promql import number
from slos.models import duration_seconds
from slos.windows import SLI_WINDOWS

REPO = Path(__file__).resolve().parents[2]
RENDERED = REPO / "rendered"
HAND_WRITTEN = REPO / "tests" / "promtool"
RULES = "featurestore.yml"
STEP = 0.02  # numbers move this share up and down

# Mutants no test can tell from the original, each with the reason: (pattern over Mutant.key, reason).
EQUIVALENT_RULES: tuple[tuple[str, str], ...] = (
    (
        r"slo:sli_error:ratio_rate\w+: expr: drop slo=\"[^\"]+\"( \(occurrence 2\))?$",
        "a period ratio's two `_over_time` sides (bad events over total events, or a raw ratio's sum over count): the "
        "other side keeps the slo matcher and the division matches one to one on every label, slo included, so "
        "another SLO's records find no partner",
    ),
)


_FALLBACK = re.compile(r" or 0 \* (sum by \([^)]*\) \((?:rate|increase)\([^\[]*\[(?P<window>[^\]]+)\]\)\))")
FALLBACK_WINDOW = (
    "the window of the `0 * total` fallback, which only lends the total's labels when no bad series exists: twice the "
    "window sees a superset of the samples (the same labels), half of it differs only while a target that vanished "
    "between the two windows' starts is still in the denominator's window, and then only in whether a 0 is recorded "
    "for at most half a window; not killed, and left as it is"
)


BURN_PAIR_SLO = (
    "a burn-rate alert's `long{slo=…} > f and short{slo=…} > f` with one side's slo matcher dropped: `and` matches "
    "one to one on every label, slo included, so another SLO's burn rates on that side find no partner"
)


# Mutants the tests do not kill yet, each with why (not equivalent: a test could kill them). `make test`'s sample
# fails on any other survivor.
KNOWN_SURVIVORS: tuple[tuple[str, str], ...] = (
    (
        r"BudgetBurn: expr: (14\.4 -> 14\.112|6 -> 5\.88|3 -> 2\.94|1 -> 0\.98)( \(occurrence 2\))?$",
        "a factor 2 % down on one side of the pair's `and`: the straddles burn both windows alike, so one side's "
        "factor alone never decides; a case with one window 1 % under while the other burns far over is designed "
        "(generators/burn_tests.py) but not landed: it tripled the fine file's time",
    ),
    (
        r"\] \w+BudgetBurn: expr: slo:burn_rate:ratio_rate1h -> slo:burn_rate:ratio_rate(30m|2h)$",
        "the 1h/5m page's long window is told apart only in the 15-minute long-case file, where the 30m and 2h "
        "records cross 14.4x at the same evaluation as the 1h one",
    ),
    (
        r"slo:sli_events:increase5m: expr: \[5m\] -> \[(150s|10m)\] \(occurrence 2\)$",
        "the window of a latency budget's bucket-presence test (`count and sum(increase(bucket[5m]))`), which only "
        "decides whether a window's events count: half or twice it differs only in the minutes after the threshold "
        "bucket first appears or before it vanishes, which the period case aligns with an evaluation",
    ),
)


def known_survivor(mutant: Mutant) -> str | None:
    """Why a mutant the tests do not kill yet survives, or None."""
    return next((reason for pattern, reason in KNOWN_SURVIVORS if re.search(pattern, mutant.key)), None)


def equivalent(mutant: Mutant) -> str | None:
    """Why `mutant` cannot be told from the original (by any input, or as the reason says), or None."""
    if (
        mutant.rule.endswith("BudgetBurn")
        and re.search(r"expr: drop slo=\"[^\"]+\"( \(occurrence 2\))?$", mutant.key)
        and " and " in mutant.value
    ):
        return BURN_PAIR_SLO
    if not mutant.rule.startswith(("slo:sli_error:", "slo:sli_bad_events:")):
        return None
    fallback = _FALLBACK.search(mutant.value)
    if (
        fallback is not None
        and mutant.what.startswith("expr: [")
        and mutant.what.endswith("(occurrence 2)")
        and f"-> [{fallback.group('window')}]" in mutant.what
    ):
        return FALLBACK_WINDOW
    if "_over_time(" not in mutant.value:
        return None
    return next((reason for pattern, reason in EQUIVALENT_RULES if re.search(pattern, mutant.key)), None)


_STRING = r'"(?:\\.|[^"\\])*"'
_QUOTED = rf"{_STRING}|\{{(?:{_STRING}|[^}}\"])*\}}|\[[^\]]*\]"
_MASKED = re.compile(rf"{_QUOTED}|[A-Za-z_:][A-Za-z0-9_:]*")
_MASKED_QUOTES = re.compile(_QUOTED)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_RANGE = re.compile(r"\[(\d+(?:ms|s|m|h|d|w))\]")
_RECORD_WINDOW = re.compile(r"(slo:(?:(?:sli_error|burn_rate):ratio_rate|sli_(?:bad_)?events:increase))(\d+[smhdw])\b")
_SET = re.compile(r" (and|or|unless) ")
_BRACES = re.compile(rf"\{{((?:{_STRING}|[^}}\"])*)\}}")
_MATCHER = re.compile(rf"\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*{_STRING}\s*")
_BY = re.compile(r"\b(min|max|sum|avg|count)?(\s*)by \(([^)]*)\)")


@dataclass(frozen=True)
class Mutant:
    group: str
    index: int  # the rule's position in its group
    rule: str  # alert or record name
    what: str  # e.g. "expr: 5 -> 5.1"
    field: str  # "expr" or "for"
    value: str  # the mutated field

    @property
    def key(self) -> str:
        return f"{self.group}[{self.index}] {self.rule}: {self.what}"


def _masked(expr: str, pattern: re.Pattern[str] = _MASKED) -> str:
    """`expr` with strings, matchers, ranges (and names) blanked out, so numbers and operators are found only where
    they are numbers and operators."""
    return pattern.sub(lambda m: "#" * len(m.group(0)), expr)


def _moved(value: float, up: bool) -> str:
    if value == 0:
        return "1" if up else "-1"
    return number(value * (1 + STEP if up else 1 - STEP))


def _window(text: str, factor: float) -> str:
    return format_duration(duration_seconds(text) * factor)


def expr_mutations(expr: str) -> Iterator[tuple[str, str]]:
    """(description, mutated expression) of every single mutation of `expr`."""
    masked = _masked(expr)
    for match in _NUMBER.finditer(masked):
        literal = expr[match.start() : match.end()]
        for up in (True, False):
            moved = _moved(float(literal), up)
            yield f"{literal} -> {moved}", expr[: match.start()] + moved + expr[match.end() :]
    for match in _RANGE.finditer(expr):
        for factor in (0.5, 2):
            changed = f"[{_window(match.group(1), factor)}]"
            yield f"{match.group(0)} -> {changed}", expr[: match.start()] + changed + expr[match.end() :]
    for match in _RECORD_WINDOW.finditer(expr):
        windows = list(SLI_WINDOWS)
        if match.group(2) not in windows:
            continue
        at = windows.index(match.group(2))
        for other in {windows[max(at - 1, 0)], windows[min(at + 1, len(windows) - 1)]} - {match.group(2)}:
            changed = match.group(1) + other
            yield f"{match.group(0)} -> {changed}", expr[: match.start()] + changed + expr[match.end() :]
    for match in _SET.finditer(_masked(expr, _MASKED_QUOTES)):
        for other in {"and", "or", "unless"} - {match.group(1)}:
            yield f"{match.group(1)} -> {other}", expr[: match.start()] + f" {other} " + expr[match.end() :]
    for match in _BRACES.finditer(expr):
        matchers = [m.group(0).strip() for m in _MATCHER.finditer(match.group(1))]
        for dropped in matchers:
            rest = [m for m in matchers if m != dropped]
            braces = "{" + ", ".join(rest) + "}" if rest else ""
            yield f"drop {dropped}", expr[: match.start()] + braces + expr[match.end() :]
    for match in _BY.finditer(expr):
        labels = [label.strip() for label in match.group(3).split(",") if label.strip()]
        for dropped in labels:
            rest = ", ".join(label for label in labels if label != dropped)
            changed = f"{match.group(1) or ''}{match.group(2)}by ({rest})"
            yield f"by ({', '.join(labels)}): drop {dropped}", expr[: match.start()] + changed + expr[match.end() :]
        swap = {"min": "max", "max": "min"}.get(match.group(1) or "")
        if swap:
            changed = f"{swap}{match.group(2)}by ({match.group(3)})"
            yield f"{match.group(1)} -> {swap}", expr[: match.start()] + changed + expr[match.end() :]


def mutants(rules: dict[str, Any]) -> list[Mutant]:
    """Every valid single mutation of a rule file, in file order."""
    found: list[Mutant] = []
    for group in rules["groups"]:
        for index, rule in enumerate(group["rules"]):
            name = rule.get("alert") or rule["record"]
            seen: set[str] = set()
            described: dict[str, int] = {}
            for what, changed in expr_mutations(rule["expr"]):
                if changed in seen or changed == rule["expr"]:
                    continue
                seen.add(changed)
                try:
                    promql_parser.parse(changed)
                except ValueError:
                    continue
                described[what] = described.get(what, 0) + 1
                nth = f" (occurrence {described[what]})" if described[what] > 1 else ""
                found.append(Mutant(group["name"], index, name, f"expr: {what}{nth}", "expr", changed))
            if rule.get("for"):
                for factor in (0.5, 2):
                    changed = _window(rule["for"], factor)
                    found.append(Mutant(group["name"], index, name, f"for: {rule['for']} -> {changed}", "for", changed))
    return found


def applied(rules: dict[str, Any], mutant: Mutant) -> dict[str, Any]:
    groups = []
    for group in rules["groups"]:
        rule_list = [dict(rule) for rule in group["rules"]]
        if group["name"] == mutant.group:
            rule_list[mutant.index][mutant.field] = mutant.value
        groups.append({**group, "rules": rule_list})
    return {"groups": groups}


def readers(rules: dict[str, Any], name: str) -> set[str]:
    """`name` and every rule that reads it, directly or through other rules."""
    found = {name}
    changed = True
    while changed:
        changed = False
        for group in rules["groups"]:
            for rule in group["rules"]:
                own = rule.get("alert") or rule["record"]
                if own not in found and any(
                    re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", rule["expr"]) for n in found
                ):
                    found.add(own)
                    changed = True
    return found


@dataclass(frozen=True)
class TestFile:
    path: Path  # relative to the scratch root
    data: dict[str, Any]


def test_files() -> list[TestFile]:
    """Generated tests first (the fine file, then the long one), then the hand-written ones."""
    generated = sorted((RENDERED / "prometheus" / "tests").glob("*_test.yml"), key=lambda p: ("windows" in p.name, p))
    files = [TestFile(Path("rendered/prometheus/tests") / p.name, yaml.safe_load(p.read_text())) for p in generated]
    files += [
        TestFile(Path("tests/promtool") / p.name, yaml.safe_load(p.read_text()))
        for p in sorted(HAND_WRITTEN.glob("*_test.yml"))
    ]
    return files


def _checked_names(case: dict[str, Any]) -> str:
    parts = [check["alertname"] for check in case.get("alert_rule_test", [])]
    parts += [check["expr"] for check in case.get("promql_expr_test", [])]
    return "\n".join(parts)


def relevant(test: TestFile, names: set[str]) -> dict[str, Any] | None:
    """The file with only the groups that check one of `names`, or None when none does."""
    cases = [case for case in test.data["tests"] if any(n in _checked_names(case) for n in names)]
    return {**test.data, "tests": cases} if cases else None


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    killed: bool
    by: str  # the test file that killed it
    seconds: float


def run(mutant: Mutant, rules: dict[str, Any], tests: Sequence[TestFile], promtool: str, scratch: Path) -> Outcome:
    started = time.monotonic()
    shutil.rmtree(scratch, ignore_errors=True)
    rule_path = scratch / "rendered" / "prometheus" / "rules" / RULES
    rule_path.parent.mkdir(parents=True)
    rule_path.write_text(yaml.safe_dump(applied(rules, mutant), sort_keys=False, width=10_000))
    names = readers(rules, mutant.rule)
    for test in tests:
        reduced = relevant(test, names)
        if reduced is None:
            continue
        path = scratch / test.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(reduced, sort_keys=False, width=10_000))
        result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return Outcome(mutant, True, test.path.name, time.monotonic() - started)
    return Outcome(mutant, False, "", time.monotonic() - started)


def sample(found: Sequence[Mutant], size: int) -> list[Mutant]:
    """A fixed, evenly spread sample: the same mutants on every run."""
    if size >= len(found):
        return list(found)
    return [found[round(i * len(found) / size)] for i in range(size)]


@dataclass(frozen=True)
class Report:
    outcomes: tuple[Outcome, ...]

    @property
    def survivors(self) -> list[Mutant]:
        return [o.mutant for o in self.outcomes if not o.killed and equivalent(o.mutant) is None]

    @property
    def equivalent(self) -> list[Mutant]:
        return [o.mutant for o in self.outcomes if not o.killed and equivalent(o.mutant) is not None]

    @property
    def killed(self) -> int:
        return sum(o.killed for o in self.outcomes)

    @property
    def unexplained(self) -> list[Mutant]:
        return [m for m in self.survivors if known_survivor(m) is None]

    def summary(self) -> str:
        total = len(self.outcomes)
        rate = self.killed / total * 100 if total else 100.0
        named = "; ".join(m.key for m in self.survivors) or "none"
        return (
            f"mutants: {self.killed} killed / {total} ({rate:.1f} %), {len(self.equivalent)} equivalent, "
            f"{len(self.survivors)} survivors ({len(self.unexplained)} unexplained): {named}"
        )


def run_all(
    chosen: Sequence[Mutant], rules: dict[str, Any], promtool: str, workers: int, progress: bool = False
) -> Report:
    tests = test_files()
    done: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as root:
        scratches = [Path(root) / f"worker{i}" for i in range(workers)]
        free = list(scratches)

        def one(mutant: Mutant) -> Outcome:
            scratch = free.pop()
            try:
                outcome = run(mutant, rules, tests, promtool, scratch)
            finally:
                free.append(scratch)
            done.append(outcome)
            if progress:
                verdict = f"killed by {outcome.by}" if outcome.killed else "SURVIVED"
                print(f"[{len(done)}/{len(chosen)}] {verdict} ({outcome.seconds:.1f} s): {mutant.key}", flush=True)
            return outcome

        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = tuple(pool.map(one, chosen))
    return Report(outcomes)


def load_rules() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((RENDERED / "prometheus" / "rules" / RULES).read_text())
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.promtool.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="run this many mutants, evenly spread (0: all)")
    parser.add_argument("--workers", type=int, default=2, help="promtool processes at a time (2)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--quiet", action="store_true", help="no line per mutant")
    parser.add_argument("--part", default="1/1", help="run the i-th of n interleaved parts (1/2, 2/2) of the chosen")
    parser.add_argument("--skip", type=argparse.FileType("r"), help="a file of mutant keys (one a line) not to run")
    args = parser.parse_args(argv)
    promtool = shutil.which("promtool")
    if promtool is None:
        print("mutants: promtool is not on PATH", file=sys.stderr)
        return 2
    rules = load_rules()
    found = mutants(rules)
    if args.list:
        print("\n".join(m.key for m in found))
        return 0
    chosen = sample(found, args.sample) if args.sample else found
    if args.skip is not None:
        done = {line.strip() for line in args.skip}
        chosen = [m for m in chosen if m.key not in done]
    part, parts = (int(x) for x in args.part.split("/"))
    chosen = chosen[part - 1 :: parts]
    started = time.monotonic()
    report = run_all(chosen, rules, promtool, args.workers, progress=not args.quiet)
    for mutant in report.equivalent:
        print(f"equivalent: {mutant.key} ({equivalent(mutant)})")
    for mutant in report.survivors:
        print(f"SURVIVOR: {mutant.key} ({known_survivor(mutant) or 'UNEXPLAINED'})")
    print(f"{report.summary()} in {time.monotonic() - started:.0f} s")
    return 1 if report.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
