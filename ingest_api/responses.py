"""Responses in the contracts' shapes, encoded without a serialisation framework."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

_encode = msgspec.json.encode


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status, headers, media_type="application/json")


def error_body(message: str) -> bytes:
    """The ingest and admin APIs' error shape: {"error": "..."}."""
    return _encode({"error": message})


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(message), status, headers, media_type="application/json")
