"""`coalmine channels ...`: where alerts go, on a running service (POST/GET/PATCH/DELETE
/api/v1/admin/channels, and POST …/{id}/test), as flags in and a table out (`--json` prints
the API's answer)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coalmine.flags import duration
from coalmine.terminal import print_table

PATH = "/api/v1/admin/channels"


def add_channels_commands(
    sub: argparse._SubParsersAction, client_flags: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    channels = sub.add_parser(
        "channels",
        help="where alerts go: webhook, Slack, e-mail, Discord, Teams, PagerDuty, Opsgenie, ntfy,"
        " Telegram, Apprise",
    )
    channels_sub = channels.add_subparsers(dest="channels_command", required=True)
    create = channels_sub.add_parser(
        "create", help="create a channel (a webhook's secret is printed once)"
    )
    create.add_argument("name")
    kind = create.add_mutually_exclusive_group(required=True)
    kind.add_argument("--webhook", metavar="URL", help="POST signed JSON to this URL")
    kind.add_argument("--slack", metavar="URL", help="a Slack incoming-webhook URL")
    kind.add_argument(
        "--email", metavar="ADDRESS", action="append", help="send e-mail to (repeatable)"
    )
    kind.add_argument("--discord", metavar="URL", help="a Discord channel webhook URL")
    kind.add_argument("--teams", metavar="URL", help="a Microsoft Teams Workflows webhook URL")
    kind.add_argument("--pagerduty", metavar="ROUTING_KEY", help="PagerDuty Events v2")
    kind.add_argument("--opsgenie", metavar="API_KEY", help="Opsgenie (an API integration key)")
    kind.add_argument("--ntfy", metavar="TOPIC", help="an ntfy topic")
    kind.add_argument("--telegram", metavar="CHAT_ID", help="a Telegram chat (with --bot-token)")
    kind.add_argument("--apprise", metavar="URL", help="an Apprise API .../notify/<key> URL")
    create.add_argument(
        "--base-url",
        help="pagerduty, opsgenie, ntfy, telegram: the service's URL (self-hosted, EU region)",
    )
    create.add_argument("--bot-token", help="telegram: the bot's token")
    create.add_argument("--token", help="ntfy: an access token for a protected topic")
    create.add_argument("--apprise-urls", help="apprise: Apprise URLs (stateless /notify/)")
    create.add_argument("--tag", help="apprise: the tag of the stored services to notify")
    create.add_argument(
        "--group-wait",
        type=float,
        metavar="SECONDS",
        help="canaries going down (or up) within this long become one notification (default 0)",
    )
    create.add_argument(
        "--remind-every",
        type=int,
        metavar="SECONDS",
        help="repeat a down alert this often while the canary stays down (at least 60)",
    )
    create.add_argument("--remind-max", type=int, help="at most this many reminders (default 10)")
    create.add_argument("--secret", help="webhook: the signing secret (default: generated)")
    create.add_argument("--smtp-host", help="e-mail: the SMTP server")
    create.add_argument("--smtp-port", type=int, help="e-mail: its port (default 587)")
    create.add_argument("--smtp-user", help="e-mail: the SMTP user name")
    create.add_argument("--smtp-password-file", help="e-mail: a file holding the SMTP password")
    create.add_argument("--sender", help="e-mail: the From address")
    create.add_argument(
        "--no-starttls", action="store_true", help="e-mail: no STARTTLS (not advised)"
    )
    client_flags(create)
    update = channels_sub.add_parser(
        "update", help="change a channel's name, reminders or group wait (not where it sends)"
    )
    update.add_argument("id")
    update.add_argument("--name")
    update.add_argument(
        "--group-wait", type=duration, metavar="DURATION", help="30s, 2m; 0: each at once"
    )
    update.add_argument(
        "--remind-every", type=duration, metavar="DURATION", help="30m, 4h; 0: no reminders"
    )
    update.add_argument("--remind-max", type=int, help="at most this many reminders")
    client_flags(update)
    client_flags(channels_sub.add_parser("list", help="channels (no secrets)"))
    for verb, text in (("delete", "remove a channel"), ("test", "send a test notification now")):
        p = channels_sub.add_parser(verb, help=text)
        p.add_argument("id")
        client_flags(p)
    return channels


def channel_body(args: argparse.Namespace) -> dict[str, Any]:
    """The create request of `coalmine channels create` (argparse.ArgumentTypeError if the
    flags do not make one)."""
    body: dict[str, Any] = {"name": args.name}
    if args.group_wait:
        body["group_wait_s"] = args.group_wait
    if args.remind_every:
        body["remind_every_s"] = args.remind_every
    if args.remind_max:
        body["remind_max"] = args.remind_max
    if args.webhook:
        body.update(kind="webhook", url=args.webhook)
        if args.secret:
            body["secret"] = args.secret
        return body
    if args.slack:
        return {**body, "kind": "slack", "url": args.slack}
    service = service_body(args)
    if service:
        base = {"url": args.base_url} if args.base_url else {}
        return {**body, **base, **service}
    if not args.smtp_host:
        raise argparse.ArgumentTypeError("--email needs --smtp-host")
    body.update(kind="email", to=args.email, host=args.smtp_host, starttls=not args.no_starttls)
    optional = {"port": args.smtp_port, "username": args.smtp_user, "sender": args.sender}
    body.update({k: v for k, v in optional.items() if v is not None})
    if args.smtp_password_file:
        body["password"] = Path(args.smtp_password_file).read_text().strip()
    return body


def service_body(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of a service channel from its flags ({} for webhook, Slack, e-mail)."""
    if args.discord or args.teams:
        return {"kind": "discord" if args.discord else "teams", "url": args.discord or args.teams}
    if args.pagerduty:
        return {"kind": "pagerduty", "routing_key": args.pagerduty}
    if args.opsgenie:
        return {"kind": "opsgenie", "api_key": args.opsgenie}
    if args.ntfy:
        return {"kind": "ntfy", "topic": args.ntfy, **({"token": args.token} if args.token else {})}
    if args.telegram:
        if not args.bot_token:
            raise argparse.ArgumentTypeError("--telegram needs --bot-token")
        return {"kind": "telegram", "chat_id": args.telegram, "bot_token": args.bot_token}
    if args.apprise:
        optional = {"urls": args.apprise_urls, "tag": args.tag}
        return {"kind": "apprise", "url": args.apprise} | {k: v for k, v in optional.items() if v}
    return {}


