"""grafanalib panels as the dashboards use them: Prometheus targets on the `$datasource` variable, thresholds in
Grafana's current `{color, value}` form, and a grid layout computed from rows of (panel, width, height).

No panel sets `maxDataPoints` (grafanalib's default is 100, which samples a 24h view every ~14 minutes and hides
the spikes the 5m rules alert on): Grafana then takes one point per pixel, never finer than the scrape interval.

grafanalib 0.7.1 writes the base threshold step as the *string* "null" when given `Threshold` objects; the steps here
are plain dicts, so the base step's value is JSON `null` as Grafana's schema has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import attr
from grafanalib import core as g

from generators.grafana.queries import DATASOURCE_VARIABLE

GRID_WIDTH = 24
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}

Panel = Any  # a grafanalib panel (grafanalib has no type hints)
Step = tuple[str, float | None]


def steps(*pairs: Step) -> list[dict[str, Any]]:
    """Threshold steps from the lowest up: the first pair's value is None (it applies below the next one)."""
    assert pairs and pairs[0][1] is None, "the base step has no value"
    return [{"color": color, "value": value} for color, value in pairs]


def target(expr: str, legend: str = "", ref: str = "A", *, table: bool = False) -> Any:
    """A Prometheus query; `table=True` makes it an instant query returning one row per series."""
    return g.Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        datasource=DATASOURCE,
        instant=table,
        format=g.TABLE_TARGET_FORMAT if table else g.TIME_SERIES_TARGET_FORMAT,
        intervalFactor=1,
    )


def targets(*queries: tuple[str, str]) -> list[Any]:
    """(expr, legend) pairs as targets A, B, C, …"""
    return [target(expr, legend, chr(ord("A") + index)) for index, (expr, legend) in enumerate(queries)]


def stat(
    title: str, description: str, queries: list[Any], unit: str, thresholds: list[dict[str, Any]], **options: Any
) -> Panel:
    return g.Stat(
        maxDataPoints=None,
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=queries,
        format=unit,
        color={"mode": "thresholds"},
        decimals=2,
        reduceCalc="lastNotNull",
        graphMode="area",
        colorMode="value",
        textMode="value_and_name",
        noValue="no data",
        thresholds=thresholds,
        **options,
    )


def timeseries(
    title: str,
    description: str,
    queries: list[Any],
    unit: str,
    thresholds: list[dict[str, Any]] | None = None,
    **options: Any,
) -> Panel:
    """A time series; `thresholds` are drawn as dashed lines (the SLO lines)."""
    return g.TimeSeries(
        maxDataPoints=None,
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=queries,
        unit=unit,
        thresholds=thresholds or steps(("green", None)),
        thresholdsStyleMode="dashed" if thresholds else "off",
        legendDisplayMode="table",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        extraJson={"options": {"legend": {"showLegend": True}}},
        **options,
    )


def table(
    title: str,
    description: str,
    queries: list[Any],
    columns: dict[str, tuple[str, str]],
    sort_by: str,
) -> Panel:
    """An instant table, one row per series. `columns` maps a query's value field to (column title, unit); the
    queries' rows are merged on their common labels and the `Time` column is hidden."""
    transformations: list[dict[str, Any]] = [{"id": "merge", "options": {}}] if len(queries) > 1 else []
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "renameByName": {field: name for field, (name, _) in columns.items()},
            },
        }
    )
    overrides = [
        {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": unit}]}
        for name, unit in columns.values()
    ]
    return g.Table(
        maxDataPoints=None,
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=queries,
        transformations=transformations,
        overrides=overrides,
        sortBy=[g.TableSortByField(displayName=sort_by, desc=True)],
        thresholds=steps(("green", None)),
        # schema 38 replaced custom.displayMode with custom.cellOptions; we declare a later schema, so write both.
        extraJson={"fieldConfig": {"defaults": {"custom": {"cellOptions": {"type": "auto"}}}}},
    )


def row(title: str) -> Panel:
    """A row header: Grafana's row has a title and no description (say it on the panels under it)."""
    return g.RowPanel(title=title, maxDataPoints=None)


@dataclass(frozen=True)
class Section:
    """A row header and the panels under it, each with its width (of 24) and height (grid units of 30 px)."""

    row: Panel
    panels: Sequence[tuple[Panel, int, int]]


def layout(sections: Sequence[Section]) -> list[Panel]:
    """Place the panels left to right under their row header, wrapping at the grid's width."""
    placed: list[Panel] = []
    y = 0
    for section in sections:
        placed.append(attr.evolve(section.row, gridPos=g.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
        y += 1
        x = line_height = 0
        for panel, width, height in section.panels:
            if x + width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            placed.append(attr.evolve(panel, gridPos=g.GridPos(h=height, w=width, x=x, y=y)))
            x, line_height = x + width, max(line_height, height)
        y += line_height
    return placed
