"""GET /api/v1/query/<name>: the named queries of queries/, for the admin token or a read key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ingest_api.openapi import QUERY_NAMES, query_route_openapi
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from queries import PUBLIC_QUERIES, QUERY_ALIASES, QueryError
from runtime.query_backend import QueryBackendUnavailable

router = APIRouter(prefix="/api/v1/query")


@router.get("/canaries/{canary_id}/history")
async def canary_history(canary_id: str, request: Request) -> Response:
    """A canary's check-ins and status flips (`from`, `to`, `limit`)."""
    return await _run(request, "canary_history", {**request.query_params, "canary_id": canary_id})


@router.get("/canaries/{canary_id}/notifications")
async def canary_notifications(canary_id: str, request: Request) -> Response:
    """Every delivery attempt of a canary's alerts (`from`, `to`)."""
    return await _run(
        request, "canary_notifications", {**request.query_params, "canary_id": canary_id}
    )


@router.get("/canaries/{canary_id}/runs")
async def canary_runs(canary_id: str, request: Request) -> Response:
    """A canary's runs, start to finish, with their durations (`from`, `to`)."""
    return await _run(request, "canary_runs", {**request.query_params, "canary_id": canary_id})


@router.get("/{name}", openapi_extra=query_route_openapi())
async def run_named_query(
    request: Request, name: Annotated[str, Path(description=f"one of: {', '.join(QUERY_NAMES)}")]
) -> Response:
    """A named query (queries/); its parameters are in the query string."""
    return await _run(request, name, dict(request.query_params))


async def _run(request: Request, name: str, params: dict[str, str]) -> Response:
    services: Services = request.app.state.services
    if not await services.reader(request.headers.get("authorization")):
        return error(401, "the admin token or a read key is required")
    name = QUERY_ALIASES.get(name, name)
    if name not in PUBLIC_QUERIES:
        return error(404, f"unknown query {name!r}; known: {', '.join(sorted(PUBLIC_QUERIES))}")
    try:
        result = await services.queries.run(name, params)
    except QueryError as exc:
        return error(400, str(exc))
    except QueryBackendUnavailable as exc:
        return error(503, str(exc))
    return json_response(200, result)
