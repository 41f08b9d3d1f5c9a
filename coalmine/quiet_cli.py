"""`coalmine windows ...`, `coalmine silences ...`, `coalmine badges` and `coalmine
status-pages`: maintenance windows, error silences, badge and public status page URLs of a
running service (/api/v1/admin/windows, /silences, /badges, /status-pages), as flags in and a
table out (`--json` prints the API's answer)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from coalmine.flags import duration
from coalmine.terminal import print_table

WINDOWS, SILENCES, BADGES, STATUS_PAGES = (
    "/api/v1/admin/windows",
    "/api/v1/admin/silences",
    "/api/v1/admin/badges",
    "/api/v1/admin/status-pages",
)
ClientFlags = Callable[[argparse.ArgumentParser], None]


def add_quiet_commands(
    sub: argparse._SubParsersAction, client_flags: ClientFlags, client_of: Callable[[Any], Any]
) -> None:
    windows = sub.add_parser("windows", help="maintenance windows: canaries alert nothing")
    windows_sub = windows.add_subparsers(dest="windows_command", required=True)
    add = windows_sub.add_parser("add", help="open a window (by default now, until ended)")
    add.add_argument("--canary", action="append", help="a canary id it covers (repeatable)")
    add.add_argument("--tag", action="append", help="canaries with this tag (repeatable)")
    add.add_argument("--all", action="store_true", help="every canary")
    add.add_argument("--from", dest="starts_at", help="ISO 8601 start (default now)")
    add.add_argument("--until", dest="ends_at", help="ISO 8601 end (default: open-ended)")
    add.add_argument("--for", dest="length", type=duration, help="or a length: 30m, 2h")
    add.add_argument("--schedule", help='recurring: a cron expression, e.g. "0 2 * * SUN"')
    add.add_argument("--tz", help="the schedule's IANA timezone (default UTC)")
    add.add_argument("--duration", type=duration, help="recurring: how long each lasts")
    add.add_argument("--comment", default="")
    add.add_argument("--by", dest="created_by", default="", help="who (shown in listings)")
    client_flags(add)
    listing = windows_sub.add_parser("list", help="open and scheduled windows")
    listing.add_argument("--all", action="store_true", help="the ended ones too")
    client_flags(listing)
    end = windows_sub.add_parser("end", help="end a window now")
    end.add_argument("id")
    client_flags(end)
    windows.set_defaults(func=lambda args: _run(args, client_of(args), "windows"))

    silences = sub.add_parser("silences", help="silences of error alerts by name pattern")
    silences_sub = silences.add_subparsers(dest="silences_command", required=True)
    add = silences_sub.add_parser("add", help="silence matching error alerts for a while")
    add.add_argument("name", help="glob over alert names, e.g. 'payment.*'")
    add.add_argument("--for", dest="length", type=duration, help="how long: 30m, 2h")
    add.add_argument("--until", dest="ends_at", help="or an ISO 8601 end")
    add.add_argument("--comment", required=True, help="why")
    add.add_argument("--by", dest="created_by", required=True, help="who")
    add.add_argument("--type", choices=["error", "event", "any"], default="any")
    add.add_argument("--key", dest="key_id", help="only alerts of this key id")
    client_flags(add)
    listing = silences_sub.add_parser("list", help="active and pending silences")
    listing.add_argument("--all", action="store_true", help="the ended ones too")
    client_flags(listing)
    expire = silences_sub.add_parser("expire", help="end a silence now")
    expire.add_argument("id")
    client_flags(expire)
    silences.set_defaults(func=lambda args: _run(args, client_of(args), "silences"))

    badges = sub.add_parser("badges", help="signed public badge URLs of tags and canaries")
    client_flags(badges)
    badges.set_defaults(func=lambda args: _run(args, client_of(args), "badges"))

    pages = sub.add_parser("status-pages", help="the public status page URL of each tag")
    client_flags(pages)
    pages.set_defaults(func=lambda args: _run(args, client_of(args), "status_pages"))


def _minutes(seconds: int | None) -> int | None:
    return None if seconds is None else max(1, -(-seconds // 60))


def window_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "canaries": args.canary or [],
        "tags": args.tag or [],
        "everything": args.all,
        "comment": args.comment,
        "created_by": args.created_by,
    }
    optional = {
        "starts_at": args.starts_at,
        "ends_at": args.ends_at,
        "minutes": _minutes(args.length),
        "schedule": args.schedule,
        "timezone": args.tz,
        "duration_seconds": args.duration,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def silence_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": args.name,
        "comment": args.comment,
        "created_by": args.created_by,
        "type": args.type,
    }
    optional = {"ends_at": args.ends_at, "minutes": _minutes(args.length), "key_id": args.key_id}
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _run(args: argparse.Namespace, client: Any, what: str) -> int:
    if what == "badges":
        badges = client.call("GET", BADGES)["badges"]
        if args.json:
            print(json.dumps(badges))
        else:
            print_table(badges, ["target", "svg", "json", "shields"])
        return 0
    if what == "status_pages":
        pages = client.call("GET", STATUS_PAGES)["status_pages"]
        if args.json:
            print(json.dumps(pages))
        else:
            print_table(pages, ["tag", "url"])
        return 0
    path = WINDOWS if what == "windows" else SILENCES
    command = getattr(args, f"{what}_command")
    if command == "add":
        body = window_body(args) if what == "windows" else silence_body(args)
        created = client.call("POST", path, json=body)
        print(json.dumps(created) if args.json else f"added {created['id']} ({created['state']})")
    elif command == "list":
        suffix = "?all=true" if args.all else ""
        rows = client.call("GET", path + suffix)[what]
        if args.json:
            print(json.dumps(rows))
        elif what == "windows":
            shown = [{**w, "covers": _covers(w)} for w in rows]
            print_table(
                shown,
                ["id", "state", "covers", "starts_at", "ends_at", "schedule", "comment"]
                + ["created_by"],
            )
        else:
            print_table(rows, ["id", "state", "name", "type", "ends_at", "comment", "created_by"])
    else:
        ended = client.call("DELETE", f"{path}/{args.id}")
        print(json.dumps(ended) if args.json else f"{ended['id']}: {ended['state']}")
    return 0


def _covers(window: dict[str, Any]) -> str:
    if window["everything"]:
        return "all"
    return ",".join([*window["canaries"], *(f"tag:{t}" for t in window["tags"])])
