"""`python -m generators [--specs DIR] [--out DIR] [--check] [--profile production|test]` (`make render`), and
`python -m generators validate [PATH...]` (generators.validate_command)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from generators import validate_command
from generators.output import OutputError, differences, read_tree, write
from generators.profile import PRODUCTION, PROFILES
from generators.promql import GeneratorError
from generators.render import REPO, display, render
from slos.errors import SpecError
from slos.loader import DEFAULT_SPECS_DIR, load_specs

DEFAULT_OUT = REPO / "rendered"
EPILOG = """\
profiles:
  production  what rendered/ holds: the specs' windows and for:, scrape and evaluation every 30s (the default)
  test        for end-to-end tests against a real Prometheus, never committed: rate windows divided by 15
              (5m -> 20s, 1h -> 4m, 30d -> 2d), for: divided by 60 (10m -> 10s), scrape and evaluation every 1s;
              burn-rate factors unchanged; record names and window labels keep the production windows

Nothing in --out changes unless every spec validates and every file renders; --check renders into a temporary
folder and exits 1 listing the files that differ from --out.

`python -m generators validate [PATH...]` checks spec files without writing (see its --help).
"""


def _command(specs: Path, out: Path, profile: str) -> str:
    if specs.resolve() == DEFAULT_SPECS_DIR.resolve() and profile == PRODUCTION.name:
        return "make render"
    parts = ["python -m generators"]
    if specs.resolve() != DEFAULT_SPECS_DIR.resolve():
        parts.append(f"--specs {display(specs)}")
    if profile != PRODUCTION.name:
        parts.append(f"--profile {profile}")
    return " ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["validate"]:
        return validate_command.main(arguments[1:])
    parser = argparse.ArgumentParser(
        prog="python -m generators",
        description="Compile the SLO specs into Prometheus rules and tests, prometheus.yml, Alertmanager config, "
        "Grafana dashboards and Kubernetes resources.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS_DIR, help="folder of spec files (slos/specs)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (rendered/)")
    parser.add_argument("--check", action="store_true", help="fail when --out differs from what the specs generate")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=PRODUCTION.name, help="see below")
    parser.add_argument(
        "--retention",
        type=validate_command.duration,
        help="the TSDB retention of the Prometheus that evaluates the rules (the profile's: 30d in production); "
        "a spec whose period is longer fails to render",
    )
    args = parser.parse_args(arguments)
    profile = PROFILES[args.profile]
    if not profile.committed and args.out.resolve() == DEFAULT_OUT.resolve():
        parser.error(f"the {profile.name} profile is never written to {display(DEFAULT_OUT)}: give --out")
    try:
        files = render(load_specs(args.specs), profile, _command(args.specs, args.out, profile.name), args.retention)
        if args.check:
            return _check(files, args.out)
        before = read_tree(args.out)
        changed = sorted(path for path, text in files.items() if before.get(path) != text)
        removed = sorted(set(before) - set(files))
        if changed or removed:
            write(files, args.out)
    except SpecError as exc:
        print(f"generators: the specs are invalid, nothing was written:\n{exc}", file=sys.stderr)
        return 2
    except (OutputError, GeneratorError) as exc:
        print(f"generators: {exc}", file=sys.stderr)
        return 1
    print(_written(files, changed, removed, args.out, profile.name))
    return 0


def _written(files: dict[str, str], changed: list[str], removed: list[str], out: Path, profile: str) -> str:
    """What a render did to `out`: which files it changed, added or removed, or that none changed."""
    if not changed and not removed:
        return f"generators: {out} is unchanged, all {len(files)} files up to date ({profile} profile)"
    lines = [f"generators: {len(changed) + len(removed)} of {len(files)} files changed in {out} ({profile} profile):"]
    lines.extend(f"  {path}" for path in changed)
    lines.extend(f"  {path} (removed)" for path in removed)
    return "\n".join(lines)


def _check(files: dict[str, str], out: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="generators-check-") as scratch:
        fresh = Path(scratch) / "rendered"
        write(files, fresh)
        found = differences(read_tree(fresh), out)
    if found:
        print(f"generators: {out} is out of date ({len(found)} files); run `make render`:", file=sys.stderr)
        for difference in found:
            print(difference, file=sys.stderr)
        return 1
    print(f"generators: {out} is up to date ({len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
