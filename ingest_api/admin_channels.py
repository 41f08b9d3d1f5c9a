"""/api/v1/admin/channels: where alerts go (webhook, Slack, e-mail and the services of
domain.channel_payloads), and a test of each.
Every change is a record on the control topic first (event-sourced), applied locally at once."""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from domain.notification_texts import rendered_test
from ingest_api.admin_canaries import append_control
from ingest_api.admin_keys import AdminServices
from ingest_api.responses import error, json_response
from runtime.notify_senders import deliver, http_session
from schemas.canaries import (
    GROUP_WAIT_MAX_S,
    REMIND_EVERY_MIN_S,
    REMIND_MAX_MAX,
    AppriseConfig,
    ChannelConfig,
    ChannelDefined,
    ChannelDeleted,
    DiscordConfig,
    EmailConfig,
    NtfyConfig,
    OpsgenieConfig,
    PagerDutyConfig,
    SlackConfig,
    TeamsConfig,
    TelegramConfig,
    WebhookConfig,
)
from schemas.times import iso_utc

router = APIRouter(prefix="/api/v1/admin")


def channel_view(channel: ChannelDefined) -> dict[str, Any]:
    """A channel without its secrets: no webhook secret, no SMTP password, and only the host
    of a Slack URL (the URL itself is the credential)."""
    config = channel.config
    shown: dict[str, Any] = {
        "id": channel.id,
        "name": channel.name,
        "created_at": iso_utc(channel.created_at),
        "group_wait_s": channel.group_wait_s,
        "remind_every_s": channel.remind_every_s,
        "remind_max": channel.remind_max,
    }
    if isinstance(config, WebhookConfig):
        shown.update(kind="webhook", url=config.url, timeout_s=config.timeout_s)
    elif isinstance(config, SlackConfig):
        shown.update(kind="slack", url_host=host_of(config.url))
    elif isinstance(config, (DiscordConfig, TeamsConfig, AppriseConfig)):
        # Their URLs hold the credential (a webhook token, an Apprise key).
        shown.update(kind=kind_of(config), url_host=host_of(config.url))
    elif isinstance(config, TelegramConfig):
        shown.update(kind="telegram", chat_id=config.chat_id, url_host=host_of(config.url))
    elif isinstance(config, (PagerDutyConfig, OpsgenieConfig, NtfyConfig)):
        # No key, no ntfy topic (on a public server, whoever knows it can read it).
        shown.update(kind=kind_of(config), url=config.url)
    elif isinstance(config, EmailConfig):
        shown.update(
            kind="email",
            to=config.to,
            host=config.host,
            port=config.port,
            starttls=config.starttls,
            username=config.username,
            sender=config.sender,
        )
    return shown


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def kind_of(config: ChannelConfig) -> str:
    return str(config.__struct_config__.tag)


def host_of(url: str) -> str:
    return url.split("/")[2] if "//" in url else ""


def _settings(
    body: dict[str, Any], group_wait: float, remind_every: int, remind_max: int
) -> tuple[float, int, int]:
    """The delivery settings popped from a request body (given ones replace the defaults
    passed in), checked; ValueError says which is wrong."""
    group_wait = body.pop("group_wait_s", group_wait)
    if (
        not isinstance(group_wait, int | float)
        or isinstance(group_wait, bool)
        or not 0 <= group_wait <= GROUP_WAIT_MAX_S
    ):
        raise ValueError(f"`group_wait_s` must be 0-{GROUP_WAIT_MAX_S:g} seconds")
    remind_every = body.pop("remind_every_s", remind_every)
    remind_max = body.pop("remind_max", remind_max)
    if not _whole(remind_every) or not (
        remind_every == 0 or REMIND_EVERY_MIN_S <= remind_every <= 30 * 86400
    ):
        raise ValueError(f"`remind_every_s` must be 0 (never) or {REMIND_EVERY_MIN_S} s-30 d")
    if not _whole(remind_max) or not 1 <= remind_max <= REMIND_MAX_MAX:
        raise ValueError(f"`remind_max` must be 1-{REMIND_MAX_MAX}")
    return float(group_wait), remind_every, remind_max


