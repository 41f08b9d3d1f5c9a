"""/api/v1/admin/windows and /api/v1/admin/silences: maintenance windows for canaries and
silences for error alerts (schemas.quiet, domain.quiet). Records on the control topic like
canaries; the worker follows that topic. DELETE ends one now (a record with `ends_at` now):
the worker restarts the deadlines it held from that moment.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from domain.quiet import next_opening, window_now
from domain.schedule import BadSchedule, check_schedule
from ingest_api.admin_canaries import append_control, decode_body
from ingest_api.admin_keys import AdminServices
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from schemas.canaries import ScheduleText, Tag, TimezoneName
from schemas.quiet import (
    MAX_TARGETS,
    WINDOW_DURATION_MAX_S,
    Author,
    Comment,
    SilenceDefined,
    SilenceType,
    WindowDefined,
)
from schemas.routing import Pattern
from schemas.times import epoch_of, iso_or_none, iso_utc

router = APIRouter(prefix="/api/v1/admin")

Minutes = Annotated[int, msgspec.Meta(ge=1, le=366 * 24 * 60)]
Duration = Annotated[int, msgspec.Meta(ge=1, le=WINDOW_DURATION_MAX_S)]
Ids = Annotated[list[str], msgspec.Meta(max_length=MAX_TARGETS)]
TagList = Annotated[list[Tag], msgspec.Meta(max_length=MAX_TARGETS)]


class CreateWindow(msgspec.Struct, forbid_unknown_fields=True):
    # What it covers: canaries by id, by tag, or everything.
    canaries: Ids = []
    tags: TagList = []
    everything: bool = False
    # When: from `starts_at` (ISO 8601, default now) until `ends_at`, or for `minutes`;
    # neither: open-ended. With `schedule` (+ `timezone`), each slot opens it for
    # `duration_seconds`, from `starts_at` and until `ends_at` if given.
    starts_at: str | None = None
    ends_at: str | None = None
    minutes: Minutes | None = None
    schedule: ScheduleText | None = None
    timezone: TimezoneName | None = None
    duration_seconds: Duration | None = None
    comment: Comment = ""
    created_by: Author = ""


class CreateSilence(msgspec.Struct, forbid_unknown_fields=True):
    name: Pattern  # a glob over alert names, as routing rules
    comment: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    created_by: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    type: SilenceType = "any"
    key_id: str | None = None
    starts_at: str | None = None  # default now
    ends_at: str | None = None  # or `minutes`: one of the two
    minutes: Minutes | None = None


_create_window = msgspec.json.Decoder(CreateWindow)
_create_silence = msgspec.json.Decoder(CreateSilence)


LATEST = 4_102_444_800.0  # 2100-01-01: later times are typos (and near datetime's limits)


def _when(text: str | None, field: str) -> float | None:
    if text is None:
        return None
    try:
        at = epoch_of(text)
    except (ValueError, OverflowError):
        at = -1.0
    if not 0 <= at < LATEST:
        raise ValueError(f"`{field}` must be an ISO 8601 time, e.g. 2026-03-01T02:00:00Z")
    return at


def window_record(spec: CreateWindow, now: float, id: str | None = None) -> WindowDefined:
    """The record a request makes (ValueError: what is wrong with it)."""
    if not (spec.canaries or spec.tags or spec.everything):
        raise ValueError("say what it covers: `canaries`, `tags` or `everything`")
    starts = _when(spec.starts_at, "starts_at") or now
    ends = _when(spec.ends_at, "ends_at")
    if spec.minutes is not None:
        if ends is not None:
            raise ValueError("give `ends_at` or `minutes`, not both")
        ends = starts + spec.minutes * 60
    if ends is not None and ends <= starts:
        raise ValueError("`ends_at` must be after `starts_at`")
    if (spec.schedule is None) != (spec.duration_seconds is None):
        raise ValueError("a recurring window needs both `schedule` and `duration_seconds`")
    if spec.schedule is not None:
        try:
            check_schedule(spec.schedule, spec.timezone)
        except BadSchedule as exc:
            raise ValueError(str(exc)) from None
    elif spec.timezone is not None:
        raise ValueError("`timezone` goes with a `schedule`")
    return WindowDefined(
        id=id or "win_" + secrets.token_hex(8),
        starts_at=starts,
        created_at=now,
        changed_at=now,
        ends_at=ends,
        schedule=spec.schedule,
        timezone=spec.timezone,
        duration_s=spec.duration_seconds or 0,
        canaries=sorted(set(spec.canaries)),
        tags=sorted(set(spec.tags)),
        everything=spec.everything,
        comment=spec.comment,
        created_by=spec.created_by,
    )


def window_view(w: WindowDefined, now: float) -> dict[str, Any]:
    return {
        "id": w.id,
        "state": window_now(w, now),
        "canaries": w.canaries,
        "tags": w.tags,
        "everything": w.everything,
        "starts_at": iso_utc(w.starts_at),
        "ends_at": iso_or_none(w.ends_at),
        "schedule": w.schedule,
        "timezone": w.timezone,
        "duration_seconds": w.duration_s or None,
        "next_opening_at": iso_or_none(next_opening(w, now)),
        "comment": w.comment,
        "created_by": w.created_by,
        "created_at": iso_utc(w.created_at),
    }


def silence_view(s: SilenceDefined, now: float) -> dict[str, Any]:
    state = "ended" if s.ends_at <= now else ("active" if s.starts_at <= now else "pending")
    return {
        "id": s.id,
        "state": state,
        "name": s.name,
        "type": s.match_type,
        "key_id": s.key_id,
        "starts_at": iso_utc(s.starts_at),
        "ends_at": iso_utc(s.ends_at),
        "comment": s.comment,
        "created_by": s.created_by,
        "created_at": iso_utc(s.created_at),
    }


async def add_window(services: Services, record: WindowDefined) -> Response:
    missing = [c for c in record.canaries if c not in services.control.canaries]
    if missing:
        return error(400, f"unknown canary id(s): {', '.join(missing)}")
    failed = await append_control(services, record)
    return failed or json_response(201, window_view(record, time.time()))


@router.post("/windows", status_code=201)
async def create_window(request: Request, services: AdminServices) -> Response:
    now = time.time()
    try:
        record = window_record(decode_body(_create_window, await request.body()), now)
    except ValueError as exc:
        return error(400, f"invalid window: {exc}")
    return await add_window(services, record)


def _include(state: str, all: bool) -> bool:
    return all or state != "ended"


@router.get("/windows")
async def list_windows(services: AdminServices, all: bool = False) -> Response:
    """Open and scheduled windows, oldest first (`?all=true`: the ended ones too)."""
    now = time.time()
    windows = sorted(services.control.windows.values(), key=lambda w: w.created_at)
    views = [window_view(w, now) for w in windows]
    return json_response(200, {"windows": [v for v in views if _include(v["state"], all)]})


@router.delete("/windows/{window_id}")
async def end_window(window_id: str, services: AdminServices) -> Response:
    window = services.control.windows.get(window_id)
    if window is None:
        return error(404, f"no window {window_id!r}")
    now = time.time()
    if window.ends_at is not None and window.ends_at <= now:
        return json_response(200, window_view(window, now))  # ended already
    record = msgspec.structs.replace(window, ends_at=now, changed_at=max(now, window.changed_at))
    failed = await append_control(services, record)
    return failed or json_response(200, window_view(record, now))


@router.post("/silences", status_code=201)
async def create_silence(request: Request, services: AdminServices) -> Response:
    now = time.time()
    try:
        spec: CreateSilence = decode_body(_create_silence, await request.body())
        starts = _when(spec.starts_at, "starts_at") or now
        ends = _when(spec.ends_at, "ends_at")
        if (ends is None) == (spec.minutes is None):
            raise ValueError("give `ends_at` or `minutes` (a silence always ends)")
        ends = ends if ends is not None else starts + spec.minutes * 60  # type: ignore[operator]
        if ends <= starts:
            raise ValueError("`ends_at` must be after `starts_at`")
    except ValueError as exc:
        return error(400, f"invalid silence: {exc}")
    record = SilenceDefined(
        id="sil_" + secrets.token_hex(8),
        name=spec.name,
        starts_at=starts,
        ends_at=ends,
        comment=spec.comment,
        created_by=spec.created_by,
        created_at=now,
        changed_at=now,
        match_type=spec.type,
        key_id=spec.key_id,
    )
    failed = await append_control(services, record)
    return failed or json_response(201, silence_view(record, now))


@router.get("/silences")
async def list_silences(services: AdminServices, all: bool = False) -> Response:
    """Active and pending silences, oldest first (`?all=true`: the ended ones too)."""
    now = time.time()
    silences = sorted(services.control.silences.values(), key=lambda s: s.created_at)
    views = [silence_view(s, now) for s in silences]
    return json_response(200, {"silences": [v for v in views if _include(v["state"], all)]})


@router.delete("/silences/{silence_id}")
async def expire_silence(silence_id: str, services: AdminServices) -> Response:
    silence = services.control.silences.get(silence_id)
    if silence is None:
        return error(404, f"no silence {silence_id!r}")
    now = time.time()
    if silence.ends_at <= now:
        return json_response(200, silence_view(silence, now))
    record = msgspec.structs.replace(
        silence,
        starts_at=min(now, silence.starts_at),
        ends_at=now,
        changed_at=max(now, silence.changed_at),
    )
    failed = await append_control(services, record)
    return failed or json_response(200, silence_view(record, now))
