"""Mutation testing of the rendered rules: do the promtool tests notice when a rule means something else?

Each mutant changes one thing in one rule of a target's rule file (tests/promtool/mutant_targets.py: the featurestore
rules, the time-slice rules of tests/promtool/specs/ and of the OpenSLO examples, the per-cluster and global rules):

    number       every numeric literal of an expression 2 % up and 2 % down (0 becomes 1 and -1)
    range        every range window halved and doubled (`[1h]` -> `[30m]`, `[2h]`)
    record       every reference to a windowed record moved to the neighbouring window (`ratio_rate5m` -> `…30m`)
    set          every `and` / `or` / `unless` turned into each of the other two
    matcher      every label matcher dropped
    by           every label of every `by (…)` dropped; `min` and `max` aggregations swapped
    over_time    every `avg_over_time` turned into `min_over_time` and `max_over_time`, and back
    bool         every `op bool` comparison: `>=` and `>` (`<=` and `<`) swapped, `bool` dropped
    for          every `for:` halved and doubled

and is run against the target's promtool test files (for the featurestore rules: `rendered/prometheus/tests/*.yml`
and `tests/promtool/*_test.yml`), restricted to the test groups that check the mutated rule or a rule reading it. A
mutant is killed when promtool fails. `equivalent` names the mutants no input can tell apart, each with the reason;
the keys of every target but `featurestore` start with the target's name.

    python -m tests.promtool.mutants [--target NAME] [--sample N] [--workers 2]     (make mutants runs them all)

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
from collections.abc import Iterator, Mapping, Sequence
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
from tests.promtool.mutant_survivors import equivalent, known_survivor
from tests.promtool.mutant_targets import DEFAULT, TARGETS, Target, TestFile
from tests.promtool.mutant_targets import load as load_targets
from tests.promtool.parallel import lean_go_runtime

STEP = 0.02  # numbers move this share up and down

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
_OVER_TIME = re.compile(r"\b(avg|min|max)_over_time\(")
_BOOL = re.compile(r"(>=|<=|>|<|==|!=) bool ")
_STRICT = {">=": ">", ">": ">=", "<=": "<", "<": "<="}


@dataclass(frozen=True)
class Mutant:
    group: str
    index: int  # the rule's position in its group
    rule: str  # alert or record name
    what: str  # e.g. "expr: 5 -> 5.1"
    field: str  # "expr" or "for"
    value: str  # the mutated field
    target: str = DEFAULT
    tier: str = ""  # a burn-rate alert's burnrate_tier label

    @property
    def key(self) -> str:
        own = "" if self.target == DEFAULT else f"{self.target}: "
        return f"{own}{self.group}[{self.index}] {self.rule}: {self.what}"


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
        for other in sorted(
            {windows[max(at - 1, 0)], windows[min(at + 1, len(windows) - 1)]} - {match.group(2)}, key=windows.index
        ):
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
    yield from _comparison_mutations(expr)


def _comparison_mutations(expr: str) -> Iterator[tuple[str, str]]:
    """The `_over_time` aggregations swapped, and each `op bool` made strict or not, or filtering."""
    for match in _OVER_TIME.finditer(_masked(expr, _MASKED_QUOTES)):
        kinds = {"avg": ("min", "max"), "min": ("avg",), "max": ("avg",)}[match.group(1)]
        for other in kinds:
            changed = f"{other}_over_time("
            yield (
                f"{match.group(1)}_over_time -> {other}_over_time",
                expr[: match.start()] + changed + expr[match.end() :],
            )
    for match in _BOOL.finditer(_masked(expr, _MASKED_QUOTES)):
        op = match.group(1)
        if op in _STRICT:
            changed = f"{_STRICT[op]} bool "
            yield f"{op} bool -> {_STRICT[op]} bool", expr[: match.start()] + changed + expr[match.end() :]
        yield f"{op} bool -> {op}", expr[: match.start()] + f"{op} " + expr[match.end() :]


def mutants(rules: dict[str, Any], target: str = DEFAULT) -> list[Mutant]:
    """Every valid single mutation of a target's rule file, in file order."""
    found: list[Mutant] = []
    for group in rules["groups"]:
        for index, rule in enumerate(group["rules"]):
            name = rule.get("alert") or rule["record"]
            tier = rule.get("labels", {}).get("burnrate_tier", "")
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
                found.append(Mutant(group["name"], index, name, f"expr: {what}{nth}", "expr", changed, target, tier))
            if rule.get("for"):
                for factor in (0.5, 2):
                    changed = _window(rule["for"], factor)
                    what = f"for: {rule['for']} -> {changed}"
                    found.append(Mutant(group["name"], index, name, what, "for", changed, target, tier))
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


