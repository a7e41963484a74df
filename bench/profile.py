"""`make profile`: a flame graph of the publish path, so the next person sees where a publish's CPU goes (with
`--hits F`, of the floor's read mix instead: lookups, a hit on a key published before with probability F).

A child process publishes new frames in a loop (one worker, the load generator's 64-row frame, a scratch schema on
PostgreSQL, or DuckDB with `--backend duckdb`) while py-spy samples it; py-spy writes an SVG flame graph, and the
functions that spend the most samples themselves under `FeatureStore.publish` are printed. py-spy samples a thread
whenever it is not idle, so time blocked inside a system call (fsync, the wait for the server's answer) is drawn
under the Python frame that made it. The output folder is ignored by git.

    python -m bench.profile [--publishes 3000] [--hits 0.9] [--out .profile] [--backend postgresql] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import html
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from featurestore import FeatureStore
from featurestore.loadtest.schema import scratch_schema
from featurestore.loadtest.worker import frame
from featurestore.metrics import BACKEND_DUCKDB, BACKEND_POSTGRESQL

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_LINE = re.compile(r":\d+\)$")  # a frame's line number: functions are counted whole
ROOT_FRAME = "FeatureStore.publish (featurestore/store.py"
LOOKUP_ROOT_FRAME = "FeatureStore.get_or_compute (featurestore/store.py"
# Each frame of py-spy's SVG: `<title>function (file:line) (N samples, P%)</title>` then
# `<rect ... y=".." fg:x=".." fg:w="..">`; a deeper frame has a larger y and lies within its caller's
# [fg:x, fg:x + fg:w).
_FRAME = re.compile(
    r'<title>(?P<name>.+?) \([\d,]+ samples?, [\d.]+%\)</title><rect [^>]*?y="(?P<y>\d+)"[^>]*?'
    r'fg:x="(?P<x>\d+)" fg:w="(?P<w>\d+)"'
)


def publish_loop(publishes: int, backend: str, dsn: str | None) -> None:
    """Publish `publishes` new keys after 100 unmeasured ones; prints the client CPU per publish."""
    with tempfile.TemporaryDirectory(prefix="profile-") as cache, FeatureStore.open(dsn, Path(cache)) as store:
        table = frame(0)
        for sequence in range(-100, publishes):
            if sequence == 0:
                started = os.times()
            store.publish(f"S{sequence % 64:02d}", "profile", {"seq": sequence}, table)
        ended = os.times()
        cpu_ms = (ended.user + ended.system - started.user - started.system) * 1000.0 / publishes
        print(f"profile: {publishes} publishes on {backend}, client CPU {cpu_ms:.3f} ms per publish", flush=True)


def lookup_loop(lookups: int, backend: str, dsn: str | None, hits: float) -> None:
    """The floor's read mix in one worker: `lookups` get_or_compute calls after 100 unmeasured ones, each on a key
    published before with probability `hits` (a hit), else on a new key (a miss: computed and published); prints the
    client CPU per lookup."""
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="profile-") as cache, FeatureStore.open(dsn, Path(cache)) as store:
        table = frame(0)
        published: list[int] = []
        for sequence in range(-100, lookups):
            if sequence == 0:
                started = os.times()
            key = rng.choice(published) if published and rng.random() < hits else sequence
            if key == sequence:
                published.append(key)
            store.get_or_compute(f"S{key % 64:02d}", "profile", {"seq": key}, lambda: table)
        ended = os.times()
        cpu_ms = (ended.user + ended.system - started.user - started.system) * 1000.0 / lookups
        print(f"profile: {lookups} lookups at {hits:.0%} hits on {backend}, client CPU {cpu_ms:.3f} ms per lookup")


def top_frames(svg: str, count: int, root: str = ROOT_FRAME) -> list[tuple[str, int]]:
    """The `count` functions that spend the most samples themselves (not in their callees) inside `root`
    (`FeatureStore.publish` by default); a function's line numbers are merged."""
    frames = _frames(svg)
    roots = [(y, start, end) for name, y, start, end in frames if root in name]
    inside = [
        frame for frame in frames if any(frame[1] > ry and rs <= frame[2] and frame[3] <= re_ for ry, rs, re_ in roots)
    ]
    rows = sorted({y for _name, y, _start, _end in frames})
    deeper = dict(itertools.pairwise(rows))
    own: dict[str, int] = {}
    for name, y, start, end in inside:
        callees = sum(e - s for _n, cy, s, e in inside if cy == deeper.get(y) and start <= s and e <= end)
        key = _LINE.sub(")", name)
        own[key] = own.get(key, 0) + end - start - callees
    return sorted(own.items(), key=lambda item: -item[1])[:count]


