"""/api/v1/admin/canaries: jobs that must check in (their channels: ingest_api.channels).
Every change is a record on the control topic first (event-sourced), applied locally at once."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from ingest_api.admin import AdminServices
from ingest_api.control import generate_token, hash_token
from ingest_api.query_backend import QueryBackendUnavailable
from ingest_api.responses import error, json_response
from ingest_api.services import AppendFailed, Services
from processors.heartbeat import CanaryState, deadline, next_due_at, status_at
from schemas.canaries import (
    CanaryDefined,
    CanaryDeleted,
    CanaryName,
    ChannelIds,
    EventsExpected,
    GraceSeconds,
    IntervalSeconds,
)
from schemas.control import ControlRecord
from schemas.partitions import canary_partition
from schemas.times import iso_or_none, iso_utc
from schemas.topics import Topic

router = APIRouter(prefix="/api/v1/admin")
UNSET = msgspec.UNSET


class CreateCanary(msgspec.Struct, forbid_unknown_fields=True):
    name: CanaryName
    interval_seconds: IntervalSeconds
    grace_seconds: GraceSeconds = 0
    channels: ChannelIds = []
    max_runtime_seconds: IntervalSeconds | None = None
    # A canary over events: no check-ins (and no token); at least `min_count` events named
    # `name` must arrive every interval.
    events: EventsExpected | None = None


class ChangeCanary(msgspec.Struct, forbid_unknown_fields=True):
    name: CanaryName | msgspec.UnsetType = UNSET
    interval_seconds: IntervalSeconds | msgspec.UnsetType = UNSET
    grace_seconds: GraceSeconds | msgspec.UnsetType = UNSET
    channels: ChannelIds | msgspec.UnsetType = UNSET
    max_runtime_seconds: IntervalSeconds | None | msgspec.UnsetType = UNSET
    paused: bool | msgspec.UnsetType = UNSET
    events: EventsExpected | msgspec.UnsetType = UNSET  # a canary over events stays one


_create_canary = msgspec.json.Decoder(CreateCanary)
_change_canary = msgspec.json.Decoder(ChangeCanary)


async def append_control(services: Services, record: ControlRecord) -> Response | None:
    """The control topic first (it is authoritative); a canary's definition also goes straight
    onto its check-ins partition, so a check-in sent right after this answer (a /fail, say)
    can never reach the heartbeats agent before the definition. The forwarding agent's later
    copy is a harmless replay; if this second append fails, that copy still arrives."""
    key = record.id.encode()
    try:
        value = await services.append_applied(Topic.CONTROL, record, services.control.apply, key)
        if isinstance(record, (CanaryDefined, CanaryDeleted)):
            await services.append(Topic.CHECKINS, value, canary_partition(record.id), key)
    except AppendFailed as exc:
        return error(503, str(exc))
    return None


def decode_body(decoder: msgspec.json.Decoder, body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None


# A channel created through another API process reaches this one through the control topic
# a moment later: wait that long before calling an id unknown (read-your-writes for a client).
CHANNEL_WAIT_S = 2.0


async def unknown_channels(services: Services, channels: list[str]) -> list[str]:
    deadline = time.monotonic() + CHANNEL_WAIT_S
    while True:
        unknown = [c for c in channels if c not in services.control.channels]
        if not unknown or time.monotonic() > deadline:
            return unknown
        await asyncio.sleep(0.05)


def name_taken(services: Services, name: str, own_id: str | None = None) -> Response | None:
    """409 if another canary has this name: alerts, lists and the CLI show canaries by name,
    and two of one name could not be told apart there. (Admin requests read the control topic
    to its end first, so this sees every canary any API process had created by then.)"""
    for other in services.control.canaries.values():
        if other.name == name and other.id != own_id:
            return error(409, f"a canary named {name!r} exists already: {other.id}")
    return None


def canary_view(canary: CanaryDefined, facts: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """A canary as the API shows it: its definition and where it stands now."""
    facts = facts or {}
    state = CanaryState(
        canary.id,
        definition=canary,
        status="down" if facts.get("down") else ("up" if facts.get("last_checkin_at") else "new"),
        period_start=max(canary.created_at, facts.get("period_start") or 0.0),
        last_checkin_at=facts.get("last_checkin_at"),
        last_message=facts.get("last_message") or "",
        started_at=facts.get("started_at"),
    )
    if canary.events is not None:
        # Windows of `interval` from the creation (or the last restoration); the count of the
        # one in progress lives in the worker, so the API shows where the windows stand.
        elapsed = max(0.0, now - state.period_start)
        state.window_start = state.period_start + elapsed // canary.interval_s * canary.interval_s
        if state.status != "down" and elapsed > canary.interval_s + canary.grace_s:
            state.status = "up"
    status = status_at(state, now)
    return {
        "id": canary.id,
        "name": canary.name,
        "interval_seconds": canary.interval_s,
        "grace_seconds": canary.grace_s,
        "max_runtime_seconds": canary.max_runtime_s,
        "events": None if canary.events is None else msgspec.to_builtins(canary.events),
        "channels": canary.channels,
        "paused": canary.paused,
        "created_at": iso_utc(canary.created_at),
        "status": status,
        "last_checkin_at": iso_or_none(state.last_checkin_at),
        "last_message": state.last_message or None,
        "next_due_at": None if canary.paused else iso_or_none(next_due_at(state)),
        # When it goes down unless it checks in; while down, when it went down.
        "down_after": iso_or_none(facts.get("last_flip_at") if status == "down" else deadline(state)),
    }


async def _facts(services: Services) -> dict[str, dict[str, Any]]:
    result = await services.queries.run("canary_facts", {})
    return {row["canary_id"]: row for row in result["canaries"]}


@router.post("/canaries", status_code=201)
async def create_canary(request: Request, services: AdminServices) -> Response:
    try:
        spec: CreateCanary = decode_body(_create_canary, await request.body())
    except ValueError as exc:
        return error(400, f"invalid canary: {exc}")
    unknown = await unknown_channels(services, spec.channels)
    if unknown:
        return error(400, f"unknown channel(s): {', '.join(unknown)}")
    taken = name_taken(services, spec.name)
    if taken:
        return taken
    token, now = generate_token(), time.time()
    record = CanaryDefined(
        id="can_" + secrets.token_hex(8),
        name=spec.name,
        token_hash=hash_token(token),
        interval_s=spec.interval_seconds,
        grace_s=spec.grace_seconds,
        channels=spec.channels,
        created_at=now,
        changed_at=now,
        max_runtime_s=spec.max_runtime_seconds,
        events=spec.events,
    )
    if spec.events is not None and spec.max_runtime_seconds is not None:
        return error(400, "invalid canary: `max_runtime_seconds` needs check-ins, not `events`")
    failed = await append_control(services, record)
    if failed:
        return failed
    view = canary_view(record, None, now)
    if spec.events is not None:
        return json_response(201, view)  # no check-ins: its token is never shown
    return json_response(201, {**view, "token": token, "checkin_path": f"/checkin/{token}"})


async def canary_views(services: Services) -> list[dict[str, Any]]:
    """Every canary as the API shows it, oldest first (QueryBackendUnavailable without
    ClickHouse, where the facts come from)."""
    facts = await _facts(services)
    now = time.time()
    canaries = sorted(services.control.canaries.values(), key=lambda c: c.created_at)
    return [canary_view(c, facts.get(c.id), now) for c in canaries]


@router.get("/canaries")
async def list_canaries(services: AdminServices) -> Response:
    try:
        return json_response(200, {"canaries": await canary_views(services)})
    except QueryBackendUnavailable as exc:
        return error(503, str(exc))


@router.get("/canaries/{canary_id}")
async def get_canary(canary_id: str, services: AdminServices) -> Response:
    canary = services.control.canaries.get(canary_id)
    if canary is None:
        return error(404, f"no canary {canary_id!r}")
    try:
        facts = await _facts(services)
    except QueryBackendUnavailable as exc:
        return error(503, str(exc))
    return json_response(200, canary_view(canary, facts.get(canary_id), time.time()))


@router.patch("/canaries/{canary_id}")
async def change_canary(canary_id: str, request: Request, services: AdminServices) -> Response:
    canary = services.control.canaries.get(canary_id)
    if canary is None:
        return error(404, f"no canary {canary_id!r}")
    try:
        change: ChangeCanary = decode_body(_change_canary, await request.body())
    except ValueError as exc:
        return error(400, f"invalid change: {exc}")
    changes = {
        field: value
        for field, value in (
            ("name", change.name),
            ("interval_s", change.interval_seconds),
            ("grace_s", change.grace_seconds),
            ("channels", change.channels),
            ("max_runtime_s", change.max_runtime_seconds),
            ("paused", change.paused),
            ("events", change.events),
        )
        if value is not UNSET
    }
    taken = name_taken(services, changes["name"], canary_id) if "name" in changes else None
    if taken:
        return taken
    if "events" in changes and canary.events is None:
        return error(400, "invalid change: a canary over check-ins cannot become one over events")
    unknown = await unknown_channels(services, changes.get("channels", []))
    if unknown:
        return error(400, f"unknown channel(s): {', '.join(unknown)}")
    now = time.time()
    record = msgspec.structs.replace(canary, changed_at=max(now, canary.changed_at), **changes)
    failed = await append_control(services, record)
    if failed:
        return failed
    try:
        facts = (await _facts(services)).get(canary_id)
    except QueryBackendUnavailable:
        facts = None  # the change is made; only the status shown is less complete
    return json_response(200, canary_view(record, facts, now))


@router.delete("/canaries/{canary_id}")
async def delete_canary(canary_id: str, services: AdminServices) -> Response:
    if canary_id not in services.control.canaries:
        return error(404, f"no canary {canary_id!r}")
    failed = await append_control(services, CanaryDeleted(canary_id, time.time()))
    return failed or json_response(200, {"id": canary_id, "deleted": True})
