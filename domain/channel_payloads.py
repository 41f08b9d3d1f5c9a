"""The requests of the channels that are other services' APIs (Discord, Microsoft Teams,
PagerDuty, Opsgenie, ntfy, Telegram, Apprise), built from a Rendered notice and the channel's
config. Pure: runtime.notify_senders POSTs what `service_request` returns.

Each follows the service's documented API (docs/routing.md, "Channels", links them). User
text is plain text everywhere (no parse modes, no mentions), cut to each API's limits.
Paging services (PagerDuty, Opsgenie) fold a canary's alerts into one incident per canary,
which its recovery resolves; error alerts and digests are incidents of their own, and only
canary flips and error alerts page at the channel's severity (the rest at the lowest).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from domain.notification_texts import Rendered
from schemas.canaries import (
    AppriseConfig,
    DiscordConfig,
    NtfyConfig,
    OpsgenieConfig,
    PagerDutyConfig,
    TeamsConfig,
    TelegramConfig,
)
from schemas.times import iso_utc

ServiceConfig = (
    DiscordConfig | TeamsConfig | PagerDutyConfig | OpsgenieConfig | NtfyConfig | TelegramConfig
    | AppriseConfig
)  # fmt: skip
SERVICE_CONFIGS = (
    DiscordConfig, TeamsConfig, PagerDutyConfig, OpsgenieConfig, NtfyConfig, TelegramConfig,
    AppriseConfig,
)  # fmt: skip

SOURCE = "Coalmine"
JSON = "application/json"
# Discord embed colours (decimal RGB): red for trouble, green for a recovery, grey otherwise.
RED, GREEN, GREY = 0xC0392B, 0x27AE60, 0x95A5A6

_json = msgspec.json.Encoder()


class ServiceRequest(NamedTuple):
    url: str
    body: bytes
    headers: dict[str, str]


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def path_segment(text: str) -> str:
    """`text` percent-encoded for a URL path segment (urllib.parse.quote(text, safe=""): the
    domain imports no I/O-adjacent modules)."""
    return "".join(
        c
        if c.isascii() and (c.isalnum() or c in "-_.~")
        else "".join(f"%{b:02X}" for b in c.encode())
        for c in text
    )


def _pages(notice: Rendered) -> bool:
    return notice.severity in ("critical", "error")


def _joined(base: str, path: str) -> str:
    return base.rstrip("/") + path


def service_request(config: ServiceConfig, notice: Rendered) -> ServiceRequest:
    if isinstance(config, DiscordConfig):
        return ServiceRequest(config.url, discord_body(notice), {"Content-Type": JSON})
    if isinstance(config, TeamsConfig):
        return ServiceRequest(config.url, teams_body(notice), {"Content-Type": JSON})
    if isinstance(config, PagerDutyConfig):
        return ServiceRequest(config.url, pagerduty_body(notice, config), {"Content-Type": JSON})
    if isinstance(config, OpsgenieConfig):
        return opsgenie_request(notice, config)
    if isinstance(config, NtfyConfig):
        headers = {"Content-Type": JSON}
        if config.token:
            headers["Authorization"] = f"Bearer {config.token}"
        return ServiceRequest(config.url, ntfy_body(notice, config), headers)
    if isinstance(config, TelegramConfig):
        url = _joined(config.url, f"/bot{config.bot_token}/sendMessage")
        return ServiceRequest(url, telegram_body(notice, config), {"Content-Type": JSON})
    return ServiceRequest(config.url, apprise_body(notice, config), {"Content-Type": JSON})


def discord_body(notice: Rendered) -> bytes:
    """Execute Webhook: `content` (2,000 chars) and one embed (title 256, description 4,096);
    `allowed_mentions` empty, so an @everyone in a canary's message pings no one."""
    colour = GREEN if notice.resolves else RED if _pages(notice) else GREY
    embed = {
        "title": cut(notice.title, 256),
        "description": cut(notice.text, 4096),
        "color": colour,
        "timestamp": iso_utc(notice.at),
    }
    return _json.encode(
        {
            "content": cut(notice.title, 2000),
            "embeds": [embed],
            "allowed_mentions": {"parse": []},
        }
    )