def _frames(svg: str) -> list[tuple[str, int, int, int]]:
    """(name, depth y, first sample, end sample) of every frame drawn in a py-spy SVG."""
    return [
        (html.unescape(m["name"]), int(m["y"]), int(m["x"]), int(m["x"]) + int(m["w"])) for m in _FRAME.finditer(svg)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--publishes", type=int, default=3000, help="publishes (or lookups) sampled (default: 3000)")
    parser.add_argument(
        "--hits", type=float, default=0.0, help="0 < F < 1: profile lookups at this hit rate instead of publishes"
    )
    parser.add_argument("--out", type=Path, default=Path(".profile"), help="folder for the SVG (default: .profile)")
    parser.add_argument("--backend", choices=(BACKEND_POSTGRESQL, BACKEND_DUCKDB), default=BACKEND_POSTGRESQL)
    parser.add_argument("--dsn", help=f"PostgreSQL DSN (default: $FEATURESTORE_PG_DSN, else {DEFAULT_DSN})")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (default: 250)")
    parser.add_argument("--top", type=int, default=5, help="frames to print (default: 5)")
    parser.add_argument("--loop", action="store_true", help=argparse.SUPPRESS)  # the sampled child
    args = parser.parse_args(argv)
    if args.publishes < 1:
        parser.error("--publishes must be at least 1")
    if not 0 <= args.hits < 1:
        parser.error("--hits must be at least 0 and below 1")
    dsn = args.dsn or os.environ.get("FEATURESTORE_PG_DSN") or DEFAULT_DSN
    if args.loop:
        store_dsn = dsn if args.backend == BACKEND_POSTGRESQL else None
        if args.hits > 0:
            lookup_loop(args.publishes, args.backend, store_dsn, args.hits)
        else:
            publish_loop(args.publishes, args.backend, store_dsn)
        return 0
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("profile: py-spy is not installed (pip install py-spy, or make install)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    kind, root = ("lookups", LOOKUP_ROOT_FRAME) if args.hits > 0 else ("publish", ROOT_FRAME)
    svg_path = args.out / f"{kind}-{args.backend}-{time.strftime('%Y%m%dT%H%M%S')}.svg"
    child = [sys.executable, "-m", "bench.profile", "--loop", "--publishes", str(args.publishes)]
    child += ["--backend", args.backend, "--hits", str(args.hits)]
    if args.backend == BACKEND_POSTGRESQL:
        with scratch_schema(dsn, prefix="profile") as schema_dsn:
            code = _record(py_spy, args.rate, svg_path, [*child, "--dsn", schema_dsn])
    else:
        code = _record(py_spy, args.rate, svg_path, child)
    if code != 0:
        return code
    print(f"profile: flame graph in {svg_path}")
    svg = svg_path.read_text()
    inside = sum(end - start for name, _y, start, end in _frames(svg) if root in name)
    print(f"profile: top {args.top} functions inside {root.split(' ')[0]} ({inside} samples):")
    for name, samples in top_frames(svg, args.top, root):
        print(f"  {100.0 * samples / max(inside, 1):5.1f} %  {name}")
    return 0


def _record(py_spy: str, rate: int, svg_path: Path, child: list[str]) -> int:
    command = [py_spy, "record", "--rate", str(rate), "--format", "flamegraph", "--output", str(svg_path), "--"]
    return subprocess.run([*command, *child], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
