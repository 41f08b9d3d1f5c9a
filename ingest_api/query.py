"""GET /api/v1/query/<name>: the named queries of queries/, for the admin token or a read key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ingest_api.query_backend import QueryBackendUnavailable
from ingest_api.responses import error, json_response
from ingest_api.services import Services
from queries import NAMED_QUERIES, QueryError

router = APIRouter(prefix="/api/v1/query")


@router.get("/{name}")
async def run_named_query(name: str, request: Request) -> Response:
    services: Services = request.app.state.services
    if not services.reader(request.headers.get("authorization")):
        return error(401, "the admin token or a read key is required")
    if name not in NAMED_QUERIES:
        return error(404, f"unknown query {name!r}; known: {', '.join(sorted(NAMED_QUERIES))}")
    try:
        result = await services.queries.run(name, dict(request.query_params))
    except QueryError as exc:
        return error(400, str(exc))
    except QueryBackendUnavailable as exc:
        return error(503, str(exc))
    return json_response(200, result)
