"""The SLO report as one self-contained HTML page: a summary table, then one section per SLO with its inline SVG chart.

Nothing is fetched when the page opens (no script, no stylesheet or font link, no image URL), so it can be mailed or
attached to a weekly review as it is. Every value that came from a spec or from Prometheus is HTML-escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from slos.report_data import SloReport
from slos.report_prometheus import TimeRange

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
.healthy { color: #2ca02c; } .burning, .exhausted { color: #d62728; font-weight: bold; } .nodata { color: #777; }
section { margin-bottom: 3em; } svg { width: 100%; height: auto; }
"""


STATUS_CLASSES = {"healthy": "healthy", "burning": "burning", "budget": "exhausted", "no": "nodata"}


def _status_class(status: str) -> str:
    return STATUS_CLASSES.get(status.split(" ")[0], "")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def _utc(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _summary(reports: Sequence[SloReport]) -> str:
    rows = "\n".join(
        f'<tr><td><a href="#{escape(r.name)}">{escape(r.name)}</a></td><td>{_percent(r.target)} over '
        f'{escape(r.period)}</td><td>{_percent(r.budget_left)}</td><td class="{_status_class(r.status)}">'
        f"{escape(r.status)}</td></tr>"
        for r in reports
    )
    head = "<tr><th>SLO</th><th>objective</th><th>error budget left</th><th>status</th></tr>"
    return f"<table>\n{head}\n{rows}\n</table>"


def _objective_note(report: SloReport) -> str:
    if report.recorded_target is None:
        return "Prometheus records no objective for this SLO: are the rendered rules loaded?"
    if abs(report.recorded_target - report.target) > 1e-12:
        return f"Prometheus records an objective of {_percent(report.recorded_target)}, not the spec's."
    return "Prometheus records the same objective."


def _section(report: SloReport, chart: str) -> str:
    return (
        f'<section id="{escape(report.name)}">\n<h2>{escape(report.name)}</h2>\n'
        f"<p>Objective {_percent(report.target)} over {escape(report.period)} "
        f"(error budget {_percent(1 - report.target)}). {escape(_objective_note(report))} "
        f'Status: <span class="{_status_class(report.status)}">{escape(report.status)}</span>; '
        f"error budget left: {_percent(report.budget_left)}.</p>\n{chart}\n</section>"
    )


def page(reports: Sequence[SloReport], charts: Sequence[str], span: TimeRange, source: str) -> str:
    """The whole page; `charts[i]` is the SVG element of `reports[i]`."""
    sections = "\n".join(_section(report, chart) for report, chart in zip(reports, charts, strict=True))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>SLO report</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>SLO report</h1>\n"
        f"<p>From {_utc(span.start)} to {_utc(span.end)}, one point every {span.step:g} s, read from "
        f"<code>{escape(source)}</code>. Error budget remaining: 100 % at the start of a period, 0 % when it is "
        "spent. Burn rate: 1 spends the budget exactly over the period; an alert pair fires when both of its "
        "windows burn faster than its factor.</p>\n"
        f"{_summary(reports)}\n{sections}\n</body>\n</html>\n"
    )
