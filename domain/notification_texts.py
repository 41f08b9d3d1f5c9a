"""What a notification says, and when a failed one is tried again. Pure: a Flip (and a channel
config) in, bytes or an EmailMessage out; no I/O, no clock. runtime.notify_senders sends them.

Every piece of user text (canary name, check-in message) is escaped for the medium it lands in:
HTML for e-mail, Slack's mrkdwn control characters for Slack, line breaks for mail headers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal, NamedTuple

import msgspec

from schemas.canaries import EmailConfig, Flip, FlipReason
from schemas.times import iso_utc

UTC = dt.UTC

# Headers of a webhook POST (and of the e-mail, for mail filters).
SIGNATURE_HEADER = "X-Coalmine-Signature"
EVENT_HEADER = "X-Coalmine-Event"
DELIVERY_HEADER = "X-Coalmine-Delivery"
SIGNATURE_PREFIX = "sha256="

EVENT_DOWN = "canary.down"
EVENT_UP = "canary.up"

BACKOFF_FIRST_S = 0.5
BACKOFF_CAP_S = 30.0
# 408 and 429 say "not now", not "never": every other 4xx will fail the same way again.
RETRIABLE_4XX = frozenset({408, 429})

REASON_TEXT: dict[FlipReason, str] = {
    "missed": "missed its check-in",
    "failed": "reported a failure",
    "runtime_exceeded": "started but did not finish within its max runtime",
    "checkin": "checked in again",
    "too_few_events": "received too few of its events",
    "events": "received its events again",
    "not_started": "did not start within its start margin",
    "failure_rate": "failed too many of its last runs",
    "run_too_long": "ran far longer than its past runs",
    "run_too_short": "ran far shorter than its past runs",
    "too_early": "checked in too early for its schedule",
}

_json = msgspec.json.Encoder()
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


Severity = Literal["critical", "error", "warning", "info"]


class Rendered(NamedTuple):
    """A notice ready for any channel: a flip, an error alert or a digest. `id` is the
    delivery id (receivers deduplicate on it), `at` the time it concerns."""

    id: str
    at: float
    event: str  # the X-Coalmine-Event header: canary.down, error.alert, digest ...
    webhook: Callable[[], bytes]
    slack: Callable[[], bytes]
    email: Callable[[EmailConfig], EmailMessage]
    # What the other services are sent (domain.channel_payloads): a one-line title, a plain
    # text, the incident a paging service folds it into (one per canary: an up flip resolves
    # the down's), how grave it is, and whether it is a recovery.
    title: str = ""
    text: str = ""
    incident: str = ""
    severity: Severity = "info"
    resolves: bool = False


def rendered_flip(flip: Flip, ack_link: str = "") -> Rendered:
    """`ack_link`: the signed link that acknowledges a down alert (domain.reminders), when
    one of its channels reminds."""
    text = _plain_text(flip) + (
        f"\nAcknowledge (stops reminders): {ack_link}\n" if ack_link else ""
    )
    return Rendered(
        flip.id,
        flip.at,
        event_name(flip),
        lambda: webhook_body(flip, ack_link),
        lambda: slack_body(flip, ack_link),
        lambda config: email_message(flip, config, text),
        title=f"{one_line(flip.canary_name)} is {_state(flip)}",
        text=text,
        incident=incident_of(flip.canary_id),
        severity="critical" if flip.status == "down" else "info",
        resolves=flip.status == "up",
    )


def incident_of(canary_id: str) -> str:
    """A canary's incident key at paging services (PagerDuty dedup_key, Opsgenie alias)."""
    return f"coalmine-{canary_id}"


# --- shared wording --------------------------------------------------------------------------
def event_name(flip: Flip) -> str:
    return EVENT_DOWN if flip.status == "down" else EVENT_UP


