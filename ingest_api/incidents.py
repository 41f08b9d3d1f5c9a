"""Acknowledging a down alert, which stops its reminders (domain.reminders): by the admin API
(`POST /api/v1/admin/canaries/{id}/ack`, `coalmine ack CANARY`) and by the signed link in the
alert (`/ack/<flip id>?sig=…`). The link's GET only shows a button: mail scanners and link
previews fetch links, and must not acknowledge anything; the button POSTs.
Each acknowledgement is an IncidentAcknowledged record on the control topic."""

from __future__ import annotations

import html
import time

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from domain.reminders import ack_signature_ok
from ingest_api.admin_canaries import append_control
from ingest_api.admin_keys import AdminServices
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from runtime.control_registry import ack_link_key
from schemas.canaries import IncidentAcknowledged, ack_id

router = APIRouter()


def _acknowledgement(flip_id: str, by: str) -> IncidentAcknowledged:
    # Flip ids begin with their canary's id (schemas.canaries.Flip).
    return IncidentAcknowledged(ack_id(flip_id), flip_id, flip_id.split(":")[0], time.time(), by)


@router.post("/api/v1/admin/canaries/{canary_id}/ack")
async def acknowledge_canary(canary_id: str, services: AdminServices) -> Response:
    """Acknowledge the canary's current down alert(s): its open incidents stop reminding."""
    if canary_id not in services.control.canaries:
        return error(404, f"no canary {canary_id!r}")
    flips = sorted({i.flip_id for i in services.control.open_incidents(canary_id)})
    if not flips:
        return error(409, "nothing to acknowledge: no reminders are running for this canary")
    for flip_id in flips:
        failed = await append_control(services, _acknowledgement(flip_id, "admin"))
        if failed:
            return failed
    return json_response(200, {"canary_id": canary_id, "acknowledged": flips})


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body style='font-family:sans-serif'><h1>{html.escape(title)}</h1>{body}"
        "</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _checked(request: Request, flip_id: str, sig: str) -> Services | None:
    services: Services = request.app.state.services
    key = ack_link_key(services.settings)
    return services if ack_signature_ok(key, flip_id, sig) else None


@router.get("/ack/{flip_id}")
async def ack_page(request: Request, flip_id: str, sig: str = "") -> Response:
    if _checked(request, flip_id, sig) is None:
        return _page("Invalid link", "<p>This acknowledgement link is not valid.</p>", 403)
    form = (
        f"<p>Acknowledge the alert <code>{html.escape(flip_id)}</code>? Its reminders stop.</p>"
        f"<form method='post'><input type='hidden' name='sig' value='{html.escape(sig)}'>"
        "<button type='submit'>Acknowledge</button></form>"
    )
    return _page("Acknowledge alert", form)


@router.post("/ack/{flip_id}")
async def ack_by_link(request: Request, flip_id: str, sig: str = "") -> Response:
    if not sig:  # the page's form sends it in the body
        form = (await request.body()).decode("latin-1")
        sig = dict(p.partition("=")[::2] for p in form.split("&")).get("sig", "")
    services = _checked(request, flip_id, sig)
    if services is None:
        return _page("Invalid link", "<p>This acknowledgement link is not valid.</p>", 403)
    failed = await append_control(services, _acknowledgement(flip_id, "link"))
    if failed:
        return failed
    return _page(
        "Acknowledged", f"<p>No more reminders for <code>{html.escape(flip_id)}</code>.</p>"
    )
