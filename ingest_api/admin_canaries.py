"""/api/v1/admin/canaries: jobs that must check in (their channels: ingest_api.admin_channels).
Every change is a record on the control topic first (event-sourced), applied locally at once."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from domain.canary_state import CanaryState, deadline, next_due_at, status_at
from domain.quiet import FOREVER, quiet_until
from domain.schedule import explain
from ingest_api.admin_keys import AdminServices
from ingest_api.canary_checks import definition_problem, dependency_problem, name_taken, slug_taken
from ingest_api.responses import error, json_response
from ingest_api.services import AppendFailed, Services
from runtime.control_registry import generate_token, hash_token, is_uuid, ping_key
from runtime.query_backend import QueryBackendUnavailable
from schemas.canaries import (
    MAX_TAGS,
    AbnormalRuns,
    CanaryDefined,
    CanaryDeleted,
    CanaryName,
    ChannelIds,
    EventsExpected,
    FailureRate,
    GraceSeconds,
    IntervalSeconds,
    ScheduleText,
    Slug,
    Tags,
    Threshold,
    TimezoneName,
    slug_of,
)
from schemas.control import ControlRecord
from schemas.partitions import canary_partition
from schemas.quiet import WindowDefined
from schemas.times import iso_or_none, iso_utc
from schemas.topics import Topic

router = APIRouter(prefix="/api/v1/admin")
UNSET = msgspec.UNSET


DependsOn = Annotated[list[str], msgspec.Meta(max_length=MAX_TAGS)]


class CreateCanary(msgspec.Struct, forbid_unknown_fields=True):
    name: CanaryName
    # One of the two: every `interval_seconds`, or at each slot of the cron `schedule`
    # (domain.schedule) in `timezone` (IANA, default UTC).
    interval_seconds: IntervalSeconds | None = None
    schedule: ScheduleText | None = None
    timezone: TimezoneName | None = None
    grace_seconds: GraceSeconds = 0
    channels: ChannelIds = []
    max_runtime_seconds: IntervalSeconds | None = None
    start_margin_seconds: GraceSeconds | None = None
    failure_threshold: Threshold | msgspec.UnsetType = UNSET  # default 1 (or failure_rate's)
    recovery_threshold: Threshold = 1
    failure_rate: FailureRate | None = None
    slug: Slug | None = None
    abnormal: AbnormalRuns | None = None  # opt-in alerts on runs unlike the canary's past ones
    # A Healthchecks check's ping UUID, kept as the token so its ping URLs stay the same.
    token: str | None = None
    # A canary over events: no check-ins (and no token); at least `min_count` events named
    # `name` must arrive every interval.
    events: EventsExpected | None = None
    tags: Tags = []
    # Held while one of these (canary ids; canaries with these tags) is down: domain.holds.
    depends_on: DependsOn = []
    depends_on_tags: Tags = []


class ChangeCanary(msgspec.Struct, forbid_unknown_fields=True):
    name: CanaryName | msgspec.UnsetType = UNSET
    interval_seconds: IntervalSeconds | msgspec.UnsetType = UNSET
    grace_seconds: GraceSeconds | msgspec.UnsetType = UNSET
    channels: ChannelIds | msgspec.UnsetType = UNSET
    max_runtime_seconds: IntervalSeconds | None | msgspec.UnsetType = UNSET
    paused: bool | msgspec.UnsetType = UNSET
    events: EventsExpected | msgspec.UnsetType = UNSET  # a canary over events stays one
    schedule: ScheduleText | None | msgspec.UnsetType = UNSET
    timezone: TimezoneName | None | msgspec.UnsetType = UNSET
    start_margin_seconds: GraceSeconds | None | msgspec.UnsetType = UNSET
    failure_threshold: Threshold | msgspec.UnsetType = UNSET
    recovery_threshold: Threshold | msgspec.UnsetType = UNSET
    failure_rate: FailureRate | None | msgspec.UnsetType = UNSET
    slug: Slug | None | msgspec.UnsetType = UNSET
    abnormal: AbnormalRuns | None | msgspec.UnsetType = UNSET
    tags: Tags | msgspec.UnsetType = UNSET
    depends_on: DependsOn | msgspec.UnsetType = UNSET
    depends_on_tags: Tags | msgspec.UnsetType = UNSET


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


def canary_view(
    canary: CanaryDefined,
    facts: dict[str, Any] | None,
    now: float,
    windows: Iterable[WindowDefined] = (),
) -> dict[str, Any]:
    """A canary as the API shows it: its definition and where it stands now (in a
    maintenance window: "maintenance" instead of new, up or late; down stays down)."""
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
    quiet = quiet_until(windows, canary, now)
    if quiet > now and status in ("new", "up", "late"):
        status = "maintenance"
    return {
        "id": canary.id,
        "name": canary.name,
        "interval_seconds": canary.interval_s or None,
        "schedule": canary.schedule,
        "timezone": canary.timezone,
        "schedule_text": None if canary.schedule is None else explain(canary.schedule),
        "grace_seconds": canary.grace_s,
        "max_runtime_seconds": canary.max_runtime_s,
        "start_margin_seconds": canary.start_margin_s,
        "failure_threshold": canary.failure_threshold,
        "recovery_threshold": canary.recovery_threshold,
        "failure_rate": None
        if canary.failure_rate is None
        else msgspec.to_builtins(canary.failure_rate),
        "slug": slug_of(canary),
        "abnormal": None if canary.abnormal is None else msgspec.to_builtins(canary.abnormal),
        "events": None if canary.events is None else msgspec.to_builtins(canary.events),
        "channels": canary.channels,
        "tags": canary.tags,
        "depends_on": canary.depends_on,
        "depends_on_tags": canary.depends_on_tags,
        # The end of the maintenance it is in (null: none, or open-ended).
        "maintenance_until": iso_utc(quiet) if now < quiet < FOREVER else None,
        "paused": canary.paused,
        "created_at": iso_utc(canary.created_at),
        "status": status,
        "last_checkin_at": iso_or_none(state.last_checkin_at),
        "last_message": state.last_message or None,
        "next_due_at": None if canary.paused else iso_or_none(next_due_at(state)),
        # When it goes down unless it checks in; while down, when it went down.
        "down_after": iso_or_none(
            facts.get("last_flip_at") if status == "down" else deadline(state)
        ),
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
    if spec.token is not None:
        if not is_uuid(spec.token):
            return error(400, "invalid canary: `token` must be a UUID (a Healthchecks ping UUID)")
        if services.control.canary_by_token(spec.token) is not None:
            return error(409, "invalid canary: another canary has this `token`")
    token, now = spec.token or generate_token(), time.time()
    failure_threshold = spec.failure_threshold
    if failure_threshold is UNSET:
        # With a failure rate, X consecutive failures are X of the last Y as well.
        failure_threshold = spec.failure_rate.failures if spec.failure_rate else 1
    record = CanaryDefined(
        id="can_" + secrets.token_hex(8),
        name=spec.name,
        token_hash=hash_token(token),
        interval_s=spec.interval_seconds or 0,
        grace_s=spec.grace_seconds,
        channels=spec.channels,
        created_at=now,
        changed_at=now,
        max_runtime_s=spec.max_runtime_seconds,
        events=spec.events,
        schedule=spec.schedule,
        timezone=spec.timezone,
        start_margin_s=spec.start_margin_seconds,
        failure_threshold=failure_threshold,  # type: ignore[arg-type]
        recovery_threshold=spec.recovery_threshold,
        failure_rate=spec.failure_rate,
        slug=spec.slug,
        abnormal=spec.abnormal,
        tags=sorted(set(spec.tags)),
        depends_on=sorted(set(spec.depends_on)),
        depends_on_tags=sorted(set(spec.depends_on_tags)),
    )
    if spec.events is not None and spec.max_runtime_seconds is not None:
        return error(400, "invalid canary: `max_runtime_seconds` needs check-ins, not `events`")
    failed = await checked_append(services, record, "invalid canary")
    if failed:
        return failed
    view = canary_view(record, None, now, services.control.windows.values())
    if spec.events is not None:
        return json_response(201, view)  # no check-ins: its token is never shown
    paths = {"checkin_path": f"/checkin/{token}", "ping_path": f"/ping/{token}"}
    return json_response(201, {**view, "token": token, **paths})


async def checked_append(
    services: Services, record: CanaryDefined, invalid: str
) -> Response | None:
    """Append a canary's definition once it is whole and its slug free; else the refusal."""
    problem = definition_problem(record) or dependency_problem(services, record)
    if problem:
        return error(400, f"{invalid}: {problem}")
    return slug_taken(services, record) or await append_control(services, record)


