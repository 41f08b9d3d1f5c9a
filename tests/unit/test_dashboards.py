"""dashboards/: the committed JSON is what the builder generates, every panel points at the
provisioned data source, and the plugin's expansion (tests/grafana_plugin.py) behaves as its
source says. The panels' SQL runs in tests/integration/test_dashboard_panels.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from dashboards import build
from dashboards.bind import UnboundParameter, bind
from tests.grafana_plugin import ALL, UnsupportedMacro, render

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "dashboards" / "provisioning"
PANEL_TYPES = {"timeseries", "table", "stat", "bargauge", "barchart", "piechart", "gauge", "text"}
START = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
END = START + dt.timedelta(hours=1)


def committed() -> dict[str, dict]:
    files = (ROOT / "dashboards" / "json").glob("*.json")
    return {p.name: json.loads(p.read_text()) for p in files}


def test_it_commits_exactly_what_the_builder_generates() -> None:
    files = {p.name: p.read_text() for p in (ROOT / "dashboards" / "json").glob("*.json")}
    assert files == build.rendered(), "run `python -m dashboards.build`"


def test_it_points_every_panel_at_the_provisioned_data_source() -> None:
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "clickhouse.yaml").read_text())[
        "datasources"
    ]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["uid"] == build.DATASOURCE["uid"]
    for name, dashboard in committed().items():
        for panel in dashboard["panels"]:
            assert panel["datasource"] == build.DATASOURCE, (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == build.DATASOURCE, (name, panel["title"])
        for variable in dashboard["templating"]["list"]:
            assert variable["datasource"] == build.DATASOURCE


def test_it_gives_dashboards_and_panels_unique_ids_and_known_types() -> None:
    dashboards = committed().values()
    uids = [d["uid"] for d in dashboards]
    assert len(uids) == len(set(uids)) == 4
    for dashboard in dashboards:
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), dashboard["uid"]
        for panel in dashboard["panels"]:
            assert panel["type"] in PANEL_TYPES, panel["title"]
            assert panel["targets"][0]["rawSql"].lstrip().upper().startswith("SELECT")
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= build.GRID_WIDTH


def test_it_provisions_the_folder_the_dashboards_are_in() -> None:
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "coalmine.yaml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_it_binds_a_named_query_to_the_range_and_refuses_a_forgotten_parameter() -> None:
    sql = "SELECT 1 WHERE ts >= fromUnixTimestamp64Milli({from_ms:Int64}) LIMIT {limit:UInt32}"
    assert bind(sql, limit="5") == (
        "SELECT 1 WHERE ts >= fromUnixTimestamp64Milli((${__from})) LIMIT (5)"
    )
    with pytest.raises(UnboundParameter):
        bind(sql)


# --- the plugin's expansion, as its source and tests state it -------------------------------


def expand(sql: str, **variables: list[str]) -> str:
    return render(
        sql, start=START, end=END, interval_s=20, variables=variables, options={"v": ["a", "b"]}
    )


def test_it_expands_time_macros_as_the_plugin_does() -> None:
    from_s, to_s = int(START.timestamp()), int(END.timestamp())
    assert expand("$__timeFilter(t)") == f"t >= toDateTime({from_s}) AND t <= toDateTime({to_s})"
    assert expand("$__timeInterval(t)") == "toStartOfInterval(toDateTime(t), INTERVAL 20 second)"
    assert expand("$__interval_s $__fromTime $__toTime_ms") == (
        f"20 toDateTime({from_s}) fromUnixTimestamp64Milli({to_s * 1000})"
    )
    assert expand("${__from} $__to") == f"{from_s * 1000} {to_s * 1000}"


def test_it_drops_a_conditional_filter_when_all_is_selected() -> None:
    sql = "WHERE $__conditionalAll(v IN (${v:singlequote}), $v)"
    assert expand(sql, v=[ALL]) == "WHERE 1=1"
    assert expand(sql, v=["a", "it's"]) == "WHERE v IN ('a','it\\'s')"
    assert expand("v IN ($v)", v=[ALL]) == "v IN ('a','b')"


def test_it_refuses_a_macro_it_does_not_model() -> None:
    with pytest.raises(UnsupportedMacro):
        expand("$__adHocFilters('events')")
