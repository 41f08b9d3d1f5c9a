"""One notification for several canaries that went down (or up) within a channel's group wait:
"4 canaries down: a, b, c, d". Pure: the flips in, a Rendered out (runtime.notify_senders sends
it like any other); a group of one is that flip's own notification, unchanged.

The webhook gets `event` canary.down|canary.up as for one flip, `grouped: true`, and `flips`:
each member's own webhook body, so a receiver handles a group as the list of its flips.
"""

from __future__ import annotations

import html
from email.message import EmailMessage

import msgspec

from domain.notification_texts import (
    Rendered,
    event_name,
    headline,
    one_line,
    rendered_flip,
    set_email_headers,
    slack_escape,
    webhook_body,
)
from schemas.canaries import EmailConfig, Flip

# Names listed in a title; the rest are counted ("… and 36 more"), every one is in the text.
NAMES_IN_TITLE = 10

_json = msgspec.json.Encoder()


def group_id(flips: list[Flip]) -> str:
    """Stable for the same members (a group rebuilt after a crash is the same delivery)."""
    first = min(flip.id for flip in flips)
    return f"{first}+{len(flips) - 1}"


def group_title(flips: list[Flip]) -> str:
    state = "down" if flips[0].status == "down" else "up again"
    names = [one_line(flip.canary_name) for flip in flips]
    shown = ", ".join(names[:NAMES_IN_TITLE])
    more = len(names) - NAMES_IN_TITLE
    return f"{len(flips)} canaries {state}: {shown}" + (f" and {more} more" if more > 0 else "")


def rendered_group(flips: list[Flip]) -> Rendered:
    """The notification of flips of one status (in the order they came)."""
    if len(flips) == 1:
        return rendered_flip(flips[0])
    notice_id = group_id(flips)
    title = group_title(flips)
    text = title + "\n\n" + "\n".join(f"- {headline(flip)}" for flip in flips) + "\n"
    down = flips[0].status == "down"
    at = max(flip.at for flip in flips)
    event = event_name(flips[0])

    def webhook() -> bytes:
        members = b",".join(webhook_body(flip) for flip in flips)
        head = _json.encode({"event": event, "id": notice_id, "grouped": True, "title": title})
        return head[:-1] + b',"flips":[' + members + b"]}"

    def slack() -> bytes:
        icon = ":red_circle:" if down else ":large_green_circle:"
        lines = "\n".join(f"• {slack_escape(headline(flip))}" for flip in flips)
        summary = f"{icon} *{slack_escape(title)}*"
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines[:2900]}},
        ]
        return _json.encode({"text": summary, "blocks": blocks})

    def email(config: EmailConfig) -> EmailMessage:
        message = EmailMessage()
        set_email_headers(message, f"[Coalmine] {title}", config, notice_id, at, event)
        message.set_content(text)
        items = "\n".join(f"<li>{html.escape(headline(flip))}</li>" for flip in flips)
        message.add_alternative(
            f'<!doctype html>\n<html><body style="font-family:sans-serif">\n'
            f"<p><strong>{html.escape(title)}</strong></p>\n<ul>\n{items}\n</ul>\n</body></html>\n",
            subtype="html",
        )
        return message

    return Rendered(
        notice_id,
        at,
        event,
        webhook,
        slack,
        email,
        title=title,
        text=text,
        incident=notice_id,
        severity="critical" if down else "info",
        resolves=not down,
    )
