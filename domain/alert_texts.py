"""What an error alert and a digest say, for each kind of channel: pure, a record in, bytes or
an EmailMessage out (domain.notification_texts does the same for canary flips, and holds the
wording and escaping both share).

A digest reads top down: the period and its totals, then each name with its count and the
change against the period before (`+25%`, `new` for a name never seen before, `0 (was 12)`
for one that went quiet), then the errors with their last message.
"""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from email.message import EmailMessage

import msgspec

from domain.notification_texts import (
    Rendered,
    human_utc,
    one_line,
    set_email_headers,
    slack_escape,
)
from schemas.alerts import AlertRecord, Digest, DigestLine, ErrorAlert
from schemas.canaries import EmailConfig
from schemas.times import iso_utc

EVENT_ERROR = "error.alert"
EVENT_DIGEST = "digest"
# A Slack message shows this many names and errors; the e-mail and the webhook carry all.
SLACK_MAX_LINES = 25
SLACK_MAX_ERRORS = 10
_json = msgspec.json.Encoder()


def rendered(alert: AlertRecord) -> Rendered:
    if isinstance(alert, ErrorAlert):
        return Rendered(
            alert.id,
            alert.at,
            EVENT_ERROR,
            lambda: error_webhook_body(alert),
            lambda: error_slack_body(alert),
            lambda config: error_email(alert, config),
            title=f"{alert.event_type}: {one_line(alert.name)}",
            text=error_plain_text(alert),
            incident=alert.id,
            severity="error",
        )
    return Rendered(
        alert.id,
        alert.end,
        EVENT_DIGEST,
        lambda: digest_webhook_body(alert),
        lambda: digest_slack_body(alert),
        lambda config: digest_email(alert, config),
        title=digest_title(alert),
        text=digest_plain_text(alert),
        incident=alert.id,
    )


# --- shared ----------------------------------------------------------------------------------
def window_text(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} d"
    if seconds % 3_600 == 0:
        return f"{seconds // 3_600} h"
    return f"{seconds // 60} min"


def change_text(line: DigestLine) -> str:
    """How a count compares with the period before, for a reader."""
    if line.first_seen:
        return "new"
    if line.previous == 0:
        return "was 0"
    if line.count == 0:
        return f"went quiet (was {line.previous:,})"
    percent = round((line.count - line.previous) * 100 / line.previous)
    return "no change" if percent == 0 else f"{percent:+d}%"


def local_time(epoch: float, timezone: str) -> str:
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return dt.datetime.fromtimestamp(epoch, zone).strftime("%Y-%m-%d %H:%M %Z")


def digest_title(digest: Digest) -> str:
    start, end = local_time(digest.start, digest.timezone), local_time(digest.end, digest.timezone)
    return f"{digest.period.capitalize()} digest {start} – {end}"


def _totals(digest: Digest) -> str:
    events = sum(line.count for line in digest.lines if line.event_type == "event")
    errors = sum(line.count for line in digest.lines if line.event_type == "error")
    new = sum(1 for line in digest.lines if line.first_seen)
    return f"{events:,} events, {errors:,} errors, {new} new name{'s' * (new != 1)}"


# --- error alerts ----------------------------------------------------------------------------
def error_headline(alert: ErrorAlert) -> str:
    return (
        f"{one_line(alert.name)}: first {alert.event_type} in {window_text(alert.quiet_window_s)}"
        f" at {human_utc(alert.at)}"
    )


def error_webhook_body(alert: ErrorAlert) -> bytes:
    return _json.encode(
        {
            "event": EVENT_ERROR,
            "id": alert.id,
            "type": alert.event_type,
            "name": alert.name,
            "message": alert.message,
            "at": iso_utc(alert.at),
            "key_id": alert.key_id,
            "event_id": alert.event_id,
            "quiet_window_seconds": alert.quiet_window_s,
            "route_id": alert.route_id,
        }
    )


def error_slack_body(alert: ErrorAlert) -> bytes:
    text = f":rotating_light: *{slack_escape(one_line(alert.name))}*: first {alert.event_type} in {window_text(alert.quiet_window_s)}"
    blocks: list[dict[str, object]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    ]
    if alert.message:
        quoted = "\n".join(f"> {line}" for line in slack_escape(alert.message).splitlines())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    context = f"at {human_utc(alert.at)} · key `{alert.key_id}` · event `{alert.event_id}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return _json.encode({"text": text, "blocks": blocks})


def _error_facts(alert: ErrorAlert) -> list[tuple[str, str]]:
    return [
        ("Name", alert.name),
        ("At", human_utc(alert.at)),
        ("Message", alert.message or "(none)"),
        ("Key", alert.key_id),
        ("Event id", alert.event_id),
        (
            "Next alert",
            f"not before {window_text(alert.quiet_window_s)} of quiet; until then in the digest",
        ),
    ]


def error_plain_text(alert: ErrorAlert) -> str:
    facts = _error_facts(alert)
    width = max(len(label) for label, _ in facts) + 2
    plain = [error_headline(alert), ""] + [
        f"{label + ':':<{width}}{value}" for label, value in facts
    ]
    return "\n".join(plain) + "\n"


