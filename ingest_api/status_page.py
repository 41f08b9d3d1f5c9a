"""Public status pages, one per tag: GET /status/<signature>/<tag> (domain.status_page).

Opt-in by publishing: a page is reachable only through its signed URL, which only the admin
API hands out (GET /api/v1/admin/status-pages, `coalmine status-pages`), signed like the
badges (ingest_api.badges) but never valid as one. It shows the names and statuses of the
canaries carrying the tag, nothing else; changing the admin token withdraws every URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from domain.status_page import STYLE, status_page_html
from ingest_api.admin_canaries import canary_views
from ingest_api.admin_keys import AdminServices
from ingest_api.badges import signature
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from runtime.query_backend import QueryBackendUnavailable

router = APIRouter()
KIND = "status"
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
HEADERS = {
    # Nothing but its own inline sheet: no script, no image, no form, no frame.
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache, max-age=0",
}


def page_path(services: Services, tag: str) -> str:
    return f"/status/{signature(services.settings, tag, KIND)}/{tag}"


@router.get("/status/{sig}/{tag}", include_in_schema=False)
async def status_page(sig: str, tag: str, request: Request) -> Response:
    services: Services = request.app.state.services
    if not hmac.compare_digest(sig.encode(), signature(services.settings, tag, KIND).encode()):
        return error(404, "no such status page")
    ids = {c.id for c in services.control.canaries.values() if tag in c.tags}
    if not ids:
        return error(404, "no such status page")
    try:
        views = [v for v in await canary_views(services) if v["id"] in ids]
    except QueryBackendUnavailable as exc:
        return error(503, str(exc))
    updated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [(str(v["name"]), str(v["status"])) for v in views]
    return HTMLResponse(status_page_html(tag, rows, updated), 200, HEADERS)


@router.get("/api/v1/admin/status-pages")
async def list_status_pages(services: AdminServices) -> Response:
    """The public status page URL of every tag: share one to publish that tag's page."""
    tags = sorted({tag for c in services.control.canaries.values() for tag in c.tags})
    return json_response(
        200, {"status_pages": [{"tag": tag, "url": page_path(services, tag)} for tag in tags]}
    )
