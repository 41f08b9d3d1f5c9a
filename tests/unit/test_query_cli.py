"""coalmine.query_cli: the request each `coalmine query` command line makes, and its tables."""

from __future__ import annotations

import pytest

from coalmine.cli import build_parser
from coalmine.query_cli import query_request, show_query


def request(*argv: str) -> tuple[str, dict[str, str]]:
    return query_request(build_parser().parse_args(["query", *argv]))


def test_it_sends_only_the_flags_given_plus_the_time_defaults() -> None:
    assert request("top") == ("/api/v1/query/top_names", {"from": "-24h", "to": "now"})
    assert request("errors", "--from=-7d", "--limit", "5") == (
        "/api/v1/query/errors",
        {"from": "-7d", "to": "now", "limit": "5"},
    )


def test_it_names_the_query_parameters_as_the_api_does() -> None:
    path, params = request("percentiles", "api", "--q", "0.9,0.99", "--to", "2026-07-02T10:00:00Z")

    assert path == "/api/v1/query/percentiles"
    assert params == {"name": "api", "from": "-24h", "to": "2026-07-02T10:00:00Z", "q": "0.9,0.99"}
    _, params = request("events", "api", "--type", "error", "--cursor", "abc", "--limit", "3")
    assert (params["type"], params["cursor"], params["limit"]) == ("error", "abc", "3")
    _, params = request("series", "api", "--source", "events")
    assert (params["interval"], params["source"]) == ("1h", "events")


def test_it_refuses_an_unknown_type_before_asking(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        request("top", "--type", "warning")


def test_it_prints_top_names_with_signed_changes(capsys: pytest.CaptureFixture[str]) -> None:
    show_query(
        "top",
        {
            "from": "F", "to": "T", "previous_from": "P", "type": None, "source": "rollups",
            "names": [
                {"name": "a", "count": 15, "previous": 10, "change": 5, "change_pct": 50.0},
                {"name": "b", "count": 2, "previous": 0, "change": 2, "change_pct": None},
                {"name": "c", "count": 1, "previous": 3, "change": -2, "change_pct": -66.666},
            ],
        },
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()

    assert [line.split() for line in lines[2:]] == [
        ["a", "15", "10", "+5", "+50.0%"],
        ["b", "2", "0", "+2", "new"],
        ["c", "1", "3", "-2", "-66.7%"],
    ]


def test_it_prints_a_series_with_a_sparkline_and_short_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = {
        "count": 0,
        "value_count": 0,
        "value_sum": 0.0,
        "value_avg": None,
        "value_min": None,
        "value_max": None,
    }
    point = {
        "t": "T1",
        "count": 3,
        "value_count": 3,
        "value_sum": 10.0,
        "value_avg": 10 / 3,
        "value_min": 1.0,
        "value_max": 7.25,
    }
    show_query(
        "series",
        {
            "name": "n", "from": "F", "to": "T", "interval_seconds": 3600, "source": "rollups",
            "grain": "hour", "points": [{"t": "T0", **empty}, point],
        },
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()

    assert "(from rollups)" in lines[0]
    assert lines[1] == "▁█"
    assert lines[3].split() == ["T1", "3", "10", "3.333", "1", "7.25"]


def test_it_prints_events_on_one_line_each_and_the_next_cursor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = {"ts": "T", "type": "error", "value": None, "message": "two\nlines", "meta": {"k": 1}}
    show_query(
        "events", {"name": "n", "from": "F", "to": "T", "events": [event], "next_cursor": "xyz"}
    )
    lines = capsys.readouterr().out.splitlines()

    assert lines[2].split() == ["T", "error", "two", "lines", '{"k":', "1}"]
    assert lines[-1] == "more: --cursor xyz"
