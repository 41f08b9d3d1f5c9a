"""The parts of the OpenAPI document FastAPI cannot see: the wire shapes decoded by msgspec
(the ingest body), the query routes' parameters (read from the query string by name), and the
hot paths, which are plain ASGI in front of FastAPI (ingest_api.asgi): the two lanes of events
(ingest_api.admission) and the check-in and ping routes. The docs pages load their scripts
from the `fastapi-offline` package, never from the internet."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ingest_api import bulk, ingest
from ingest_api.checkin import CHECKIN_BODY_MAX_BYTES, CHECKIN_RAW_BODY_MAX_BYTES, METHODS, PREFIX
from queries import PUBLIC_QUERIES, QUERY_ALIASES
from schemas.canaries import CHECKIN_MESSAGE_MAX_CHARS
from schemas.limits import MAX_EVENTS_PER_BATCH, MESSAGE_MAX_CHARS, META_MAX_BYTES, NAME_MAX_CHARS

INGEST_REQUEST_REF = "#/components/schemas/IngestRequest"

# specs/ingest-api.txt, with the decisions of schemas/wire.py (unknown fields refused).
WIRE_SCHEMAS: dict[str, Any] = {
    "Event": {
        "type": "object",
        "required": ["type", "name"],
        "additionalProperties": False,
        "properties": {
            "type": {"enum": ["event", "error"]},
            "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX_CHARS},
            "message": {"type": ["string", "null"], "maxLength": MESSAGE_MAX_CHARS},
            "value": {"type": ["number", "null"], "description": "a finite number"},
            "meta": {
                "type": ["object", "null"],
                "description": f"at most {META_MAX_BYTES} bytes as sent, stored verbatim",
            },
            "ts": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "RFC 3339 with an offset, 1970-2100; absent: arrival time",
            },
        },
    },
    "IngestRequest": {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {
            "events": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Event"},
                "minItems": 1,
                "maxItems": MAX_EVENTS_PER_BATCH,
            }
        },
    },
    "CheckinAnswer": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"enum": ["success", "error"]},
            "message": {"type": "string"},
            "received_message": {"type": "string"},
        },
    },
}

# Query string parameters of GET /api/v1/query/{name}; which query reads which.
QUERY_PARAMETERS: list[tuple[str, str]] = [
    (
        "from",
        "start of the range: ISO 8601 with an offset, epoch seconds, `now` or `-7d` (default -24h)",
    ),
    ("to", "end of the range, excluded, as `from` (default now)"),
    ("name", "series, percentiles, events: the event name"),
    ("interval", "series: bucket width, `60`, `5m`, `1h`, `1d` (default 1h)"),
    ("source", "series, top_names: `rollups` or `events` (default: rollups where exact)"),
    ("type", "top_names, events: `event` or `error` (default both)"),
    (
        "limit",
        "top_names, errors, events, canary_history, quiet_periods, incidents: at most this many rows",
    ),
    ("cursor", "events: the previous page's `next_cursor`"),
    ("q", "percentiles: levels in [0, 1], comma-separated (default 0.5,0.95,0.99)"),
    ("key_id", "rejections: one key's"),
    ("canary_id", "canary_history, canary_notifications, canary_runs: the canary"),
]


def query_route_openapi() -> dict[str, Any]:
    """openapi_extra of GET /api/v1/query/{name}: its names and parameters."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in QUERY_PARAMETERS
        ],
        "responses": {
            "400": {"description": "A bad parameter, named in `error`"},
            "401": {"description": "The admin token or a read key is required"},
            "404": {"description": "No such query; `error` lists them"},
        },
    }


QUERY_NAMES = sorted([*PUBLIC_QUERIES, *QUERY_ALIASES])


def _checkin_operation(method: str, signal: str) -> dict[str, Any]:
    answer = {"application/json": {"schema": {"$ref": "#/components/schemas/CheckinAnswer"}}}
    operation: dict[str, Any] = {
        "summary": f"{'Check in' if not signal else f'Signal {signal}'} ({method})",
        "description": (
            "specs/checkin-api.txt. `/start`: a run began; `/fail`: the job failed."
            if signal
            else "specs/checkin-api.txt: a canary's check-in, with an optional message."
        ),
        "operationId": f"checkin_{signal or 'success'}_{method.lower()}",
        "tags": ["check-ins"],
        "parameters": [
            {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "message",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "maxLength": CHECKIN_MESSAGE_MAX_CHARS},
            },
        ],
        "responses": {
            "200": {"description": "Recorded (after the log acknowledged it)", "content": answer},
            "400": {
                "description": "A message over 500 characters, malformed JSON, a body too large",
                "content": answer,
            },
            "404": {"description": "Invalid token", "content": answer},
            "503": {
                "description": "The log is unavailable; not recorded, retry",
                "content": answer,
            },
        },
    }
    if method == "POST":
        message = {"type": "string", "maxLength": CHECKIN_MESSAGE_MAX_CHARS}
        operation["requestBody"] = {
            "required": False,
            "description": (
                f"The message as form data or JSON, or any other body (up to {CHECKIN_RAW_BODY_MAX_BYTES}"
                f" bytes; form and JSON up to {CHECKIN_BODY_MAX_BYTES}) as the message itself, cut"
                f" at {CHECKIN_MESSAGE_MAX_CHARS} characters"
            ),
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"message": message}}
                },
                "application/json": {
                    "schema": {"type": "object", "properties": {"message": message}}
                },
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    return operation


