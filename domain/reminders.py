"""Reminders while a canary stays down, and the signed link that acknowledges its alert. Pure:
incidents, channels and an explicit `now` in, decisions and texts out; the notifier
(processors.agents.notifier) sends and records them, the API (ingest_api.incidents) checks
the links.

A channel with `remind_every_s` opens an incident per canary when it sends the canary's down
alert; reminder n is due `n * remind_every_s` after that, up to `remind_max`; the incident
closes on recovery, when the canary is paused or deleted or the channel deleted, and once the
down alert is acknowledged (by the admin API/CLI or the link), which stops its reminders on
every channel.
"""

from __future__ import annotations

import hashlib
import hmac
from email.message import EmailMessage
from typing import Literal

import msgspec

from domain.notification_texts import (
    Rendered,
    human_utc,
    incident_of,
    one_line,
    set_email_headers,
    slack_escape,
)
from schemas.canaries import ChannelDefined, EmailConfig, Incident
from schemas.times import iso_utc

EVENT_REMINDER = "canary.reminder"
SIGNATURE_CHARS = 32  # 128 bits of HMAC-SHA256: unforgeable, short enough for a link

_json = msgspec.json.Encoder()


def reminder_due(
    incident: Incident,
    channel: ChannelDefined | None,
    *,
    acknowledged: bool,
    canary_active: bool,
    now: float,
) -> int | Literal["close"] | None:
    """What the notifier does with an open incident now: send reminder number n, close it
    (the reason for reminding is gone, or the cap is reached), or nothing yet."""
    if (
        channel is None
        or channel.remind_every_s <= 0
        or acknowledged
        or not canary_active
        or incident.reminders >= channel.remind_max
    ):
        return "close"
    n = incident.reminders + 1
    return n if now >= incident.opened_at + n * channel.remind_every_s else None


def ack_signature(key: str, flip_id: str) -> str:
    return hmac.new(
        key.encode(), f"ack:{flip_id}".encode("utf-8", "replace"), hashlib.sha256
    ).hexdigest()[:SIGNATURE_CHARS]


def ack_signature_ok(key: str, flip_id: str, signature: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a hostile link's).
    expected = ack_signature(key, flip_id).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def ack_url(public_url: str, key: str, flip_id: str) -> str:
    return f"{public_url.rstrip('/')}/ack/{flip_id}?sig={ack_signature(key, flip_id)}"


def rendered_reminder(
    incident: Incident, canary_name: str, remind_max: int, link: str, at: float
) -> Rendered:
    """Reminder number `incident.reminders + 1`: the canary is still down since the alert."""
    n = incident.reminders + 1
    name = one_line(canary_name)
    since = human_utc(incident.opened_at)
    notice_id = f"{incident.flip_id}:remind:{n}"
    title = f"Reminder: {name} is still DOWN (since {since})"
    text = f"{title} — reminder {n} of at most {remind_max}.\n"
    if link:
        text += f"Acknowledge (stops reminders): {link}\n"

    def webhook() -> bytes:
        return _json.encode(
            {
                "event": EVENT_REMINDER,
                "id": notice_id,
                "canary": {"id": incident.canary_id, "name": canary_name},
                "status": "down",
                "down_flip_id": incident.flip_id,
                "down_since": iso_utc(incident.opened_at),
                "reminder": n,
                "reminders_max": remind_max,
                "at": iso_utc(at),
                "ack_url": link,
            }
        )

    def slack() -> bytes:
        line = f":repeat: *{slack_escape(name)}* is still DOWN (since {since}) — reminder {n} of at most {remind_max}"
        if link:
            line += f"\n<{link}|Acknowledge>"
        return _json.encode({"text": line})

    def email(config: EmailConfig) -> EmailMessage:
        message = EmailMessage()
        set_email_headers(message, f"[Coalmine] {title}", config, notice_id, at, EVENT_REMINDER)
        message.set_content(text)
        return message

    return Rendered(
        notice_id,
        at,
        EVENT_REMINDER,
        webhook,
        slack,
        email,
        title=title,
        text=text,
        incident=incident_of(incident.canary_id),
        severity="critical",
    )