async def canary_views(services: Services, tag: str | None = None) -> list[dict[str, Any]]:
    """Every canary (or those with `tag`) as the API shows it, oldest first
    (QueryBackendUnavailable without ClickHouse, where the facts come from)."""
    facts = await _facts(services)
    now = time.time()
    canaries = sorted(services.control.canaries.values(), key=lambda c: c.created_at)
    windows = list(services.control.windows.values())
    return [
        canary_view(c, facts.get(c.id), now, windows)
        for c in canaries
        if tag is None or tag in c.tags
    ]


@router.get("/ping-key")
async def get_ping_key(services: AdminServices) -> Response:
    """The key of slug ping URLs: /ping/<ping_key>/<slug> (ingest_api.ping)."""
    key = ping_key(services.settings)
    return json_response(200, {"ping_key": key, "ping_path": f"/ping/{key}/"})


@router.get("/canaries")
async def list_canaries(services: AdminServices, tag: str | None = None) -> Response:
    """Every canary, or those carrying `tag`."""
    try:
        return json_response(200, {"canaries": await canary_views(services, tag)})
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
    view = canary_view(canary, facts.get(canary_id), time.time(), services.control.windows.values())
    return json_response(200, view)


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
            ("schedule", change.schedule),
            ("timezone", change.timezone),
            ("start_margin_s", change.start_margin_seconds),
            ("failure_threshold", change.failure_threshold),
            ("recovery_threshold", change.recovery_threshold),
            ("failure_rate", change.failure_rate),
            ("slug", change.slug),
            ("abnormal", change.abnormal),
            ("tags", change.tags),
            ("depends_on", change.depends_on),
            ("depends_on_tags", change.depends_on_tags),
        )
        if value is not UNSET
    }
    # An interval and a schedule replace each other.
    if changes.get("interval_s") is not None and "schedule" not in changes:
        changes.update(schedule=None, timezone=changes.get("timezone"))
    elif changes.get("schedule") is not None and "interval_s" not in changes:
        changes["interval_s"] = 0
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
    failed = await checked_append(services, record, "invalid change")
    if failed:
        return failed
    try:
        facts = (await _facts(services)).get(canary_id)
    except QueryBackendUnavailable:
        facts = None  # the change is made; only the status shown is less complete
    return json_response(200, canary_view(record, facts, now, services.control.windows.values()))


@router.delete("/canaries/{canary_id}")
async def delete_canary(canary_id: str, services: AdminServices) -> Response:
    if canary_id not in services.control.canaries:
        return error(404, f"no canary {canary_id!r}")
    failed = await append_control(services, CanaryDeleted(canary_id, time.time()))
    return failed or json_response(200, {"id": canary_id, "deleted": True})
