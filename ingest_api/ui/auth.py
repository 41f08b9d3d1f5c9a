"""Sign-in, sign-out and the session every UI page and form needs (ingest_api.ui.session
says how cookies and CSRF tokens are made)."""

from __future__ import annotations

import functools
import hmac
import secrets
import time
import urllib.parse
from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ingest_api.services import Services
from ingest_api.ui import render
from ingest_api.ui.session import (
    LOGIN_COOKIE,
    LOGIN_TTL_S,
    SESSION_COOKIE,
    SESSION_TTL_S,
    Session,
    cookie_header,
    csrf_ok,
    csrf_token,
    new_session,
    read_session,
    sign_session,
    ui_secret,
)
from schemas.errors import AdminNeeded, CsrfRefused, LogRestoring, SignInNeeded

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the session and what every template needs of it."""

    session: Session
    csrf: str

    @property
    def admin(self) -> bool:
        return self.session.admin


@functools.cache
def _secret(admin_token: str) -> bytes:
    return ui_secret(admin_token)


def secret_of(services: Services) -> bytes:
    return _secret(services.settings.admin_token)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def viewer(request: Request, admin: bool = False) -> Viewer:
    """The signed-in viewer (SignInNeeded otherwise); a read key's session ends with the key."""
    services: Services = request.app.state.services
    secret = secret_of(services)
    session = read_session(secret, request.cookies.get(SESSION_COOKIE), time.time())
    if session is None:
        raise SignInNeeded
    if session.role == "read":
        key = services.registry.get(session.key_id)
        if key is None or not key.active:
            raise SignInNeeded
    if admin and not session.admin:
        raise AdminNeeded
    return Viewer(session, csrf_token(secret, session.nonce))


class Form:
    """An urlencoded form: `get` for one field (its last value), `getlist` for checkboxes."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        values = self.getlist(name)
        return values[-1] if values else default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


async def read_form(request: Request) -> Form:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return Form([])
    return Form(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def form_of(request: Request, admin: bool = True) -> tuple[Viewer, Form]:
    """The viewer and the form of a POST whose CSRF token matches its session (AdminNeeded,
    SignInNeeded, or CsrfRefused otherwise)."""
    who = await viewer(request, admin=admin)
    form = await read_form(request)
    if not hmac.compare_digest(form.get("csrf", "").encode(), who.csrf.encode()):
        raise CsrfRefused
    return who, form


def sign_in_page(request: Request, error: str = "", status: int = 200) -> Response:
    services: Services = request.app.state.services
    nonce = secrets.token_urlsafe(16)
    context = {
        "viewer": None,
        "title": "Sign in",
        "error": error,
        "csrf": csrf_token(secret_of(services), "login:" + nonce),
    }
    response = render.page("login.html", context, status)
    response.headers.append(
        "set-cookie", cookie_header(LOGIN_COOKIE, nonce, LOGIN_TTL_S, _secure(request))
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return sign_in_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    services: Services = request.app.state.services
    secret = secret_of(services)
    form = await read_form(request)
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not csrf_ok(secret, nonce and "login:" + nonce, form.get("csrf")):
        return sign_in_page(request, "The sign-in form expired: please try again.", 403)
    token = form.get("token", "").strip()
    now = time.time()
    if token and hmac.compare_digest(token.encode(), services.settings.admin_token.encode()):
        session = new_session("admin", "", now)
    else:
        try:
            key = await services.key(f"Bearer {token}", "read") if token else None
        except LogRestoring:
            return sign_in_page(request, "The service is restoring its log: try again.", 503)
        if key is None:
            return sign_in_page(request, "Neither the admin token nor an active read key.", 401)
        session = new_session("read", key.id, now)
    response = RedirectResponse("/", 303, headers=render.SECURITY_HEADERS)
    response.headers.append(
        "set-cookie",
        cookie_header(
            SESSION_COOKIE, sign_session(secret, session), SESSION_TTL_S, _secure(request)
        ),
    )
    response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, "", 0, _secure(request)))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_of(request, admin=False)
    response = RedirectResponse("/login", 303, headers=render.SECURITY_HEADERS)
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, "", 0, _secure(request)))
    return response


async def sign_in_needed(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/login", 303, headers=render.SECURITY_HEADERS)


async def refused(request: Request, exc: Exception) -> Response:
    message = (
        "This needs the admin token: you are signed in with a read key."
        if isinstance(exc, AdminNeeded)
        else "The form's security token did not match your session: reload the page and retry."
    )
    return render.page("error.html", {"viewer": None, "title": "Refused", "message": message}, 403)
