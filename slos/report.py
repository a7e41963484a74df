"""`python -m slos report`: the error budget and burn rates of every budgeted SLO, read from a Prometheus that
evaluates the rendered rules, written as one HTML page a weekly review can open without Grafana.

    report.py              the command: arguments, progress, exit codes
    report_prometheus.py   the HTTP API reader (query_range) and its one-line errors
    report_data.py         what one SLO shows: the series of its records and its status
    report_charts.py       one SVG chart per SLO (matplotlib)
    report_html.py         the self-contained page

Exit codes: 0 the page is written (an SLO without data says "no data" on it); 2 nothing is written: a bad argument,
a Prometheus that cannot be read, invalid specs, an output folder that cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from slos.errors import SpecError
from slos.loader import DEFAULT_SPECS_DIR, load_specs
from slos.models import SLO, LatencyBudgetObjective, RatioObjective, duration_seconds
from slos.report_data import SloReport, read_slo
from slos.report_prometheus import PrometheusError, PrometheusReader, TimeRange

PAGE_NAME = "slo-report.html"
DAY_S = 86400.0
DEFAULT_POINTS = 400  # per series when --step is not given: smooth at a page's width, far under the API's limit
MAX_POINTS = 11_000  # per series: Prometheus refuses a query_range that asks for more
PROG = "python -m slos report"
EPILOG = f"""\
It reads, per budgeted SLO of --specs, the recording rules `python -m generators` renders: the error budget
remaining, the burn rate over each alert pair's windows and the objective. The page ({PAGE_NAME} in --out) holds
one chart per SLO: the budget remaining over the range, the burn rate of each pair's long window with the factor
that fires it, and a status: healthy, burning (the pairs over their factor on both windows now), budget exhausted,
or no data. It loads nothing from the network when opened: mail it or attach it as it is.

exit codes: 0 written; 2 nothing written (bad argument, Prometheus unreachable or refusing, invalid specs,
--out not writable)
"""


class ReportError(Exception):
    """Nothing can be written: one line for the reader."""


def duration(text: str) -> float:
    try:
        return duration_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a Prometheus duration: {text!r} (e.g. 30s, 1h, 7d)") from None


def moment(text: str) -> float:
    """An ISO 8601 time with its offset (2026-11-30T00:00:00Z) as a unix time."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-30T00:00:00Z)") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset: add Z for UTC or +01:00")
    return when.timestamp()


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog=PROG,
        description="Write an HTML page of every budgeted SLO's error budget and burn rates, read from Prometheus.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--prometheus", required=True, metavar="URL", help="e.g. http://127.0.0.1:9090")
    command.add_argument("--out", required=True, type=Path, metavar="DIR", help=f"folder that receives {PAGE_NAME}")
    longest = "how far back (default: the longest period of the SLOs)"
    command.add_argument("--range", type=duration, metavar="DURATION", help=longest)
    step = f"one point every DURATION (default: the range / {DEFAULT_POINTS})"
    command.add_argument("--step", type=duration, metavar="DURATION", help=step)
    end = "the end of the range, e.g. 2026-11-30T00:00:00Z for a weekly report that can be made again (default: now)"
    command.add_argument("--end", type=moment, metavar="TIME", help=end)
    specs = "folder of spec files (slos/specs)"
    command.add_argument("--specs", type=Path, default=DEFAULT_SPECS_DIR, metavar="DIR", help=specs)
    return command


def time_range(range_s: float, step_s: float | None, end: float) -> TimeRange:
    step = step_s if step_s is not None else max(1.0, float(int(range_s / DEFAULT_POINTS)))
    if range_s / step > MAX_POINTS:
        raise ReportError(
            f"--range / --step asks for {range_s / step:,.0f} points per series, Prometheus answers at most "
            f"{MAX_POINTS:,}: give a --step of {range_s / MAX_POINTS:.0f}s or more"
        )
    return TimeRange(start=end - range_s, end=end, step=step)


def writable_folder(out: Path) -> Path:
    """`out`, created if missing, once a file could be made in it; ReportError otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".slo-report-"):
            pass
    except OSError as exc:
        raise ReportError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
    return out


def write_page(out: Path, text: str) -> Path:
    """Write the page whole or not at all (a temporary file renamed over it)."""
    target = out / PAGE_NAME
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=out, prefix=".slo-report-", delete=False) as file:
        file.write(text)
    os.replace(file.name, target)
    return target


def budgeted_slos(specs: Path) -> list[SLO]:
    try:
        return [slo for slo in load_specs(specs).slos if slo.budgeted]
    except SpecError as exc:
        raise ReportError(f"the specs of {specs} are invalid:\n{exc}") from None


def longest_period_s(slos: Sequence[SLO]) -> float:
    """The range the report covers by default: the longest period of `slos` (one day when there is none)."""
    objectives = [slo.objective for slo in slos]
    periods = [o.period for o in objectives if isinstance(o, RatioObjective | LatencyBudgetObjective)]
    return max((duration_seconds(period) for period in periods), default=DAY_S)


def read_reports(reader: PrometheusReader, slos: Sequence[SLO], span: TimeRange) -> list[SloReport]:
    reports = []
    for index, slo in enumerate(slos, 1):
        report = read_slo(reader, slo, span)
        left = "" if report.budget_left is None else f", {report.budget_left * 100:.2f} % of the error budget left"
        print(f"slos report: [{index}/{len(slos)}] {slo.name}: {report.status}{left}", flush=True)
        reports.append(report)
    return reports


def run(args: argparse.Namespace) -> Path:
    try:
        from slos.report_charts import slo_chart
    except ModuleNotFoundError as exc:
        raise ReportError(f"needs {exc.name}: pip install 'featurestore-monitoring[report]'") from None
    from slos.report_html import page

    reader = PrometheusReader(args.prometheus)
    out = writable_folder(args.out)
    slos = budgeted_slos(args.specs)
    span = time_range(args.range or longest_period_s(slos), args.step, time.time() if args.end is None else args.end)
    reports = read_reports(reader, slos, span)
    charts = [slo_chart(report) for report in reports]
    return write_page(out, page(reports, charts, span, reader.url))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        written = run(args)
    except (ReportError, PrometheusError) as exc:
        print(f"slos report: {exc}", file=sys.stderr)
        return 2
    print(f"slos report: wrote {written}")
    return 0