@router.post("/channels", status_code=201)
async def create_channel(request: Request, services: AdminServices) -> Response:
    try:
        body = msgspec.json.decode(await request.body())
        if not isinstance(body, dict):
            raise ValueError("expected an object")
        name = body.pop("name", None)
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ValueError("`name` (1-200 characters) is required")
        group_wait, remind_every, remind_max = _settings(body, 0.0, 0, 10)
        config = msgspec.convert(body, ChannelConfig)  # type: ignore[arg-type]
        if not getattr(config, "url", "https://x").startswith(("http://", "https://")):
            raise ValueError("`url` must be an http(s) URL")
    except (msgspec.MsgspecError, UnicodeDecodeError, ValueError) as exc:
        return error(400, f"invalid channel: {exc}")
    if isinstance(config, WebhookConfig) and not config.secret:
        config = msgspec.structs.replace(config, secret=secrets.token_hex(32))
    record = ChannelDefined(
        "chn_" + secrets.token_hex(8),
        name,
        config,
        time.time(),
        group_wait_s=group_wait,
        remind_every_s=remind_every,
        remind_max=remind_max,
    )
    failed = await append_control(services, record)
    if failed:
        return failed
    shown = channel_view(record)
    if isinstance(config, WebhookConfig):
        shown["secret"] = config.secret  # shown once, to verify signatures
    return json_response(201, shown)


@router.get("/channels")
async def list_channels(services: AdminServices) -> Response:
    channels = sorted(services.control.channels.values(), key=lambda c: c.created_at)
    return json_response(200, {"channels": [channel_view(c) for c in channels]})


@router.patch("/channels/{channel_id}")
async def update_channel(channel_id: str, request: Request, services: AdminServices) -> Response:
    """Change a channel's name or delivery settings (`group_wait_s`, `remind_every_s`,
    `remind_max`) without deleting it: a new version of its definition on the control topic.
    Where it sends is not changed here (delete and create: canaries name the new id)."""
    channel = services.control.channels.get(channel_id)
    if channel is None:
        return error(404, f"no channel {channel_id!r}")
    try:
        body = msgspec.json.decode(await request.body())
        if not isinstance(body, dict):
            raise ValueError("expected an object")
        name = body.pop("name", channel.name)
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ValueError("`name` must be 1-200 characters")
        settings = _settings(body, channel.group_wait_s, channel.remind_every_s, channel.remind_max)
        if body:
            raise ValueError(f"only name and the delivery settings change here, not {sorted(body)}")
    except (msgspec.MsgspecError, UnicodeDecodeError, ValueError) as exc:
        return error(400, f"invalid change: {exc}")
    group_wait, remind_every, remind_max = settings
    record = msgspec.structs.replace(
        channel,
        name=name,
        group_wait_s=group_wait,
        remind_every_s=remind_every,
        remind_max=remind_max,
        # Strictly after the version it replaces (the store keeps the highest), whatever
        # the clock did.
        changed_at=max(time.time(), max(channel.created_at, channel.changed_at) + 0.001),
    )
    failed = await append_control(services, record)
    return failed or json_response(200, channel_view(record))


@router.delete("/channels/{channel_id}")
async def delete_channel(channel_id: str, services: AdminServices) -> Response:
    if channel_id not in services.control.channels:
        return error(404, f"no channel {channel_id!r}")
    failed = await append_control(services, ChannelDeleted(channel_id, time.time()))
    return failed or json_response(200, {"id": channel_id, "deleted": True})


@router.post("/channels/{channel_id}/test")
async def test_channel(channel_id: str, services: AdminServices) -> Response:
    """Send a test notification through the channel now, once (no retries: the answer says
    at once whether it arrived), and say what happened. Not stored, not an alert."""
    channel = services.control.channels.get(channel_id)
    if channel is None:
        return error(404, f"no channel {channel_id!r}")
    now = time.time()
    notice = rendered_test(
        channel.id, channel.name, f"test:{channel.id}:{secrets.token_hex(4)}", now
    )
    once = msgspec.structs.replace(channel.config, max_attempts=1)
    async with http_session(connections=1) as http:
        [attempt] = await deliver(once, channel.id, notice, http)
    return json_response(
        200, {"id": channel.id, "ok": attempt.ok, "detail": attempt.detail, "delivery": notice.id}
    )