def add_ack_command(
    sub: argparse._SubParsersAction, client_flags: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    ack = sub.add_parser("ack", help="acknowledge a canary's down alert: its reminders stop")
    ack.add_argument("canary_id")
    client_flags(ack)
    return ack


def run_ack(args: argparse.Namespace, client: Any) -> int:
    done = client.call("POST", f"/api/v1/admin/canaries/{args.canary_id}/ack")
    if args.json:
        print(json.dumps(done))
    else:
        print(f"acknowledged {', '.join(done['acknowledged'])}: no more reminders")
    return 0


def run_channels(args: argparse.Namespace, client: Any) -> int:
    command = args.channels_command
    if command == "create":
        try:
            body = channel_body(args)
        except argparse.ArgumentTypeError as exc:
            print(f"coalmine channels create: {exc}", file=sys.stderr)
            return 2
        created = client.call("POST", PATH, json=body)
        if args.json:
            print(json.dumps(created))
        else:
            print(f"id:     {created['id']}")
            if "secret" in created:
                print(
                    f"secret: {created['secret']}\n(the secret is shown only once: it signs each webhook)"
                )
            print(f"use it: coalmine canaries create NAME --interval 1h --channel {created['id']}")
    elif command == "update":
        optional = {
            "name": args.name,
            "group_wait_s": args.group_wait,
            "remind_every_s": args.remind_every,
            "remind_max": args.remind_max,
        }
        changed = client.call(
            "PATCH", f"{PATH}/{args.id}", json={k: v for k, v in optional.items() if v is not None}
        )
        if args.json:
            print(json.dumps(changed))
        else:
            print_table([changed], ["id", "name", "group_wait_s", "remind_every_s", "remind_max"])
    elif command == "list":
        channels = client.call("GET", PATH)["channels"]
        if args.json:
            print(json.dumps(channels))
        else:
            rows = [{**c, "to": target(c)} for c in channels]
            print_table(rows, ["id", "name", "kind", "to", "created_at"])
    elif command == "delete":
        deleted = client.call("DELETE", f"{PATH}/{args.id}")
        print(json.dumps(deleted) if args.json else f"deleted {args.id}")
    else:
        tried = client.call("POST", f"{PATH}/{args.id}/test")
        if args.json:
            print(json.dumps(tried))
        else:
            print(f"{'sent' if tried['ok'] else 'FAILED'}: {tried['detail']}")
        return 0 if tried["ok"] else 1
    return 0


def target(channel: dict[str, Any]) -> str:
    """Where a listed channel sends (never a secret: a Slack URL shows its host only)."""
    if channel.get("kind") == "email":
        return ", ".join(channel.get("to", []))
    if channel.get("kind") == "telegram":
        return f"chat {channel.get('chat_id')}"
    return str(channel.get("url") or channel.get("url_host") or "")
