"""Sending a flip to one channel: webhook, Slack and the other services (domain.channel_payloads)
over HTTP, e-mail over SMTP. The shell around
domain.notification_texts: it tries up to the channel's max_attempts times, waits the payloads'
backoff in between, and returns what happened on each try as DeliveryAttempt records.

HTTP goes through aiohttp, not httpx: 200 concurrent POSTs to one local receiver took p99
450-670 ms with httpx (its connection pool's bookkeeping) against 140-190 ms with aiohttp on
this machine (same receiver, same concurrency), and a burst of alerts is exactly that.

`deliver` never raises for a failed delivery (a notifier that crashes on a dead receiver would
stop notifying everyone else); every error becomes an attempt with ok=False. Details are stored
and shown by the API, so they are built from status codes and exception text only, and scrubbed
of the channel's secrets: the webhook secret, the SMTP password, and URLs (a Slack webhook URL
is itself the credential).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import NamedTuple, cast

import aiohttp

from domain.channel_payloads import SERVICE_CONFIGS, service_request
from domain.notification_texts import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    Rendered,
    rendered_flip,
    retriable_status,
    retry_delay_s,
    signature,
)
from schemas.canaries import (
    ChannelConfig,
    ChannelKind,
    DeliveryAttempt,
    EmailConfig,
    Flip,
    SlackConfig,
    WebhookConfig,
)

DETAIL_MAX_CHARS = 300
# Connections open at once per HTTP session: the notifier's bound on concurrent deliveries.
HTTP_CONNECTIONS = 64
REDACTED = "[redacted]"

Sleep = Callable[[float], Awaitable[object]]


def http_session(connections: int = HTTP_CONNECTIONS) -> aiohttp.ClientSession:
    """The session deliveries share (inside a running loop). trust_env: an HTTP(S)_PROXY in
    the environment is used, as httpx did before."""
    connector = aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, trust_env=True)


class Outcome(NamedTuple):
    ok: bool
    detail: str
    retriable: bool = True
    retry_after: str | None = None  # the receiver's Retry-After header, if any


async def deliver(
    config: ChannelConfig,
    channel_id: str,
    notice: Flip | Rendered,
    http: aiohttp.ClientSession,
    now: Callable[[], float] = time.time,
    sleep: Sleep = asyncio.sleep,
    *,
    tls: ssl.SSLContext | None = None,
) -> list[DeliveryAttempt]:
    """Send a flip (or another notice, rendered) to the channel; one DeliveryAttempt per
    try, the last one ok or final. `tls` is what STARTTLS verifies the SMTP server against
    (default: the system's CAs)."""
    rendered = rendered_flip(notice) if isinstance(notice, Flip) else notice
    kind = cast(ChannelKind, config.__struct_config__.tag)
    attempts: list[DeliveryAttempt] = []
    last = max(1, config.max_attempts)
    for number in range(1, last + 1):
        at = now()
        outcome = await _send_once(config, rendered, http, tls)
        detail = redact(outcome.detail, config)
        attempts.append(
            DeliveryAttempt(rendered.id, channel_id, kind, number, at, outcome.ok, detail)
        )
        if outcome.ok or not outcome.retriable or number == last:
            break
        await sleep(retry_delay_s(number, outcome.retry_after))
    return attempts


async def _send_once(
    config: ChannelConfig, notice: Rendered, http: aiohttp.ClientSession, tls: ssl.SSLContext | None
) -> Outcome:
    try:
        if isinstance(config, WebhookConfig):
            body = notice.webhook()
            headers = {
                "Content-Type": "application/json",
                EVENT_HEADER: notice.event,
                DELIVERY_HEADER: notice.id,
            }
            # The admin API generates a secret when none is given; an empty one here would
            # make a signature anyone can forge, so none is sent rather than a false one.
            if config.secret:
                headers[SIGNATURE_HEADER] = signature(config.secret, body)
            return await _post(http, config.url, body, headers, config.timeout_s)
        if isinstance(config, SlackConfig):
            # Slack ignores the event header; a relay or a test receiver can route on it.
            headers = {"Content-Type": "application/json", EVENT_HEADER: notice.event}
            return await _post(http, config.url, notice.slack(), headers, config.timeout_s)
        if isinstance(config, SERVICE_CONFIGS):
            request = service_request(config, notice)
            headers = {**request.headers, EVENT_HEADER: notice.event, DELIVERY_HEADER: notice.id}
            return await _post(http, request.url, request.body, headers, config.timeout_s)
        message = notice.email(config)
        refused = await asyncio.to_thread(_send_mail, config, message, tls)
        if refused:
            return Outcome(True, f"accepted; refused recipients: {', '.join(sorted(refused))}")
        return Outcome(True, "accepted")
    except Exception as exc:  # noqa: BLE001 - every failure is an attempt, never a crash
        return Outcome(False, _describe(exc), _retriable_error(exc))


async def _post(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> Outcome:
    # The answer's body is never read: it is not needed and may be huge.
    async with http.post(
        url,
        data=body,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        allow_redirects=False,
    ) as response:
        status = response.status
        if 200 <= status < 300:
            return Outcome(True, f"HTTP {status}")
        return Outcome(
            False, f"HTTP {status}", retriable_status(status), response.headers.get("Retry-After")
        )


def _send_mail(
    config: EmailConfig, message: EmailMessage, tls: ssl.SSLContext | None
) -> dict[str, tuple[int, bytes]]:
    """Blocking; run in a thread. Returns the recipients the server refused (some were
    accepted: with none accepted smtplib raises)."""
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
        if config.starttls:
            # smtplib's own default context verifies nothing; ours checks the certificate and
            # the host name. A server that offers no STARTTLS fails here, before any password.
            smtp.starttls(context=tls or ssl.create_default_context())
        if config.username:
            smtp.login(config.username, config.password)
        return smtp.send_message(message)


# A URL that is not http(s), or not a URL: it will fail the same way again.
_UNSENDABLE = aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError


def _retriable_error(exc: Exception) -> bool:
    """Transport errors and 4xx SMTP replies are transient; a 5xx SMTP reply (bad credentials,
    unknown recipient), a server without STARTTLS and a malformed URL will fail again."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return any(code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code < 500
    return not isinstance(exc, smtplib.SMTPNotSupportedError | _UNSENDABLE)


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):  # aiohttp's has no text
        return "Timeout: no answer in time"
    if isinstance(exc, _UNSENDABLE):  # its text is the URL alone (redacted anyway)
        return f"{type(exc).__name__}: cannot send to this URL"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def redact(detail: str, config: ChannelConfig) -> str:
    """`detail` without the channel's secrets, short enough to store. None of the errors seen
    so far quote them; this is for the ones not seen yet."""
    # Longest first, so the whole URL goes before its query string is looked for.
    for secret in sorted(filter(None, _secrets_of(config)), key=len, reverse=True):
        detail = detail.replace(secret, REDACTED)
    if len(detail) > DETAIL_MAX_CHARS:
        detail = detail[: DETAIL_MAX_CHARS - 1] + "…"
    return detail


def _secrets_of(config: ChannelConfig) -> list[str]:
    if isinstance(config, EmailConfig):
        return [config.password]
    # The services' keys and tokens; Apprise URLs carry their services' credentials.
    found = [
        getattr(config, name, "")
        for name in ("secret", "routing_key", "api_key", "token", "bot_token", "urls")
    ]
    url = urllib.parse.urlsplit(config.url)
    found += [config.url, url.query, url.password or ""]
    # Each query value on its own too; short ones (`page=2`) are no secret, and replacing
    # them would garble the rest of the text.
    found += [value for _, value in urllib.parse.parse_qsl(url.query) if len(value) >= 6]
    if url.path.strip("/"):
        # Webhook URLs often carry their token in the path (hooks.slack.com/services/T/B/<key>).
        found.append(url.path)
    return found
