"""/api/v1/admin: API keys. Every route needs the admin token."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from ingest_api.responses import error, json_response
from ingest_api.services import AppendFailed, Services
from runtime.key_registry import ApiKey, generate_key, generate_key_id, hash_key
from schemas.errors import AdminDenied
from schemas.limits import (
    DEFAULT_BURST,
    DEFAULT_RATE_PER_MINUTE,
    KEY_NAME_MAX_CHARS,
    MAX_BURST,
    MAX_RATE_PER_MINUTE,
)
from schemas.records import KeyCreated, KeyLimitsChanged, KeyRevoked, KeyScope
from schemas.times import iso_or_none, iso_utc
from schemas.topics import Topic


async def admin_services(request: Request) -> Services:
    services: Services = request.app.state.services
    if not services.is_admin(request.headers.get("authorization")):
        raise AdminDenied
    # Each admin request sees what any API process wrote before it (runtime.catch_up):
    # a canary created through one process can be changed through another at once, and a
    # change is not made to a stale copy. Admin requests are rare; the look costs ~1 ms.
    await asyncio.gather(services.keys_caught_up.wait(), services.control_caught_up.wait())
    return services


AdminServices = Annotated[Services, Depends(admin_services)]
router = APIRouter(prefix="/api/v1/admin")


RatePerMinute = Annotated[int, msgspec.Meta(ge=1, le=MAX_RATE_PER_MINUTE)]
Burst = Annotated[int, msgspec.Meta(ge=1, le=MAX_BURST)]


class CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_NAME_MAX_CHARS)]
    scope: KeyScope = "ingest"
    rate_per_minute: RatePerMinute = DEFAULT_RATE_PER_MINUTE
    burst: Burst = DEFAULT_BURST


class PatchKey(msgspec.Struct, forbid_unknown_fields=True):
    rate_per_minute: RatePerMinute | None = None
    burst: Burst | None = None


_create_key_decoder = msgspec.json.Decoder(CreateKey)
_patch_key_decoder = msgspec.json.Decoder(PatchKey)


def key_view(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "created_at": iso_utc(key.created_at),
        "revoked_at": iso_or_none(key.revoked_at),
        "last_used_at": iso_or_none(key.last_used_at),
        "rate_per_minute": key.limit.rate_per_minute,
        "burst": key.limit.burst,
    }


@router.post("/keys", status_code=201)
async def create_key(request: Request, services: AdminServices) -> Response:
    try:
        spec = _create_key_decoder.decode(await request.body())
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return error(400, f"invalid key request: {exc}")
    secret = generate_key()
    record = KeyCreated(
        generate_key_id(),
        spec.name,
        hash_key(secret),
        time.time(),
        spec.scope,
        spec.rate_per_minute,
        spec.burst,
    )
    try:  # usable here at once; other processes follow the log
        await services.append_applied(Topic.KEYS, record, services.registry.apply)
    except AppendFailed as exc:
        return error(503, str(exc))
    view = key_view(services.registry.get(record.id))  # type: ignore[arg-type]
    return json_response(201, {**view, "key": secret})


@router.get("/keys")
async def list_keys(services: AdminServices) -> Response:
    return json_response(200, {"keys": [key_view(k) for k in services.registry.all()]})


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, services: AdminServices) -> Response:
    key = services.registry.get(key_id)
    if key is None:
        return error(404, f"no key {key_id!r}")
    if key.active:
        record = KeyRevoked(key_id, time.time())
        try:
            await services.append_applied(Topic.KEYS, record, services.registry.apply)
        except AppendFailed as exc:
            return error(503, str(exc))
    return json_response(200, key_view(key))


@router.patch("/keys/{key_id}")
async def change_key_limits(key_id: str, request: Request, services: AdminServices) -> Response:
    """Change a key's rate limit (`rate_per_minute`, `burst`); effective in every API process
    as soon as it reads the keys topic. A bucket keeps its level, capped at the new burst."""
    key = services.registry.get(key_id)
    if key is None:
        return error(404, f"no key {key_id!r}")
    try:
        patch = _patch_key_decoder.decode(await request.body())
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return error(400, f"invalid key change: {exc}")
    record = KeyLimitsChanged(
        key_id,
        patch.rate_per_minute or key.limit.rate_per_minute,
        patch.burst or key.limit.burst,
        time.time(),
    )
    try:
        await services.append_applied(Topic.KEYS, record, services.registry.apply)
    except AppendFailed as exc:
        return error(503, str(exc))
    return json_response(200, key_view(key))