def error_email(alert: ErrorAlert, config: EmailConfig) -> EmailMessage:
    message = EmailMessage()
    set_email_headers(
        message,
        f"[Coalmine] {alert.event_type}: {alert.name}",
        config,
        alert.id,
        alert.at,
        EVENT_ERROR,
    )
    facts = _error_facts(alert)
    message.set_content(error_plain_text(alert))
    rows = "\n".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{html.escape(label)}</th>'
        f'<td style="white-space:pre-wrap">{html.escape(value)}</td></tr>'
        for label, value in facts
    )
    message.add_alternative(
        '<!doctype html>\n<html><body style="font-family:sans-serif">\n'
        f'<p style="font-size:16px"><strong style="color:#c0392b">{html.escape(one_line(alert.name))}</strong>'
        f" — first {alert.event_type} in {window_text(alert.quiet_window_s)}</p>\n"
        f"<table>\n{rows}\n</table>\n</body></html>\n",
        subtype="html",
    )
    return message


# --- digests ---------------------------------------------------------------------------------
def digest_webhook_body(digest: Digest) -> bytes:
    return _json.encode(
        {
            "event": EVENT_DIGEST,
            "id": digest.id,
            "route_id": digest.route_id,
            "period": digest.period,
            "timezone": digest.timezone,
            "from": iso_utc(digest.start),
            "to": iso_utc(digest.end),
            "names": [
                {
                    "type": line.event_type,
                    "name": line.name,
                    "count": line.count,
                    "previous": line.previous,
                    "new": line.first_seen,
                }
                for line in digest.lines
            ],
            "errors": [
                {
                    "name": e.name,
                    "count": e.count,
                    "last_seen": iso_utc(e.last_seen),
                    "last_message": e.last_message,
                }
                for e in digest.errors
            ],
        }
    )


def digest_slack_body(digest: Digest) -> bytes:
    title = f":bar_chart: *{digest_title(digest)}* — {_totals(digest)}"
    blocks: list[dict[str, object]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": title}}
    ]
    lines = [
        f"• `{slack_escape(one_line(line.name))}` {line.count:,} ({change_text(line)})"
        for line in digest.lines[:SLACK_MAX_LINES]
    ]
    if len(digest.lines) > SLACK_MAX_LINES:
        lines.append(f"… and {len(digest.lines) - SLACK_MAX_LINES} more")
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    if digest.errors:
        shown = [
            f"• *{slack_escape(one_line(e.name))}* ×{e.count:,} — last: {slack_escape(one_line(e.last_message)) or '(no message)'}"
            for e in digest.errors[:SLACK_MAX_ERRORS]
        ]
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Errors*\n" + "\n".join(shown)}}
        )
    return _json.encode({"text": f"{digest_title(digest)} — {_totals(digest)}", "blocks": blocks})


def digest_plain_text(digest: Digest) -> str:
    out = [digest_title(digest), _totals(digest), ""]
    width = max([len(line.name) for line in digest.lines] + [4])
    out.append(f"{'name':<{width}}  {'type':<5}  {'count':>10}  change")
    out += [
        f"{line.name:<{width}}  {line.event_type:<5}  {line.count:>10,}  {change_text(line)}"
        for line in digest.lines
    ]
    if digest.errors:
        out += ["", "Errors (last message):"]
        out += [
            f"  {e.name} ×{e.count:,}, last {human_utc(e.last_seen)}: {one_line(e.last_message) or '(no message)'}"
            for e in digest.errors
        ]
    return "\n".join(out) + "\n"


def digest_html(digest: Digest) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(line.name)}</td><td>{line.event_type}</td>"
        f'<td align="right">{line.count:,}</td><td>{html.escape(change_text(line))}</td></tr>'
        for line in digest.lines
    )
    errors = "\n".join(
        f"<li><strong>{html.escape(e.name)}</strong> ×{e.count:,}, last {human_utc(e.last_seen)}:"
        f' <span style="white-space:pre-wrap">{html.escape(e.last_message) or "(no message)"}</span></li>'
        for e in digest.errors
    )
    return (
        '<!doctype html>\n<html><body style="font-family:sans-serif">\n'
        f"<h2>{html.escape(digest_title(digest))}</h2>\n<p>{html.escape(_totals(digest))}</p>\n"
        '<table cellpadding="4">\n<tr><th align="left">name</th><th align="left">type</th>'
        '<th align="right">count</th><th align="left">change</th></tr>\n'
        f"{rows}\n</table>\n"
        + (f"<h3>Errors</h3>\n<ul>\n{errors}\n</ul>\n" if errors else "")
        + "</body></html>\n"
    )


def digest_email(digest: Digest, config: EmailConfig) -> EmailMessage:
    message = EmailMessage()
    set_email_headers(
        message, f"[Coalmine] {digest_title(digest)}", config, digest.id, digest.end, EVENT_DIGEST
    )
    message.set_content(digest_plain_text(digest))
    message.add_alternative(digest_html(digest), subtype="html")
    return message
