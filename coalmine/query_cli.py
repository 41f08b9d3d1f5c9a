"""`coalmine query ...`: the named queries' flags, the HTTP request each one makes, and the
tables it prints (`--json` prints the API's answer as it is)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from coalmine.terminal import print_table, short_number, sparkline

# CLI subcommand -> HTTP query name (`top` is the CLI's short word for top_names).
ROUTES = {
    "series": "series",
    "top": "top_names",
    "errors": "errors",
    "percentiles": "percentiles",
    "events": "events",
    "rejections": "rejections",
    "runs": "canary_runs",
    "flips": "canary_history",
}
# argparse dest -> query parameter; absent flags are not sent (the API applies its defaults).
PARAMETERS = {
    "name": "name",
    "since": "from",
    "until": "to",
    "interval": "interval",
    "source": "source",
    "type": "type",
    "limit": "limit",
    "levels": "q",
    "cursor": "cursor",
    "canary": "canary_id",
}


def add_query_commands(
    sub: argparse._SubParsersAction, client_flags: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    query = sub.add_parser("query", help="run an analytics query")
    query_sub = query.add_subparsers(dest="query_command", required=True)

    def command(
        name: str, text: str, *, named: bool = False, since: str = "-24h"
    ) -> argparse.ArgumentParser:
        p = query_sub.add_parser(name, help=text)
        if named:
            p.add_argument("name")
        p.add_argument("--from", dest="since", default=since, help="ISO 8601, epoch or -7d")
        p.add_argument("--to", dest="until", default="now")
        client_flags(p)
        return p

    series = command("series", "counts and values of one event name per bucket", named=True)
    series.add_argument("--interval", default="1h", help="bucket width: 60, 5m, 1h, 1d")
    series.add_argument(
        "--source", choices=["rollups", "events"], help="default: rollups when they fit"
    )
    top = command("top", "names by count, with the change against the previous period")
    top.add_argument("--type", choices=["event", "error"])
    top.add_argument("--source", choices=["rollups", "events"], help="default: rollups")
    top.add_argument("--limit", type=int, help="how many names (default 10, at most 1000)")
    errors = command("errors", "error names: count, first and last seen, last message")
    errors.add_argument("--limit", type=int, help="how many names (default 100, at most 1000)")
    percentiles = command("percentiles", "quantiles of one name's values", named=True)
    percentiles.add_argument("--q", dest="levels", help="levels, default 0.5,0.95,0.99")
    events = command("events", "one name's raw events, newest first", named=True)
    events.add_argument("--type", choices=["event", "error"])
    events.add_argument("--limit", type=int, help="events per page (default 100, at most 1000)")
    events.add_argument("--cursor", help="the next page, as printed at the end of the last one")
    command("rejections", "rejected requests per key and reason")
    runs = command("runs", "a canary's runs (start to finish) and their durations", since="-7d")
    runs.add_argument("canary", help="the canary's id (can_…) or name")
    flips = command("flips", "a canary's status flips, held ones with why", since="-7d")
    flips.add_argument("canary", help="the canary's id (can_…) or name")
    return query


def query_request(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The API path and parameters of a `coalmine query` command line."""
    params = {
        parameter: str(getattr(args, dest))
        for dest, parameter in PARAMETERS.items()
        if getattr(args, dest, None) is not None
    }
    return f"/api/v1/query/{ROUTES[args.query_command]}", params


def show_query(command: str, result: dict[str, Any]) -> None:
    SHOW[command](result)


def _show_series(result: dict[str, Any]) -> None:
    points = result["points"]
    print(
        f"{result['name']}  {result['from']} → {result['to']}  every {result['interval_seconds']}s"
        f"  (from {result['source']})"
    )
    print(sparkline([p["count"] for p in points]))
    columns = ["t", "count", "value_sum", "value_avg", "value_min", "value_max"]
    print_table([_shorten(p, columns) for p in points if p["count"]], columns)


def _show_top(result: dict[str, Any]) -> None:
    kind = f" of type {result['type']}" if result["type"] else ""
    print(f"top names{kind}  {result['from']} → {result['to']}  vs. from {result['previous_from']}")
    rows = [
        {
            **row,
            "change": f"{row['change']:+d}",
            "change_pct": "new" if row["change_pct"] is None else f"{row['change_pct']:+.1f}%",
        }
        for row in result["names"]
    ]
    print_table(rows, ["name", "count", "previous", "change", "change_pct"])


def _show_errors(result: dict[str, Any]) -> None:
    print(f"errors  {result['from']} → {result['to']}")
    rows = [
        {**row, "new": "new" if row["new"] else "", "last_message": _clip(row["last_message"], 60)}
        for row in result["errors"]
    ]
    print_table(rows, ["name", "count", "new", "first_seen", "last_seen", "last_message"])


def _show_percentiles(result: dict[str, Any]) -> None:
    print(f"{result['name']}  {result['from']} → {result['to']}  {result['count']} values")
    print_table([_shorten(p, ["value"]) for p in result["percentiles"]], ["q", "value"])


def _show_events(result: dict[str, Any]) -> None:
    print(f"{result['name']}  {result['from']} → {result['to']}  newest first")
    rows = [
        {
            **event,
            "value": short_number(event["value"]),
            "message": _clip(event["message"], 60),
            "meta": None if event["meta"] is None else _clip(json.dumps(event["meta"]), 60),
        }
        for event in result["events"]
    ]
    print_table(rows, ["ts", "type", "value", "message", "meta"])
    if result["next_cursor"]:
        print(f"more: --cursor {result['next_cursor']}")


def _show_runs(result: dict[str, Any]) -> None:
    summary = result["summary"]
    print(
        f"runs of {result['canary_id']}  {result['from']} → {result['to']}  {summary['runs']} finished,"
        f" {summary['failed']} failed; p50 {_seconds(summary['p50_s'])}, p95 {_seconds(summary['p95_s'])},"
        f" max {_seconds(summary['max_s'])}"
    )
    rows = [{**run, "duration": _seconds(run["duration_s"])} for run in result["runs"]]
    print_table(rows, ["started_at", "ended_at", "duration", "outcome", "rid"])


def _show_flips(result: dict[str, Any]) -> None:
    # A held flip went to no channel (a maintenance window, a down parent): say why, since the
    # history is where a user finds a down nobody was told of.
    print(f"flips of {result['canary_id']}  {result['from']} → {result['to']}  newest first")
    print_table(result["flips"], ["at", "status", "reason", "held"])


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}s" if value < 60 else f"{int(value // 60)}m{value % 60:04.1f}s"


def _show_rejections(result: dict[str, Any]) -> None:
    print(f"rejected requests {result['from']} → {result['to']}")
    print_table(result["rejections"], ["key_id", "reason", "requests", "events"])


SHOW: dict[str, Callable[[dict[str, Any]], None]] = {
    "series": _show_series,
    "top": _show_top,
    "errors": _show_errors,
    "percentiles": _show_percentiles,
    "events": _show_events,
    "rejections": _show_rejections,
    "runs": _show_runs,
    "flips": _show_flips,
}


def _shorten(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    return {**row, **{c: short_number(row[c]) for c in columns if isinstance(row[c], float)}}


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line per row, whatever the message holds
    return text if len(text) <= width else text[: width - 1] + "…"