def run(mutant: Mutant, target: Target, promtool: str, scratch: Path) -> Outcome:
    started = time.monotonic()
    shutil.rmtree(scratch, ignore_errors=True)
    rule_path = scratch / target.rule_path
    rule_path.parent.mkdir(parents=True)
    rule_path.write_text(yaml.safe_dump(applied(target.rules, mutant), sort_keys=False, width=10_000))
    names = readers(target.rules, mutant.rule)
    for test in target.tests:
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

    @property
    def targets(self) -> list[str]:
        return list(dict.fromkeys(o.mutant.target for o in self.outcomes))

    def of(self, target: str) -> Report:
        return Report(tuple(o for o in self.outcomes if o.mutant.target == target))

    def summary(self, label: str = "mutants") -> str:
        total = len(self.outcomes)
        rate = self.killed / total * 100 if total else 100.0
        named = "; ".join(m.key for m in self.survivors) or "none"
        return (
            f"{label}: {self.killed} killed / {total} ({rate:.2f} %), {len(self.equivalent)} equivalent, "
            f"{len(self.survivors)} survivors ({len(self.unexplained)} unexplained): {named}"
        )

    def summaries(self) -> list[str]:
        """One line per target, then the overall one."""
        return [self.of(target).summary(target) for target in self.targets] + [self.summary("all targets")]


def run_all(
    chosen: Sequence[Mutant], targets: Mapping[str, Target], promtool: str, workers: int, progress: bool = False
) -> Report:
    """Run the mutants (of any of `targets`), `workers` promtool processes at a time."""
    done: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as root:
        scratches = [Path(root) / f"worker{i}" for i in range(workers)]
        free = list(scratches)

        def one(mutant: Mutant) -> Outcome:
            scratch = free.pop()
            try:
                outcome = run(mutant, targets[mutant.target], promtool, scratch)
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


def every_mutant(targets: Mapping[str, Target]) -> list[Mutant]:
    """The mutants of every target, target by target."""
    return [m for name, target in targets.items() for m in mutants(target.rules, name)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.promtool.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", choices=list(TARGETS), help="mutate this target (default: all)")
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
    targets, missing = load_targets(args.target)
    for name, reason in missing.items():
        print(f"mutants: target {name} left out: {reason}", file=sys.stderr)
    found = every_mutant(targets)
    if args.list:
        print("\n".join(m.key for m in found))
        return 0
    chosen = sample(found, args.sample) if args.sample else found
    if args.skip is not None:
        done = {line.strip() for line in args.skip}
        chosen = [m for m in chosen if m.key not in done]
    part, parts = (int(x) for x in args.part.split("/"))
    chosen = chosen[part - 1 :: parts]
    lean_go_runtime()
    started = time.monotonic()
    report = run_all(chosen, targets, promtool, args.workers, progress=not args.quiet)
    for mutant in report.equivalent:
        print(f"equivalent: {mutant.key} ({equivalent(mutant)})")
    for mutant in report.survivors:
        print(f"SURVIVOR: {mutant.key} ({known_survivor(mutant) or 'UNEXPLAINED'})")
    print("\n".join(report.summaries()) + f" in {time.monotonic() - started:.0f} s")
    return 1 if report.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
