"""The UI's forms (POST). Each change is made by the admin API itself, called in-process with
the admin token: the same validation, the same records on the log, the same error texts; the
UI only turns a form into the API's JSON and the answer into a page."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ingest_api.services import Services
from ingest_api.ui import render
from ingest_api.ui.auth import Form, Viewer, form_of
from ingest_api.ui.pages import _canary_form_context, _context, admin_context
from queries import QueryError
from queries.params import parse_duration

router = APIRouter(include_in_schema=False)
ADMIN = "/api/v1/admin"


async def admin_api(
    request: Request, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    """Call the admin API of this very process (no network) and return (status, JSON)."""
    services: Services = request.app.state.services
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ui.internal") as client:
        answer = await client.request(
            method,
            ADMIN + path,
            json=body,
            headers={"authorization": f"Bearer {services.settings.admin_token}"},
            timeout=30,
        )
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, {"error": answer.text[:200]}


def done(to: str, what: str) -> Response:
    return RedirectResponse(f"{to}?done={what}", 303, headers=render.SECURITY_HEADERS)


def _duration(form: Form, field: str, label: str, required: bool = False) -> int | None:
    raw = form.get(field).strip()
    if not raw:
        if required:
            raise QueryError(f"{label} is required")
        return None
    try:
        return parse_duration(raw, label)
    except QueryError as exc:
        raise QueryError(str(exc).replace(f"`{label}`", label)) from None


def canary_body(form: Form, creating: bool) -> dict[str, Any]:
    """The admin API's JSON for the canary form (QueryError for a bad duration)."""
    body: dict[str, Any] = {
        "name": form.get("name").strip(),
        "interval_seconds": _duration(form, "interval", "interval", required=True),
        "grace_seconds": _duration(form, "grace", "grace") or 0,
        "channels": form.getlist("channels"),
        "max_runtime_seconds": _duration(form, "max_runtime", "max runtime"),
    }
    event_name = form.get("event_name").strip()
    if creating and event_name:
        body["events"] = {"name": event_name, "min_count": int(form.get("min_count") or 1)}
        body.pop("max_runtime_seconds")
    return body


def _form_values(form: Form) -> dict[str, Any]:
    return {
        "name": form.get("name"),
        "interval": form.get("interval"),
        "grace": form.get("grace"),
        "max_runtime": form.get("max_runtime"),
        "channels": form.getlist("channels"),
        "event_name": form.get("event_name"),
        "min_count": form.get("min_count"),
    }


@router.post("/canaries")
async def create_canary(request: Request) -> Response:
    who, form = await form_of(request)
    services: Services = request.app.state.services
    try:
        body = canary_body(form, creating=True)
        status, answer = await admin_api(request, "POST", "/canaries", body)
    except (QueryError, ValueError) as exc:
        status, answer = 400, {"error": str(exc)}
    if status != 201:
        context = _canary_form_context(
            request, who, services, None, _form_values(form), answer["error"]
        )
        return render.page("canary_form.html", context, status)
    # The token is shown on this page only: it is stored as a hash and never shown again.
    context = _context(
        request,
        who,
        answer["name"],
        "canaries",
        canary=answer,
        history=None,
        attempts=None,
        strip=None,
        durations=[],
        channel_names={},
        ping_url=f"{str(request.base_url).rstrip('/')}/checkin/{answer.get('token', '<token>')}",
        token=answer.get("token"),
    )
    return render.page("canary.html", context, 201)


@router.post("/canaries/{canary_id}/edit")
async def edit_canary(canary_id: str, request: Request) -> Response:
    who, form = await form_of(request)
    services: Services = request.app.state.services
    try:
        body = canary_body(form, creating=False)
        if (
            services.control.canaries.get(canary_id) is not None
            and services.control.canaries[canary_id].events is not None
        ):
            body.pop("max_runtime_seconds", None)
        status, answer = await admin_api(request, "PATCH", f"/canaries/{canary_id}", body)
    except (QueryError, ValueError) as exc:
        status, answer = 400, {"error": str(exc)}
    if status != 200:
        view = {"id": canary_id, "name": form.get("name")}
        context = _canary_form_context(
            request, who, services, view, _form_values(form), answer["error"]
        )
        return render.page("canary_form.html", context, status)
    return done(f"/canaries/{canary_id}", "saved")


@router.post("/canaries/{canary_id}/pause")
async def pause_canary(canary_id: str, request: Request) -> Response:
    return await _simple(
        request,
        "PATCH",
        f"/canaries/{canary_id}",
        {"paused": True},
        f"/canaries/{canary_id}",
        "paused",
    )


@router.post("/canaries/{canary_id}/resume")
async def resume_canary(canary_id: str, request: Request) -> Response:
    return await _simple(
        request,
        "PATCH",
        f"/canaries/{canary_id}",
        {"paused": False},
        f"/canaries/{canary_id}",
        "resumed",
    )


