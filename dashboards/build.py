"""Writes dashboards/json/*.json from dashboards.panels: `python -m dashboards.build`.

Grafana reads files, so the JSON is committed; tests/unit/test_dashboards.py fails when it
differs from what this module generates, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dashboards.panels import DASHBOARDS, Dashboard, Panel, Variable

# The data source provisioned by provisioning/datasources/clickhouse.yaml.
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "coalmine-clickhouse"}
JSON_DIR = Path(__file__).resolve().parent / "json"
GRID_WIDTH = 24
SCHEMA_VERSION = 39


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Left to right, a new row when the next panel does not fit."""
    positions, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        positions.append({"x": x, "y": y, "w": panel.width, "h": panel.height})
        x, row_height = x + panel.width, max(row_height, panel.height)
    return positions


def panel_json(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = dict(panel.field_config)
    if panel.unit:
        defaults["unit"] = panel.unit
    built: dict[str, Any] = {
        "id": panel_id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "editorType": "sql",
                "format": panel.format,
                "rawSql": panel.sql,
            }
        ],
        "fieldConfig": {"defaults": defaults, "overrides": panel.overrides},
        "options": panel.options,
    }
    if panel.min_interval:
        built["interval"] = panel.min_interval
    if panel.transformations:
        built["transformations"] = panel.transformations
    return built


def variable_json(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": variable.sql,
        "definition": variable.sql,
        "refresh": 2,  # on time range change: the names seen in the range
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    grids = _layout(dashboard.panels)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["coalmine"],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": dashboard.time_from, "to": "now"},
        "templating": {"list": [variable_json(v) for v in dashboard.variables]},
        "panels": [
            panel_json(panel, i, grid)
            for i, (panel, grid) in enumerate(zip(dashboard.panels, grids), start=1)
        ],
    }


def rendered() -> dict[str, str]:
    """File name -> the JSON text Grafana should read."""
    return {
        f"{d.uid}.json": json.dumps(dashboard_json(d), indent=2, ensure_ascii=False) + "\n"
        for d in DASHBOARDS
    }


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    files = rendered()
    for stale in {p.name for p in JSON_DIR.glob("*.json")} - set(files):
        (JSON_DIR / stale).unlink()
    for name, text in files.items():
        (JSON_DIR / name).write_text(text)
        print(f"wrote dashboards/json/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
