"""/api/v1/admin/routes: which events and errors notify whom, and how (schemas.routing).

Rules are records on the control topic, like canaries and channels; the error router and the
digest builder in the worker follow that topic, so a change applies to the next event.
"""

from __future__ import annotations

import secrets
import time
import zoneinfo
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from domain.routing_rules import ordered
from ingest_api.admin_canaries import append_control, decode_body, unknown_channels
from ingest_api.admin_keys import AdminServices
from ingest_api.responses import error, json_response
from schemas.canaries import ChannelIds
from schemas.routing import (
    DEFAULT_PRIORITY,
    DEFAULT_QUIET_WINDOW_S,
    DigestSchedule,
    Pattern,
    QuietWindow,
    RouteDefined,
    RouteDeleted,
    RouteMode,
    RouteType,
)
from schemas.times import iso_utc

router = APIRouter(prefix="/api/v1/admin")
UNSET = msgspec.UNSET


class CreateRoute(msgspec.Struct, forbid_unknown_fields=True):
    type: RouteType
    name: Pattern
    mode: RouteMode
    channels: ChannelIds = []
    key_id: str | None = None
    digest: DigestSchedule | None = None
    quiet_window_seconds: QuietWindow = DEFAULT_QUIET_WINDOW_S
    priority: int = DEFAULT_PRIORITY


class ChangeRoute(msgspec.Struct, forbid_unknown_fields=True):
    type: RouteType | msgspec.UnsetType = UNSET
    name: Pattern | msgspec.UnsetType = UNSET
    mode: RouteMode | msgspec.UnsetType = UNSET
    channels: ChannelIds | msgspec.UnsetType = UNSET
    key_id: str | None | msgspec.UnsetType = UNSET
    digest: DigestSchedule | None | msgspec.UnsetType = UNSET
    quiet_window_seconds: QuietWindow | msgspec.UnsetType = UNSET
    priority: int | msgspec.UnsetType = UNSET


_create_route = msgspec.json.Decoder(CreateRoute)
_change_route = msgspec.json.Decoder(ChangeRoute)


def problems(route: RouteDefined) -> str | None:
    """What is wrong with a rule as a whole (its fields are each valid): None when nothing."""
    if route.mode == "digest" and route.digest is None:
        return "mode `digest` needs a `digest` schedule ({period, at, timezone})"
    if route.mode != "silent" and not route.channels:
        return f"mode `{route.mode}` needs at least one channel"
    if route.digest is not None:
        try:
            zoneinfo.ZoneInfo(route.digest.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return f"unknown timezone {route.digest.timezone!r} (an IANA name, e.g. Europe/Paris)"
    return None


def route_view(route: RouteDefined) -> dict[str, Any]:
    return {
        "id": route.id,
        "type": route.match_type,
        "name": route.name,
        "mode": route.mode,
        "channels": route.channels,
        "key_id": route.key_id,
        "digest": None if route.digest is None else msgspec.to_builtins(route.digest),
        "quiet_window_seconds": route.quiet_window_s,
        "priority": route.priority,
        "created_at": iso_utc(route.created_at),
        "changed_at": iso_utc(route.changed_at),
    }


async def _checked_append(services: AdminServices, route: RouteDefined, status: int) -> Response:
    wrong = problems(route)
    if wrong:
        return error(400, f"invalid route: {wrong}")
    unknown = await unknown_channels(services, route.channels)
    if unknown:
        return error(400, f"unknown channel(s): {', '.join(unknown)}")
    return await append_control(services, route) or json_response(status, route_view(route))


@router.post("/routes", status_code=201)
async def create_route(request: Request, services: AdminServices) -> Response:
    try:
        spec: CreateRoute = decode_body(_create_route, await request.body())
    except ValueError as exc:
        return error(400, f"invalid route: {exc}")
    now = time.time()
    route = RouteDefined(
        id="rte_" + secrets.token_hex(8),
        match_type=spec.type,
        name=spec.name,
        channels=spec.channels,
        mode=spec.mode,
        created_at=now,
        changed_at=now,
        key_id=spec.key_id,
        digest=spec.digest,
        quiet_window_s=spec.quiet_window_seconds,
        priority=spec.priority,
    )
    return await _checked_append(services, route, 201)


@router.get("/routes")
async def list_routes(services: AdminServices) -> Response:
    routes = ordered(services.control.routes.values())
    return json_response(200, {"routes": [route_view(r) for r in routes]})


@router.get("/routes/{route_id}")
async def get_route(route_id: str, services: AdminServices) -> Response:
    route = services.control.routes.get(route_id)
    if route is None:
        return error(404, f"no route {route_id!r}")
    return json_response(200, route_view(route))


@router.patch("/routes/{route_id}")
async def change_route(route_id: str, request: Request, services: AdminServices) -> Response:
    route = services.control.routes.get(route_id)
    if route is None:
        return error(404, f"no route {route_id!r}")
    try:
        change: ChangeRoute = decode_body(_change_route, await request.body())
    except ValueError as exc:
        return error(400, f"invalid change: {exc}")
    changes = {
        field: value
        for field, value in (
            ("match_type", change.type),
            ("name", change.name),
            ("mode", change.mode),
            ("channels", change.channels),
            ("key_id", change.key_id),
            ("digest", change.digest),
            ("quiet_window_s", change.quiet_window_seconds),
            ("priority", change.priority),
        )
        if value is not UNSET
    }
    changed = msgspec.structs.replace(
        route, changed_at=max(time.time(), route.changed_at), **changes
    )
    return await _checked_append(services, changed, 200)


@router.delete("/routes/{route_id}")
async def delete_route(route_id: str, services: AdminServices) -> Response:
    if route_id not in services.control.routes:
        return error(404, f"no route {route_id!r}")
    failed = await append_control(services, RouteDeleted(route_id, time.time()))
    return failed or json_response(200, {"id": route_id, "deleted": True})