@router.post("/canaries/{canary_id}/snooze")
async def snooze_canary(canary_id: str, request: Request) -> Response:
    """A maintenance window over this canary alone, from now, for the minutes chosen (the
    same window the job's own `/ping/<token>/snooze` opens, through the admin API)."""
    who, form = await form_of(request)
    minutes = form.get("minutes")
    if not (minutes.isdigit() and int(minutes) in render.SNOOZE_CHOICES_MIN):
        return _failed(request, who, 400, {"error": "choose how long to snooze"})
    body = {
        "canaries": [canary_id],
        "minutes": int(minutes),
        "comment": "snoozed from the web UI",
        "created_by": "web UI",
    }
    status, answer = await admin_api(request, "POST", "/windows", body)
    if status >= 300:
        return _failed(request, who, status, answer)
    return done(f"/canaries/{canary_id}", "snoozed")


@router.post("/canaries/{canary_id}/delete")
async def delete_canary(canary_id: str, request: Request) -> Response:
    return await _simple(request, "DELETE", f"/canaries/{canary_id}", None, "/canaries", "deleted")


async def _simple(
    request: Request, method: str, path: str, body: Any, to: str, what: str
) -> Response:
    who, _ = await form_of(request)
    status, answer = await admin_api(request, method, path, body)
    if status >= 300:
        return _failed(request, who, status, answer)
    return done(to, what)


def _failed(request: Request, who: Viewer, status: int, answer: dict[str, Any]) -> Response:
    context = _context(request, who, "Not done", "", message=answer.get("error", "failed"))
    return render.page("error.html", context, status)


# --- admin: keys, channels, routes -----------------------------------------------------------
@router.post("/admin/keys")
async def create_key(request: Request) -> Response:
    who, form = await form_of(request)
    body: dict[str, Any] = {
        "name": form.get("name").strip(),
        "scope": form.get("scope") or "ingest",
    }
    for field in ("rate_per_minute", "burst"):
        if form.get(field).strip().isdigit():
            body[field] = int(form.get(field))
    status, answer = await admin_api(request, "POST", "/keys", body)
    return await _admin_result(
        request, who, status, answer, created_key=answer if status == 201 else None
    )


@router.post("/admin/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request) -> Response:
    return await _simple(request, "DELETE", f"/keys/{key_id}", None, "/admin", "revoked")


@router.post("/admin/channels")
async def create_channel(request: Request) -> Response:
    who, form = await form_of(request)
    kind = form.get("kind")
    body: dict[str, Any] = {"name": form.get("name").strip(), "kind": kind}
    if kind == "email":
        body.update(to=form.get("to").strip(), host=form.get("host").strip())
    else:
        body["url"] = form.get("url").strip()
    status, answer = await admin_api(request, "POST", "/channels", body)
    return await _admin_result(
        request, who, status, answer, created_channel=answer if status == 201 else None
    )


@router.post("/admin/channels/{channel_id}/test")
async def test_channel(channel_id: str, request: Request) -> Response:
    who, _ = await form_of(request)
    status, answer = await admin_api(request, "POST", f"/channels/{channel_id}/test")
    return await _admin_result(
        request, who, status, answer, tested=answer if status == 200 else None
    )


@router.post("/admin/channels/{channel_id}/delete")
async def delete_channel(channel_id: str, request: Request) -> Response:
    return await _simple(request, "DELETE", f"/channels/{channel_id}", None, "/admin", "deleted")


@router.post("/admin/routes")
async def create_route(request: Request) -> Response:
    who, form = await form_of(request)
    body: dict[str, Any] = {
        "type": form.get("type"),
        "name": form.get("name").strip(),
        "mode": form.get("mode"),
        "channels": form.getlist("channels"),
    }
    if form.get("priority").strip().lstrip("-").isdigit():
        body["priority"] = int(form.get("priority"))
    status, answer = await admin_api(request, "POST", "/routes", body)
    return await _admin_result(request, who, status, answer)


@router.post("/admin/routes/{route_id}/delete")
async def delete_route(route_id: str, request: Request) -> Response:
    return await _simple(request, "DELETE", f"/routes/{route_id}", None, "/admin", "deleted")


async def _admin_result(
    request: Request, who: Viewer, status: int, answer: dict[str, Any], **shown: Any
) -> Response:
    services: Services = request.app.state.services
    error = answer.get("error", "") if status >= 300 else ""
    context = await admin_context(request, who, services, **shown)
    context["error"] = error
    if (
        not error
        and not shown.get("created_key")
        and not shown.get("created_channel")
        and not shown.get("tested")
    ):
        return done("/admin", "created")
    return render.page("admin.html", context, status if error else 200)