def human_utc(epoch: float) -> str:
    """Reader form, to the second: 2026-07-02T10:00:00Z."""
    return (
        dt.datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _last_checkin(flip: Flip) -> str:
    if flip.last_checkin_at is None:
        return "no check-in yet"
    return f"last check-in {human_utc(flip.last_checkin_at)}"


def _why(flip: Flip) -> str:
    """The clause after the dash: what happened, with the time a reader wants next to it."""
    if flip.reason in ("events", "too_few_events"):  # a canary over events: no check-ins
        return f"{REASON_TEXT[flip.reason]} at {human_utc(flip.at)}"
    if flip.status == "up":
        return f"checked in at {human_utc(flip.at)}"
    return f"{REASON_TEXT[flip.reason]} ({_last_checkin(flip)})"


def _state(flip: Flip) -> str:
    return "DOWN" if flip.status == "down" else "UP again"


def headline(flip: Flip) -> str:
    """One plain line: `nightly-backup is DOWN — missed its check-in (last check-in …Z)`."""
    return f"{one_line(flip.canary_name)} is {_state(flip)} — {_why(flip)}{_dependents(flip)}"


def _dependents(flip: Flip) -> str:
    """The canaries depending on this one that are down with it: their own alerts are held
    (domain.holds), so this alert is where their users learn of them."""
    if not flip.dependents:
        return ""
    names = ", ".join(one_line(name) for name in flip.dependents)
    return f"; also down, depending on it: {names}"


# --- webhook ---------------------------------------------------------------------------------
def webhook_body(flip: Flip, ack_link: str = "") -> bytes:
    extra: dict[str, object] = {"ack_url": ack_link} if ack_link else {}
    if flip.dependents:  # only then: the body stays what receivers already parse
        extra["dependents"] = flip.dependents
    return _json.encode(
        {
            "event": event_name(flip),
            "id": flip.id,
            "canary": {"id": flip.canary_id, "name": flip.canary_name},
            "status": flip.status,
            "reason": flip.reason,
            "at": iso_utc(flip.at),
            "last_checkin_at": None
            if flip.last_checkin_at is None
            else iso_utc(flip.last_checkin_at),
            "message": flip.message,
            **extra,
        }
    )


def signature(secret: str, body: bytes) -> str:
    """The X-Coalmine-Signature value: HMAC-SHA256 of the exact body bytes, hex."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- Slack -----------------------------------------------------------------------------------
def slack_escape(text: str) -> str:
    """Slack reads <…> as links and mentions (`<!channel>`); &, < and > must be entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(flip: Flip, ack_link: str = "") -> bytes:
    icon = ":red_circle:" if flip.status == "down" else ":large_green_circle:"
    name = slack_escape(one_line(flip.canary_name))
    text = f"{icon} *{name}* is {_state(flip)} — {_why(flip)}{slack_escape(_dependents(flip))}"
    blocks: list[dict[str, object]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
    ]
    if flip.message:
        quoted = "\n".join(f"> {line}" for line in slack_escape(flip.message).splitlines())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted}})
    context = f"reason `{flip.reason}` · at {human_utc(flip.at)} · canary `{flip.canary_id}`"
    if ack_link:
        context += f" · <{ack_link}|Acknowledge>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    # `text` is what notifications and clients without blocks show.
    return _json.encode({"text": text, "blocks": blocks})


# --- e-mail ----------------------------------------------------------------------------------
def one_line(text: str) -> str:
    """A header (or a Slack title) cannot hold line breaks: in a mail header they would let a
    canary name inject headers, and EmailMessage refuses them anyway."""
    return _CONTROL_CHARS.sub(" ", text).strip()


def _facts(flip: Flip) -> list[tuple[str, str]]:
    facts = [
        ("Status", flip.status.upper()),
        ("Reason", REASON_TEXT[flip.reason]),
        ("At", human_utc(flip.at)),
        (
            "Last check-in",
            "none yet" if flip.last_checkin_at is None else human_utc(flip.last_checkin_at),
        ),
    ]
    if flip.message:
        facts.append(("Message", flip.message))
    if flip.dependents:
        facts.append(("Also down", ", ".join(flip.dependents)))
    facts.append(("Canary id", flip.canary_id))
    return facts


def _plain_text(flip: Flip) -> str:
    width = max(len(label) for label, _ in _facts(flip)) + 2
    lines = [headline(flip), ""]
    lines += [f"{label + ':':<{width}}{value}" for label, value in _facts(flip)]
    return "\n".join(lines) + "\n"


