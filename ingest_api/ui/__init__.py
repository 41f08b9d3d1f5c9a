"""The web UI served by the API at `/`: server-rendered pages over the named queries and the
admin API, charts drawn as SVG on the server, one small script for live updates, nothing
loaded from elsewhere. `install(app)` mounts it."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from ingest_api.ui import actions, auth, pages, render

assets = APIRouter(include_in_schema=False)
# The only files served: fixed names, read once.
_ASSETS = {
    "ui.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
}
_CONTENT = {name: (render.HERE / "static" / name).read_bytes() for name in _ASSETS}


@assets.get(render.ASSETS + "/{name}")
async def asset(name: str) -> Response:
    if name not in _ASSETS:
        return Response(b"not found", 404, render.SECURITY_HEADERS, media_type="text/plain")
    headers = {**render.SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}
    return Response(_CONTENT[name], 200, headers, media_type=_ASSETS[name])


def install(app: FastAPI) -> None:
    app.include_router(auth.router)
    app.include_router(assets)
    app.include_router(actions.router)  # before pages: POST /canaries vs GET /canaries/{id}
    app.include_router(pages.router)
    app.add_exception_handler(auth.SignInNeeded, auth.sign_in_needed)
    app.add_exception_handler(auth.AdminNeeded, auth.refused)
    app.add_exception_handler(auth.CsrfRefused, auth.refused)
