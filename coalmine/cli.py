"""The `coalmine` command: run the service (up, or one role) and talk to a running one."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import signal
import sys

from coalmine import __version__
from coalmine.channels_cli import add_ack_command, add_channels_commands, run_ack, run_channels
from coalmine.flags import duration
from coalmine.query_cli import add_query_commands, query_request, show_query
from coalmine.quiet_cli import add_quiet_commands
from coalmine.routing_cli import add_routes_commands, run_routes
from coalmine.terminal import print_table as _print_table
from runtime.private import SERVICE_UMASK
from runtime.settings import Settings, SettingsError, address_in_environment, load_settings

# Commands that run (part of) the service log at INFO; client commands print only results.
SERVICE_COMMANDS = ("up", "api", "worker", "store", "migrate", "create-topics")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None),
        api_workers=getattr(args, "api_workers", None),
        tls_cert=getattr(args, "tls_cert", None),
        tls_key=getattr(args, "tls_key", None),
        tls_ca=getattr(args, "tls_ca", None),
    )


def _service_url(args: argparse.Namespace) -> str:
    """Where a client command finds the service: --url, COALMINE_URL, an address given by
    flag or environment, else the URL `coalmine up` recorded in the data dir, else the
    default address."""
    from coalmine.running import recorded_url

    settings = _settings(args)
    if args.url or settings.url:
        return str(args.url or settings.url).rstrip("/")
    if args.host or args.port or address_in_environment():
        return settings.base_url
    return recorded_url(settings) or settings.base_url


def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from coalmine.client import ServiceClient, admin_token
    from coalmine.tls import client_verify

    settings = _settings(args)
    return ServiceClient(_service_url(args), admin_token(settings), client_verify(settings))


def cmd_up(args: argparse.Namespace) -> int:
    from coalmine.launcher import up

    return up(_settings(args))


def cmd_api(args: argparse.Namespace) -> int:
    import socket

    import uvicorn

    from coalmine.tls import check_server_tls
    from ingest_api.app import serve
    from ingest_api.linger import LingeringHttpProtocol
    from runtime.http_server import QuietServer

    settings = _settings(args)
    check_server_tls(settings)
    # SO_REUSEPORT: several API processes share the port and the kernel spreads connections.
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    config = uvicorn.Config(
        serve(settings),
        http=LingeringHttpProtocol,  # early answers (413, 401, 408) reach blocking clients
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
        log_level="warning",
        access_log=False,
        # Nothing reads the client's address; the middleware cost a header scan per request.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    QuietServer(config).run(sockets=[sock])
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from processors.agents.app import run_worker

    sys.argv = [sys.argv[0], "worker"]  # Faust's worker parses argv itself
    run_worker(_settings(args))
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    from processors.sinks.store import serve_store

    try:
        asyncio.run(serve_store(_settings(args)))
    except KeyboardInterrupt:
        pass
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from runtime.clickhouse_client import connect, migrate

    applied = migrate(connect(_settings(args)))
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def cmd_create_topics(args: argparse.Namespace) -> int:
    from runtime.kafka_client import create_topics, wait_for_broker

    settings = _settings(args)
    if not settings.kafka_bootstrap:
        raise SettingsError("COALMINE_KAFKA_BOOTSTRAP is required")
    asyncio.run(wait_for_broker(settings.kafka_bootstrap, settings.startup_timeout_s))
    created = asyncio.run(create_topics(settings.kafka_bootstrap))
    print(f"created {len(created)} topic(s)" + (f": {', '.join(created)}" if created else ""))
    return 0


def _when(iso: str | None) -> str | None:
    """An answer's time (ISO 8601 UTC, schemas.times) as a table shows it, to the second."""
    if iso is None:
        return None
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_keys(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.keys_command == "create":
        body = {"name": args.name, "scope": args.scope}
        body.update(_limits(args))
        created = client.call("POST", "/api/v1/admin/keys", json=body)
        if args.json:
            print(json.dumps(created))
        else:
            print(f"id:  {created['id']}\nkey: {created['key']}\n(the key is shown only once)")
    elif args.keys_command == "list":
        keys = client.call("GET", "/api/v1/admin/keys")["keys"]
        if args.json:
            print(json.dumps(keys))
        else:
            rows = [
                {
                    **k,
                    "created_at": _when(k["created_at"]),
                    "revoked_at": _when(k["revoked_at"]),
                    "last_used_at": _when(k["last_used_at"]),
                }
                for k in keys
            ]
            columns = ["id", "name", "scope", "rate_per_minute", "burst", "created_at"]
            _print_table(rows, columns + ["last_used_at", "revoked_at"])
    elif args.keys_command == "limit":
        changed = client.call("PATCH", f"/api/v1/admin/keys/{args.id}", json=_limits(args))
        print(
            json.dumps(changed)
            if args.json
            else f"{changed['id']}: {changed['rate_per_minute']} events/minute, burst {changed['burst']}"
        )
    else:
        revoked = client.call("DELETE", f"/api/v1/admin/keys/{args.id}")
        print(json.dumps(revoked) if args.json else f"revoked {revoked['id']}")
    return 0


def cmd_canaries(args: argparse.Namespace) -> int:
    client = _client(args)
    command = args.canaries_command
    if command == "create":
        from coalmine.canary_flags import canary_body

        created = client.call("POST", "/api/v1/admin/canaries", json=canary_body(args))
        if args.json:
            print(json.dumps(created))
        else:
            print(f"id:       {created['id']}\ntoken:    {created['token']}")
            if created.get("schedule"):
                zone = created["timezone"] or "UTC"
                print(f"schedule: {created['schedule']} ({created['schedule_text']}, {zone})")
            print(f"check in: curl -fsS {_service_url(args)}{created['checkin_path']}")
            print(
                f"      or: curl -fsS {_service_url(args)}{created['ping_path']}  (Healthchecks URLs)"
            )
    elif command == "list":
        query = {"tag": args.tag} if args.tag else None
        canaries = client.call("GET", "/api/v1/admin/canaries", params=query)["canaries"]
        if args.json:
            print(json.dumps(canaries))
        else:
            from coalmine.canary_flags import every

            rows = [
                {
                    **c,
                    "every": every(c),
                    "last_checkin_at": _when(c["last_checkin_at"]),
                    "next_due_at": _when(c["next_due_at"]),
                }
                for c in canaries
            ]
            _print_table(
                rows,
                ["id", "name", "status", "every", "grace_seconds", "last_checkin_at"]
                + ["next_due_at", "last_message"],
            )
    elif command == "watch":
        from coalmine.watch import watch

        watch(
            lambda: client.call("GET", "/api/v1/admin/canaries")["canaries"],
            sys.stdout,
            args.json,
            args.every,
        )
    elif command == "snooze":
        body = {"canaries": [args.id], "minutes": max(1, -(-args.length // 60))}
        window = client.call("POST", "/api/v1/admin/windows", json=body)
        print(json.dumps(window) if args.json else f"{args.id}: snoozed until {window['ends_at']}")
    elif command in ("pause", "resume"):
        changed = client.call(
            "PATCH", f"/api/v1/admin/canaries/{args.id}", json={"paused": command == "pause"}
        )
        print(json.dumps(changed) if args.json else f"{changed['id']}: {changed['status']}")
    else:
        client.call("DELETE", f"/api/v1/admin/canaries/{args.id}")
        print(json.dumps({"id": args.id, "deleted": True}) if args.json else f"deleted {args.id}")
    return 0


def _limits(args: argparse.Namespace) -> dict[str, int]:
    limits = {"rate_per_minute": args.rate, "burst": args.burst}
    return {name: value for name, value in limits.items() if value is not None}


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coalmine.importer import ImportFailed, import_files
    from coalmine.tls import client_verify

    key = args.key or (
        Path(args.key_file).read_text().strip() if args.key_file else _settings(args).ingest_key
    )
    if not key:
        print(
            "coalmine import: an ingest key is needed: --key-file, --key or COALMINE_INGEST_KEY",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.chunk <= 100_000:
        print("coalmine import: --chunk must be between 1 and 100,000", file=sys.stderr)
        return 2
    url = _service_url(args)
    try:
        summary = import_files(
            [Path(f) for f in args.files],
            url,
            key,
            args.chunk,
            args.restart,
            args.max_chunks,
            verify=client_verify(_settings(args)),
        )
    except (ImportFailed, OSError) as exc:
        print(f"\ncoalmine import: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to go on", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary))
    elif summary["interrupted"]:
        print("interrupted; run the same command again to go on")
    else:
        print(
            f"{summary['files']} file(s): {summary['accepted']:,} events accepted, {summary['rejected']:,} rejected"
            f" in {summary['seconds']:.1f}s ({summary['events_per_s']:,} events/s)"
            + (
                f"; {summary['skipped_lines']:,} lines were done by an earlier run"
                if summary["skipped_lines"]
                else ""
            )
        )
        for line in summary["first_rejections"]:
            print(f"  rejected {line}")
    return 0


def cmd_import_healthchecks(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coalmine.hc_import import ExportUnreadable, import_checks, read_export

    try:
        checks = read_export(Path(args.file))
    except ExportUnreadable as exc:
        print(f"coalmine import-healthchecks: {exc}", file=sys.stderr)
        return 1
    client = _client(args)
    outcomes = import_checks(client, checks, args.channel or [])
    base = _service_url(args)
    key = client.call("GET", "/api/v1/admin/ping-key")["ping_key"]
    for outcome in outcomes:
        if outcome["outcome"] == "created":
            outcome["ping_url"] = f"{base}/ping/{outcome['token']}"
            outcome["slug_url"] = f"{base}/ping/{key}/{outcome['slug']}"
    if args.json:
        print(json.dumps(outcomes))
    else:
        for o in outcomes:
            if o["outcome"] == "created":
                kept = (
                    " (its Healthchecks UUID)"
                    if o["kept_uuid"]
                    else " (a new token: update the job)"
                )
                print(f"created {o['name']}: {o['ping_url']}{kept}\n        or {o['slug_url']}")
            else:
                print(f"{o['outcome']} {o['name']}: {o['reason']}")
        done = sum(o["outcome"] == "created" for o in outcomes)
        print(f"{done} of {len(outcomes)} check(s) imported")
    return 1 if any(o["outcome"] == "failed" for o in outcomes) else 0


def cmd_query(args: argparse.Namespace) -> int:
    client = _client(args)
    if getattr(args, "canary", None) and not args.canary.startswith("can_"):
        # A name: the admin API knows its id.
        canaries = client.call("GET", "/api/v1/admin/canaries")["canaries"]
        match = [c["id"] for c in canaries if c["name"] == args.canary]
        if not match:
            print(f"coalmine: no canary named {args.canary!r}", file=sys.stderr)
            return 1
        args.canary = match[0]
    path, params = query_request(args)
    result = client.call("GET", path, params=params)
    if args.json:
        print(json.dumps(result))
    else:
        show_query(args.query_command, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coalmine", description=__doc__)
    parser.add_argument("--version", action="version", version=f"coalmine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def service_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port to listen on (default 8000)")
        p.add_argument("--data-dir", help="where embedded data lives (default ./coalmine-data)")

    def tls_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain")
        p.add_argument("--tls-key", help="... and this PEM private key")

    up = sub.add_parser("up", help="run everything on the embedded default")
    service_flags(up)
    up.add_argument("--api-workers", type=int, help="API processes on the one port (default 1)")
    tls_flags(up)
    up.set_defaults(func=cmd_up)
    for role, func, text in (
        ("api", cmd_api, "run one API process (production roles)"),
        ("worker", cmd_worker, "run the Faust processors worker"),
        ("store", cmd_store, "run the ClickHouse sinks (and chDB's query socket)"),
        ("migrate", cmd_migrate, "apply ClickHouse migrations and exit"),
        ("create-topics", cmd_create_topics, "create the log's topics and exit"),
    ):
        p = sub.add_parser(role, help=text)
        service_flags(p)
        if role == "api":
            tls_flags(p)
        p.set_defaults(func=func)

    def client_flags(p: argparse.ArgumentParser) -> None:
        recorded = "where the `coalmine up` of --data-dir listens"
        p.add_argument("--host", help=f"the service's host (default: {recorded}, else 127.0.0.1)")
        p.add_argument(
            "--port", type=int, help=f"the service's port (default: {recorded}, else 8000)"
        )
        p.add_argument(
            "--data-dir",
            help="the data dir of the `coalmine up` to talk to: its URL, its admin token"
            " (default ./coalmine-data)",
        )
        p.add_argument("--url", help="the service's base URL (or COALMINE_URL); wins over the rest")
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
        p.add_argument("--tls-ca", help="CA bundle or certificate to verify an https service with")

    keys = sub.add_parser("keys", help="manage API keys of a running service")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("name")
    create.add_argument("--scope", choices=["ingest", "read"], default="ingest")

    def limit_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--rate", type=int, help="events per minute (default 60)")
        p.add_argument("--burst", type=int, help="burst allowance in events (default 120)")

    limit_flags(create)
    client_flags(create)
    limit = keys_sub.add_parser("limit", help="change a key's rate limit")
    limit.add_argument("id")
    limit_flags(limit)
    client_flags(limit)
    client_flags(keys_sub.add_parser("list", help="list keys (no secrets)"))
    revoke = keys_sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id")
    client_flags(revoke)
    keys.set_defaults(func=cmd_keys)

    canaries = sub.add_parser("canaries", help="manage canaries (jobs that must check in)")
    canaries_sub = canaries.add_subparsers(dest="canaries_command", required=True)
    create_canary = canaries_sub.add_parser("create", help="create a canary; prints its token")
    create_canary.add_argument("name")
    every_flags = create_canary.add_mutually_exclusive_group(required=True)
    every_flags.add_argument(
        "--interval", type=duration, help="time between check-ins: 90, 90s, 10m, 1h, 1d, 1w"
    )
    every_flags.add_argument(
        "--schedule", help='a cron expression instead: "0 3 * * *" (5 or 6 fields)'
    )
    create_canary.add_argument(
        "--tz", help="the schedule's IANA timezone, e.g. Europe/Paris (default UTC)"
    )
    create_canary.add_argument(
        "--grace", type=duration, default=0, help="grace after it (default 0), as --interval"
    )
    create_canary.add_argument(
        "--max-runtime", type=duration, help="how long a /start may run, as --interval"
    )
    from coalmine.canary_flags import add_threshold_flags

    add_threshold_flags(create_canary)
    create_canary.add_argument(
        "--channel",
        action="append",
        help="a channel to alert (repeatable; `coalmine channels create`)",
    )
    client_flags(create_canary)
    listing = canaries_sub.add_parser("list", help="canaries and their status")
    listing.add_argument("--tag", help="only the canaries with this tag")
    client_flags(listing)
    snooze = canaries_sub.add_parser("snooze", help="a maintenance window for one canary")
    snooze.add_argument("id")
    snooze.add_argument("--for", dest="length", type=duration, required=True, help="30m, 2h")
    client_flags(snooze)
    watching = canaries_sub.add_parser("watch", help="print each status change as it happens")
    watching.add_argument(
        "--every", type=float, default=1.0, help="seconds between looks (default 1)"
    )
    client_flags(watching)
    for verb, text in (("pause", "stop alerting"), ("resume", "alert again"), ("delete", "remove")):
        p = canaries_sub.add_parser(verb, help=text)
        p.add_argument("id")
        client_flags(p)
    canaries.set_defaults(func=cmd_canaries)

    query = add_query_commands(sub, client_flags)
    query.set_defaults(func=cmd_query)
    imports = sub.add_parser("import", help="backfill events from NDJSON, JSON or CSV files")
    imports.add_argument("files", nargs="+", help=".ndjson/.jsonl/.json/.csv, optionally .gz")
    imports.add_argument("--key", help="an ingest key (or --key-file, or COALMINE_INGEST_KEY)")
    imports.add_argument("--key-file", help="a file holding the ingest key")
    imports.add_argument(
        "--chunk", type=int, default=10_000, help="lines per request (default 10,000)"
    )
    imports.add_argument(
        "--restart", action="store_true", help="ignore the progress of an earlier run"
    )
    imports.add_argument("--max-chunks", type=int, help=argparse.SUPPRESS)  # tests: interrupt
    client_flags(imports)
    imports.set_defaults(func=cmd_import)
    hc = sub.add_parser(
        "import-healthchecks", help="canaries from a Healthchecks API v3 checks export"
    )
    hc.add_argument("file", help="the JSON of GET /api/v3/checks/")
    hc.add_argument(
        "--channel", action="append", help="a channel for every imported canary (repeatable)"
    )
    client_flags(hc)
    hc.set_defaults(func=cmd_import_healthchecks)
    add_quiet_commands(sub, client_flags, _client)
    add_routes_commands(sub, client_flags).set_defaults(
        func=lambda args: run_routes(args, _client(args))
    )
    add_ack_command(sub, client_flags).set_defaults(func=lambda args: run_ack(args, _client(args)))
    add_channels_commands(sub, client_flags).set_defaults(
        func=lambda args: run_channels(args, _client(args))
    )
    return parser


_TIME_FLAGS = ("--from", "--to")


def _join_time_flags(argv: list[str]) -> list[str]:
    """`--from -7d` reads as a flag to argparse; glue such values on (`--from=-7d`)."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in _TIME_FLAGS and arg.startswith("-"):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def use_metrics_dir(settings: Settings) -> None:
    """Every process of one service writes its metrics into one directory (runtime.metrics);
    prometheus-client reads the variable when first imported, which is after this."""
    directory = settings.metrics_path.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(directory))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_time_flags(sys.argv[1:] if argv is None else argv))
    from runtime.logging_setup import configure

    try:
        settings = _settings(args)
        log_format = settings.log_format
        if args.command in SERVICE_COMMANDS:
            os.umask(SERVICE_UMASK)  # before any file or socket of the service is created
            # The launcher's "the log's generation moved" may reach a process still starting:
            # ignored until its handler is in (it reads the state file then), not fatal.
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)
            use_metrics_dir(settings)
    except SettingsError:
        log_format = "auto"  # the command itself reports the bad setting
    configure(
        args.command,
        log_format,
        logging.INFO if args.command in SERVICE_COMMANDS else logging.WARNING,
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `coalmine query … | head` closed our stdout: not an error of ours. Point stdout at
        # /dev/null so that the interpreter's last flush at exit does not raise it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command killed by SIGPIPE
    except Exception as exc:  # one line for the terminal, not a traceback
        from schemas.errors import describe

        message = describe(exc)
        if message is None:
            raise
        print(f"coalmine: {message}", file=sys.stderr)
        return 1
