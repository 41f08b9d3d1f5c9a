"""`coalmine routes ...`: routing rules of a running service (POST/GET/DELETE
/api/v1/admin/routes), as flags in and a table out (`--json` prints the API's answer)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from coalmine.flags import duration
from coalmine.terminal import print_table

PATH = "/api/v1/admin/routes"


def add_routes_commands(
    sub: argparse._SubParsersAction, client_flags: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    routes = sub.add_parser("routes", help="manage routing rules (who hears of which events)")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True)
    add = routes_sub.add_parser("add", help="add a rule; the first match by priority decides")
    add.add_argument("type", choices=["event", "error", "any"])
    add.add_argument("name", help="glob over event names, e.g. 'payment.*'")
    add.add_argument("--mode", choices=["immediate", "digest", "silent"], required=True)
    add.add_argument("--channel", action="append", help="channel id (repeatable)")
    add.add_argument("--key", dest="key_id", help="only events sent with this key id")
    add.add_argument("--period", choices=["hourly", "daily"], help="digest period")
    add.add_argument("--at", help="digest time of day HH:MM (hourly: its minutes)")
    add.add_argument("--timezone", help="IANA timezone of --at (default UTC)")
    add.add_argument(
        "--quiet-window",
        type=duration,
        help="time between immediate alerts (1h): 3600, 30m, 1h, 1d",
    )
    add.add_argument("--priority", type=int, help="lower is tried first (default 100)")
    client_flags(add)
    client_flags(routes_sub.add_parser("list", help="rules in the order they are tried"))
    delete = routes_sub.add_parser("delete", help="remove a rule")
    delete.add_argument("id")
    client_flags(delete)
    return routes


def route_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST body of `routes add`; absent flags are left to the API's defaults."""
    body: dict[str, Any] = {
        "type": args.type,
        "name": args.name,
        "mode": args.mode,
        "channels": args.channel or [],
    }
    schedule = {"period": args.period, "at": args.at, "timezone": args.timezone}
    if any(v is not None for v in schedule.values()):
        body["digest"] = {k: v for k, v in schedule.items() if v is not None}
    optional = {
        "key_id": args.key_id,
        "quiet_window_seconds": args.quiet_window,
        "priority": args.priority,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def run_routes(args: argparse.Namespace, client: Any) -> int:
    command = args.routes_command
    if command == "add":
        created = client.call("POST", PATH, json=route_body(args))
        print(json.dumps(created) if args.json else f"added {created['id']}")
    elif command == "list":
        routes = client.call("GET", PATH)["routes"]
        if args.json:
            print(json.dumps(routes))
        else:
            rows = [
                {
                    **r,
                    "channels": ",".join(r["channels"]) or "-",
                    "key_id": r["key_id"] or "any",
                    "digest": _schedule(r["digest"]),
                }
                for r in routes
            ]
            print_table(
                rows, ["id", "priority", "type", "name", "key_id", "mode", "digest", "channels"]
            )
    else:
        client.call("DELETE", f"{PATH}/{args.id}")
        print(json.dumps({"id": args.id, "deleted": True}) if args.json else f"deleted {args.id}")
    return 0


def _schedule(digest: dict[str, str] | None) -> str:
    if digest is None:
        return "-"
    return f"{digest['period']} {digest['at']} {digest['timezone']}"