def _html(flip: Flip) -> str:
    colour = "#c0392b" if flip.status == "down" else "#27ae60"
    rows = "\n".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{html.escape(label)}</th>'
        f'<td style="white-space:pre-wrap">{html.escape(value)}</td></tr>'
        for label, value in _facts(flip)
    )
    return (
        '<!doctype html>\n<html><body style="font-family:sans-serif">\n'
        f'<p style="font-size:16px"><strong style="color:{colour}">'
        f"{html.escape(one_line(flip.canary_name))}</strong> is {_state(flip)} — {html.escape(_why(flip) + _dependents(flip))}</p>\n"
        f"<table>\n{rows}\n</table>\n</body></html>\n"
    )


def dot_atom(text: str) -> str:
    """A Message-ID's left part is a dot-atom: flip ids hold colons (`can:down:due…`)."""
    return _NOT_ATEXT.sub(".", text).strip(".") or hashlib.sha256(text.encode()).hexdigest()


def set_email_headers(
    message: EmailMessage, subject: str, config: EmailConfig, notice_id: str, at: float, event: str
) -> None:
    message["Subject"] = one_line(subject)
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    # The notice's time, not the send time: retries then build the same message.
    message["Date"] = format_datetime(dt.datetime.fromtimestamp(at, UTC))
    # Stable per notice, so a retry that did arrive the first time is one message to clients
    # that de-duplicate on Message-ID.
    domain = parseaddr(config.sender)[1].rpartition("@")[2] or "coalmine.invalid"
    message["Message-ID"] = f"<{dot_atom(notice_id)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    message[EVENT_HEADER] = event
    message[DELIVERY_HEADER] = notice_id


def email_message(flip: Flip, config: EmailConfig, text: str | None = None) -> EmailMessage:
    message = EmailMessage()
    subject = f"[Coalmine] {flip.canary_name} is {_state(flip)}"
    set_email_headers(message, subject, config, flip.id, flip.at, event_name(flip))
    message.set_content(_plain_text(flip) if text is None else text)
    message.add_alternative(_html(flip), subtype="html")
    return message


# --- a channel's test -------------------------------------------------------------------------
EVENT_TEST = "channel.test"


def rendered_test(channel_id: str, channel_name: str, notice_id: str, at: float) -> Rendered:
    """What `coalmine channels test` sends: says it is a test, in each channel's form."""
    text = f"Test notification from Coalmine to channel {one_line(channel_name)} ({channel_id}): it works."

    def email(config: EmailConfig) -> EmailMessage:
        message = EmailMessage()
        set_email_headers(
            message, "[Coalmine] test notification", config, notice_id, at, EVENT_TEST
        )
        message.set_content(text + "\n")
        return message

    return Rendered(
        notice_id,
        at,
        EVENT_TEST,
        lambda: _json.encode(
            {
                "event": EVENT_TEST,
                "id": notice_id,
                "channel": {"id": channel_id, "name": channel_name},
                "at": iso_utc(at),
                "message": text,
            }
        ),  # fmt: skip
        lambda: _json.encode({"text": f":white_check_mark: {slack_escape(text)}"}),
        email,
        title="Coalmine test notification",
        text=text,
        incident=notice_id,
    )


# --- retry policy ----------------------------------------------------------------------------
def backoff_s(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): 0.5, 1, 2, 4 … capped
    at 30. Deterministic: deliveries of one flip to many channels are spread by their own
    timing, and tests can state the exact schedule."""
    if attempt < 1:
        raise ValueError(f"attempts are numbered from 1, got {attempt}")
    # The exponent is bounded so a huge attempt number cannot overflow before the cap applies.
    return min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** min(attempt - 1, 16))


def retriable_status(status: int) -> bool:
    """Whether an HTTP answer that is not a 2xx may succeed if sent again. A 3xx is not
    followed (it would send a signed body somewhere the owner never configured) and will
    redirect again; a 4xx other than 408/429 will be refused again."""
    if 300 <= status < 500:
        return status in RETRIABLE_4XX
    return True


def retry_delay_s(attempt: int, retry_after: str | None = None) -> float:
    """The wait after failed attempt `attempt`: the backoff, or longer if the receiver said
    so in Retry-After (delta-seconds; the HTTP-date form is ignored, as it needs a clock),
    never longer than the cap, so one slow receiver cannot hold a delivery for long."""
    delay = backoff_s(attempt)
    if retry_after and retry_after.strip().isascii() and retry_after.strip().isdigit():
        delay = max(delay, min(BACKOFF_CAP_S, float(retry_after.strip())))
    return delay