def teams_body(notice: Rendered) -> bytes:
    """What a Workflows "When a Teams webhook request is received" flow takes: a message
    whose attachment is an Adaptive Card."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": notice.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": "Good"
                if notice.resolves
                else "Attention"
                if _pages(notice)
                else "Default",
            },
            {"type": "TextBlock", "text": notice.text, "wrap": True, "fontType": "Monospace"},
        ],
    }
    attachment = {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": None,
        "content": card,
    }
    return _json.encode({"type": "message", "attachments": [attachment]})


def pagerduty_body(notice: Rendered, config: PagerDutyConfig) -> bytes:
    """Events API v2 (POST /v2/enqueue): `trigger` with a payload, or `resolve` with only the
    dedup_key of the incident to close."""
    if notice.resolves:
        return _json.encode(
            {
                "routing_key": config.routing_key,
                "event_action": "resolve",
                "dedup_key": notice.incident,
            }
        )
    return _json.encode(
        {
            "routing_key": config.routing_key,
            "event_action": "trigger",
            "dedup_key": notice.incident,
            "payload": {
                "summary": cut(notice.title, 1024),
                "source": SOURCE,
                "severity": config.severity if _pages(notice) else "info",
                "timestamp": iso_utc(notice.at),
                "custom_details": {"text": notice.text, "event": notice.event, "id": notice.id},
            },
            "client": SOURCE,
        }
    )


def opsgenie_request(notice: Rendered, config: OpsgenieConfig) -> ServiceRequest:
    """Alert API: create (POST /v2/alerts; message 130 chars, alias 512, description 15,000)
    or close by alias (POST /v2/alerts/<alias>/close?identifierType=alias)."""
    headers = {"Content-Type": JSON, "Authorization": f"GenieKey {config.api_key}"}
    alias = cut(notice.incident, 512)
    if notice.resolves:
        path = f"/v2/alerts/{path_segment(alias)}/close?identifierType=alias"
        note = {"source": SOURCE, "note": cut(notice.text, 25000)}
        return ServiceRequest(_joined(config.url, path), _json.encode(note), headers)
    body: dict[str, object] = {
        "message": cut(notice.title, 130),
        "alias": alias,
        "description": cut(notice.text, 15000),
        "source": SOURCE,
        "priority": config.priority if _pages(notice) else "P5",
        "tags": ["coalmine"],
        "details": {"event": notice.event, "id": notice.id},
    }
    return ServiceRequest(_joined(config.url, "/v2/alerts"), _json.encode(body), headers)


def ntfy_body(notice: Rendered, config: NtfyConfig) -> bytes:
    """Publish as JSON (POST to the server's root): UTF-8 titles, unlike the header form.
    Priority 4 (high) for what pages, 3 (default) otherwise; tags show as emojis."""
    tag = "white_check_mark" if notice.resolves else "rotating_light" if _pages(notice) else "bell"
    return _json.encode(
        {
            "topic": config.topic,
            "title": cut(notice.title, 250),
            "message": cut(notice.text, 4000),
            "priority": 4 if _pages(notice) else 3,
            "tags": [tag],
        }
    )


def telegram_body(notice: Rendered, config: TelegramConfig) -> bytes:
    """sendMessage: plain text (no parse_mode, so nothing needs escaping), 4,096 chars."""
    return _json.encode(
        {
            "chat_id": config.chat_id,
            "text": cut(f"{notice.title}\n\n{notice.text}", 4096),
            "link_preview_options": {"is_disabled": True},
        }
    )


def apprise_body(notice: Rendered, config: AppriseConfig) -> bytes:
    """Apprise API /notify: title, body, type (info, success, warning, failure) and format;
    `urls` for the stateless endpoint, `tag` to pick a stored configuration's services."""
    kind = "success" if notice.resolves else "failure" if _pages(notice) else "info"
    body: dict[str, str] = {
        "title": notice.title,
        "body": notice.text,
        "type": kind,
        "format": "text",
    }
    if config.urls:
        body["urls"] = config.urls
    if config.tag:
        body["tag"] = config.tag
    return _json.encode(body)
