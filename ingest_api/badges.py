"""Public status badges: GET /badge/<signature>/<target>.svg|.json|.shields (domain.badges).

`target` is a tag (the canaries carrying it), else a canary's slug, or `*` for every canary.
`signature` is an HMAC of the target with the admin token (derived like the ping key, so it
tells nothing of it and changes with it): a badge URL can be embedded in a public README
without revealing any token, and cannot be turned into another target's badge. The admin API
lists the URLs (GET /api/v1/admin/badges). An unknown target or a wrong signature is a 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from fastapi import APIRouter, Request
from starlette.responses import Response

from domain.badges import as_json, as_shields, as_svg, overall
from ingest_api.admin_canaries import canary_views
from ingest_api.admin_keys import AdminServices
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from runtime.query_backend import QueryBackendUnavailable
from runtime.settings import Settings
from schemas.canaries import slug_of

router = APIRouter()
SIGNATURE_CHARS = 16
EVERY = "*"
FORMATS = ("svg", "json", "shields")
NO_CACHE = {"Cache-Control": "no-cache, max-age=0"}


def signature(settings: Settings, target: str, kind: str = "badge") -> str:
    """The URL signature of a badge (or, kind "status", of a status page) of `target`: one
    never stands for the other."""
    digest = hmac.new(
        settings.admin_token.encode(),
        b"coalmine %s\x1f%s" % (kind.encode(), target.encode()),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_CHARS]


def targets(services: Services) -> list[str]:
    """Every badge there is: all canaries, each tag, each canary."""
    canaries = services.control.canaries.values()
    tags = sorted({tag for c in canaries for tag in c.tags})
    return [EVERY, *tags, *sorted(slug_of(c) for c in canaries)]


def canary_ids(services: Services, target: str) -> set[str] | None:
    canaries = services.control.canaries.values()
    if target == EVERY:
        return {c.id for c in canaries}
    tagged = {c.id for c in canaries if target in c.tags}
    if tagged:
        return tagged
    by_slug = {c.id for c in canaries if slug_of(c) == target}
    return by_slug or None


@router.get("/badge/{sig}/{name}", include_in_schema=False)
async def badge(sig: str, name: str, request: Request) -> Response:
    services: Services = request.app.state.services
    target, _, fmt = name.rpartition(".")
    if fmt not in FORMATS or not hmac.compare_digest(
        sig.encode(), signature(services.settings, target).encode()
    ):
        return error(404, "no such badge")
    ids = canary_ids(services, target)
    if ids is None:
        return error(404, "no such badge")
    try:
        views = [v for v in await canary_views(services) if v["id"] in ids]
    except QueryBackendUnavailable as exc:
        return error(503, str(exc))
    status, counts = overall(v["status"] for v in views)
    label = "canaries" if target == EVERY else target
    if fmt == "svg":
        return Response(as_svg(label, status), 200, NO_CACHE, media_type="image/svg+xml")
    body = as_json(status, counts) if fmt == "json" else as_shields(label, status)
    return json_response(200, body, {**NO_CACHE, "Access-Control-Allow-Origin": "*"})


@router.get("/api/v1/admin/badges")
async def list_badges(services: AdminServices) -> Response:
    """The badge URLs of every canary, every tag and all (`*`), one per format."""
    rows = []
    for target in targets(services):
        base = f"/badge/{signature(services.settings, target)}/{target}"
        rows.append({"target": target, **{fmt: f"{base}.{fmt}" for fmt in FORMATS}})
    return json_response(200, {"badges": rows})
