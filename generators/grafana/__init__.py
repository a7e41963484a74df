"""Grafana as code (grafanalib): the dashboards, their provisioning files and the import payload, as file texts.

    queries.py       PromQL of every panel, from the catalog and the recording-rule names
    panels.py        grafanalib panels on the `$datasource` variable, threshold steps, grid layout
    featurestore.py  the guide's dashboard (six panels + the SLOs it names without a panel)
    budget.py        one row per budgeted SLO: error budget remaining and burn rate per alert window
    this module      `dashboard_files(specs)`: path under rendered/ -> exact file text

`python -m generators` writes these files; nothing here touches the disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from generators.grafana import featurestore
from generators.output import to_yaml
from slos.loader import SpecSet

DASHBOARD_PATH = "grafana/dashboards/featurestore.json"
IMPORT_PATH = "grafana/import/grafana_dashboard_featurestore.json"
DATASOURCE_PATH = "grafana/provisioning/datasources/prometheus.yaml"
PROVIDER_PATH = "grafana/provisioning/dashboards/featurestore.yaml"

PROMETHEUS_URL = "http://prometheus:9090"  # the guide's Prometheus host
SCRAPE_INTERVAL = "30s"  # the guide's scrape_interval; Grafana's minimum step for this datasource
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards/featurestore"  # where rendered/grafana/dashboards is mounted
REGENERATE = "`make render` (python -m generators)"
_REPO = Path(__file__).resolve().parents[2]


def dashboard_files(specs: SpecSet) -> dict[str, str]:
    """Every Grafana file under the output folder, path -> text; the same specs give the same bytes."""
    sources = _sources(specs)
    dashboard = _plain(
        featurestore.dashboard(
            specs,
            f"The feature store monitoring guide's dashboard. Generated from {sources} by {REGENERATE}. "
            "Do not edit: change the spec or generators/grafana and regenerate.",
        )
    )
    payload = {
        "dashboard": dashboard,
        "message": f"Generated from {sources} by {REGENERATE}",
        "overwrite": True,
    }
    header = f"Generated from {sources} by {REGENERATE}. Do not edit: change the spec and regenerate."
    return {
        DASHBOARD_PATH: _json(dashboard),
        IMPORT_PATH: _json(payload),
        DATASOURCE_PATH: to_yaml(_datasource(), header),
        PROVIDER_PATH: to_yaml(_provider(), f"{header}\nMount rendered/grafana/dashboards at {DASHBOARDS_MOUNT}."),
    }


def _datasource() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": "prometheus",
                "access": "proxy",
                "url": PROMETHEUS_URL,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": SCRAPE_INTERVAL, "httpMethod": "POST"},
            }
        ],
    }


def _provider() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "featurestore",
                "orgId": 1,
                "folder": "FeatureStore",
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_MOUNT, "foldersFromFilesStructure": False},
            }
        ],
    }


def _sources(specs: SpecSet) -> str:
    """The spec files, relative to the repository when they live in it (so the text is the same on every clone)."""
    names = []
    for loaded in specs.specs:
        path = loaded.path.resolve()
        names.append(path.relative_to(_REPO).as_posix() if path.is_relative_to(_REPO) else path.name)
    return ", ".join(names)


# What grafanalib writes and Grafana's current model (grafana-foundation-sdk's `Dashboard`) has no place for: the
# pre-Grafana-7 row layout and the pre-5 crosshair switch (`graphTooltip` says it now).
LEGACY_KEYS = ("rows", "hideControls", "sharedCrosshair")
# A row of Grafana's model has these and nothing else (grafanalib gives it a panel's targets and field config).
ROW_KEYS = frozenset({"type", "collapsed", "title", "datasource", "gridPos", "id", "panels", "repeat"})


def _plain(dashboard: Any) -> dict[str, Any]:
    """grafanalib's dashboard as JSON data in Grafana's current model: the one place its output is tidied."""
    plain: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    for key in LEGACY_KEYS:
        plain.pop(key, None)
    plain["panels"] = [
        {key: value for key, value in panel.items() if key in ROW_KEYS} if panel["type"] == "row" else panel
        for panel in plain["panels"]
    ]
    tidied: dict[str, Any] = _without_nulls(plain)
    tidied["id"] = None  # the import API's "create or overwrite by uid"
    return tidied


def _without_nulls(node: Any) -> Any:
    """`node` without its null members: grafanalib writes null for "unset" where Grafana's model wants the key left
    out (an object or a list cannot be null there). A threshold step keeps its null `value`: that is the base step."""
    if isinstance(node, list):
        return [_without_nulls(item) for item in node]
    if not isinstance(node, dict):
        return node
    step = set(node) == {"color", "value"}
    return {key: _without_nulls(value) for key, value in node.items() if value is not None or (step and key == "value")}


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, indent=2) + "\n"
