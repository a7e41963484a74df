"""One SVG chart per SLO (matplotlib, no pyplot state): the error budget remaining over the range above, the burn rate
of each alert pair's long window below, with the factor that fires the pair dashed in the same colour.

Each line carries an SVG id (`budget-0`, `burn-1h-0`: the record, the window, the series' rank) that tests find it by.
Text stays text in the SVG (`svg.fonttype: none`), so the page is searchable and small; matplotlib escapes it as
XML. Label values reach the chart as literal text (`text.parse_math: false`): a `$` would otherwise start
matplotlib's math mode.
"""

from __future__ import annotations

import io
from datetime import UTC

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from slos.report_data import NO_DATA, SloReport
from slos.report_prometheus import Series

FIGURE_INCHES = (10.0, 6.4)
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")

DAY_S = 86400.0


def _days(series: Series) -> list[float]:
    """Matplotlib's dates: days since its epoch, 1970-01-01 UTC."""
    return [stamp / DAY_S for stamp, _ in series.points]


def _no_data(axes: Axes, what: str) -> None:
    axes.text(0.5, 0.5, f"{NO_DATA}: {what}", ha="center", va="center", transform=axes.transAxes, color="#777777")
    axes.set_yticks([])


def _legend_label(prefix: str, series: Series, many: bool) -> str:
    return f"{prefix} ({series.legend()})" if many else prefix


def _budget(axes: Axes, report: SloReport) -> None:
    axes.set_title("Error budget remaining", loc="left", fontsize=10)
    plotted = [series for series in report.budget_remaining if series.points]
    if not plotted:
        _no_data(axes, "no error budget remaining recorded")
        return
    for index, series in enumerate(plotted):
        values = [value * 100 for _, value in series.points]
        label = _legend_label("remaining", series, len(plotted) > 1)
        colour = COLOURS[index % len(COLOURS)]
        axes.plot(_days(series), values, color=colour, label=label, linewidth=1.6, gid=f"budget-{index}")
    axes.axhline(0, color="#d62728", linewidth=1, label="budget spent")
    axes.set_ylabel("% of the budget")
    axes.legend(loc="lower left", fontsize=8)
    axes.grid(True, alpha=0.3)


def _burn(axes: Axes, report: SloReport) -> None:
    axes.set_title("Burn rate (1 = spends the budget exactly over the period)", loc="left", fontsize=10)
    if not any(series.points for burn in report.burns for series in burn.long):
        _no_data(axes, "no burn rate recorded")
        return
    axes.axhline(1, color="#555555", linewidth=1, label="1x sustainable")
    for index, burn in enumerate(report.burns):
        colour = COLOURS[index % len(COLOURS)]
        plotted = [series for series in burn.long if series.points]
        for number, series in enumerate(plotted):
            label = _legend_label(f"{burn.pair.long} window", series, len(plotted) > 1)
            values = [value for _, value in series.points]
            gid = f"burn-{burn.pair.long}-{number}"
            axes.plot(_days(series), values, color=colour, linewidth=1.4, label=label, gid=gid)
        factor = f"{burn.pair.name} fires over {burn.pair.factor:g}x"
        axes.axhline(burn.pair.factor, color=colour, linestyle="--", linewidth=1, label=factor)
    axes.set_ylabel("burn rate (x)")
    axes.legend(loc="upper left", fontsize=8, ncols=2)
    axes.grid(True, alpha=0.3)


def slo_chart(report: SloReport) -> str:
    """The SVG element (no XML prologue) of `report`'s chart."""
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "slo-report", "text.parse_math": False}):
        figure = Figure(figsize=FIGURE_INCHES, layout="constrained")
        top, bottom = figure.subplots(2, 1, sharex=True)
        _budget(top, report)
        _burn(bottom, report)
        for axes in (top, bottom):
            if axes.lines:
                axes.xaxis_date(tz=UTC)
        figure.suptitle(f"{report.name}: {report.status}", x=0.01, ha="left", fontsize=12)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _element(buffer.getvalue())


def _element(document: str) -> str:
    start = document.find("<svg")
    return document[start:] if start >= 0 else document