def checkin_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for signal in ("", "start", "fail"):
        path = PREFIX + "{token}" + (f"/{signal}" if signal else "")
        paths[path] = {method.lower(): _checkin_operation(method, signal) for method in METHODS}
    return paths


def _ping_operation(method: str, with_signal: bool) -> dict[str, Any]:
    text = {"text/plain": {"schema": {"type": "string"}}}
    parameters: list[dict[str, Any]] = [
        {"name": "token", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "the canary's token (Healthchecks' check UUID), or the ping key before a slug"},
        {"name": "rid", "in": "query", "required": False, "schema": {"type": "string", "format": "uuid"},
         "description": "a run id tying a start to its finish"},
    ]  # fmt: skip
    if with_signal:
        parameters.insert(1, {
            "name": "signal", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "start, fail, log, snooze (`?minutes=N`: a maintenance window) or an"
            " exit status 0-255; after a ping key, the slug",
        })  # fmt: skip
    operation: dict[str, Any] = {
        "summary": f"Healthchecks-compatible ping ({method})",
        "description": "ingest_api/ping.py: /ping/<token>[/start|/fail|/log|/<0-255>] and"
        " /ping/<ping-key>/<slug>[/…] (`?create=1` creates the canary).",
        "operationId": f"ping_{'signal_' if with_signal else ''}{method.lower()}",
        "tags": ["check-ins"],
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK: recorded", "content": text},
            "201": {
                "description": "Created: the canary of a slug, on its first ping with ?create=1",
                "content": text,
            },
            "400": {
                "description": "invalid url format (exit status over 255), invalid uuid format (rid)",
                "content": text,
            },
            "404": {"description": "not found", "content": text},
            "409": {"description": "ambiguous slug", "content": text},
            "503": {"description": "The log is unavailable; not recorded, retry", "content": text},
        },
    }
    if method == "POST":
        operation["requestBody"] = {
            "required": False,
            "description": "the message, any content type; its first ping_body_max_bytes are kept",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    return operation


def ping_paths() -> dict[str, Any]:
    return {
        "/ping/{token}": {m.lower(): _ping_operation(m, False) for m in METHODS},
        "/ping/{token}/{signal}": {m.lower(): _ping_operation(m, True) for m in METHODS},
    }


def _lane_operation(
    operation_id: str, summary: str, body: dict[str, Any], responses: dict[int, str]
) -> dict[str, Any]:
    answers: dict[str, Any] = {
        str(status): {"description": text} for status, text in responses.items()
    }
    answers["202"]["content"] = {"application/json": {"schema": {"type": "object"}}}
    return {
        "summary": summary,
        "description": "The admission path (ingest_api/admission.py): key, back-pressure, body,"
        " decoding, budget, append. Every refusal is counted by reason"
        " (GET /api/v1/query/rejections).",
        "operationId": operation_id,  # the ids these operations have always had
        "tags": ["events"],
        "requestBody": {"required": True, "content": body},
        "responses": answers,
    }


def event_paths() -> dict[str, Any]:
    """POST /api/v1/events and POST /api/v1/events/bulk."""
    normal = {"application/json": {"schema": {"$ref": INGEST_REQUEST_REF}}}
    backfill = {"application/x-ndjson": {"schema": {"type": "string"}}}
    return {
        ingest.PATH: {
            "post": _lane_operation(
                "post_events_api_v1_events_post", "Send events", normal, ingest.RESPONSES
            )
        },
        bulk.PATH: {
            "post": _lane_operation(
                "post_bulk_api_v1_events_bulk_post", "Backfill events", backfill, bulk.RESPONSES
            )
        },
    }


def install(app: FastAPI) -> None:
    """Make app.openapi() the complete document (built once, on first request)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            built = get_openapi(title=app.title, version=app.version, routes=app.routes)
            built.setdefault("components", {}).setdefault("schemas", {}).update(WIRE_SCHEMAS)
            built["paths"].update(event_paths())
            built["paths"].update(checkin_paths())
            built["paths"].update(ping_paths())
            app.openapi_schema = built
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
