"""POST /api/v1/events: the hot path. Bytes in, one log record out, 202 only after acks=all.

Order of checks: key (401) before the body is read, so unauthenticated clients cost nothing;
size (413) while reading; content (400) on the whole body; then the key's token bucket (429),
so only valid events are charged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response

from domain.token_bucket import Decision, Limit
from ingest_api.asgi import ClientGone, Receive, Scope, Send, body_chunks, header, respond
from ingest_api.body import BODY_TIMEOUT_S, BodyTooLarge, BodyTooSlow, read_capped
from ingest_api.openapi import INGEST_REQUEST_REF
from ingest_api.responses import error_body
from ingest_api.services import AppendFailed, Services
from runtime.metrics import EVENTS_ACCEPTED, count
from schemas.ids import new_batch_id
from schemas.limits import MAX_BODY_BYTES
from schemas.records import EventBatch, record_encoder
from schemas.topics import Topic
from schemas.wire import InvalidBatch, decode_batch

log = logging.getLogger(__name__)
router = APIRouter()
PATH = "/api/v1/events"

_RESPONSES = {
    202: {"description": 'Accepted and stored: {"accepted": n}'},
    400: {"description": 'Invalid batch: {"error": "..."} with the first problem'},
    401: {"description": "Missing, unknown or revoked API key"},
    413: {"description": f"Body over {MAX_BODY_BYTES} bytes"},
    429: {"description": "Rate limit exceeded; nothing was stored. See Retry-After"},
    503: {
        "description": "The log did not acknowledge the batch, or the pipeline is behind (see"
        " Retry-After); nothing was stored"
    },
}


@router.post(
    PATH,
    status_code=202,
    responses=_RESPONSES,  # type: ignore[arg-type]
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": INGEST_REQUEST_REF}}  # ingest_api.openapi
            },
        }
    },
)
async def post_events(request: Request) -> Response:
    """The documented route (OpenAPI); requests reach `handle` first (ingest_api.asgi)."""
    status, body, headers = await accept(
        request.app.state.services,
        request.headers.get("authorization"),
        request.headers.get("content-length"),
        request.stream(),
    )
    return Response(body, status, headers, media_type="application/json")


async def handle(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """POST PATH as plain ASGI: the same `accept`, without FastAPI's per-request cost."""
    try:
        status, body, headers = await accept(
            services,
            header(scope, b"authorization"),
            header(scope, b"content-length"),
            body_chunks(receive),
        )
    except ClientGone:
        return
    await respond(send, status, body, headers)


Answer = tuple[int, bytes, dict[str, str]]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return status, error_body(message), headers or {}


async def accept(
    services: Services,
    authorization: str | None,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
) -> Answer:
    """One ingest request, start to end: (status, JSON body, headers)."""
    # A known key is answered from memory; only an unknown one awaits the log (services).
    key = services.registry.authenticate(authorization, "ingest") or await services.key(
        authorization, "ingest"
    )
    if key is None:
        services.rejections.count("", "unauthorized")
        return _error(401, services.registry.ingest_refusal(authorization))
    refused = services.backpressure.refusal()
    if refused is not None:
        services.rejections.count(key.id, "overloaded")
        return _error(503, refused, {"Retry-After": str(services.backpressure.retry_after_s)})
    try:
        body = await read_capped(content_length, chunks, MAX_BODY_BYTES)
    except BodyTooLarge:
        services.rejections.count(key.id, "too_large")
        return _error(413, f"body over {MAX_BODY_BYTES} bytes")
    except BodyTooSlow:
        services.rejections.count(key.id, "invalid")
        return _error(
            408, f"the body did not arrive within {BODY_TIMEOUT_S:g}s", {"Connection": "close"}
        )
    try:
        events = decode_batch(body)
    except InvalidBatch as exc:
        services.rejections.count(key.id, "invalid")
        return _error(400, str(exc))
    now_ms = time.time_ns() // 1_000_000
    now = now_ms / 1000
    limit = key.limit
    decision, admission = services.limiter.take(key.id, len(events), limit, now)
    headers = rate_limit_headers(limit, decision)
    if admission is None:
        services.rejections.count(key.id, "rate_limited", len(events))
        if decision.retry_after_s is None:
            message = f"a batch of {len(events)} events exceeds this key's burst of {limit.burst}"
        else:
            headers["Retry-After"] = str(decision.retry_after_s)
            message = (
                f"rate limit exceeded: {limit.rate_per_minute} events/minute, burst {limit.burst};"
                f" retry in {decision.retry_after_s}s"
            )
        return _error(429, message, headers)
    record = EventBatch(
        new_batch_id(now_ms),
        key.id,
        now,
        events,
        services.origin,
        limit.rate_per_minute,
        limit.burst,
    )
    services.backpressure.in_flight += 1
    try:
        offset = await services.append(
            Topic.EVENTS, record_encoder.encode(record), key.partition, key.key_id_bytes
        )
    except AppendFailed as exc:
        services.limiter.refund(key.id, admission)
        log.warning("ingest: batch of %d events not acknowledged (%s): 503", len(events), exc)
        return _error(503, f"{exc}; nothing was stored, retry later", {"Retry-After": "1"})
    finally:
        services.backpressure.in_flight -= 1
    services.limiter.acknowledged(admission, offset)
    count(EVENTS_ACCEPTED, (), len(events))
    return 202, b'{"accepted":%d}' % len(events), headers


def rate_limit_headers(limit: Limit, decision: Decision) -> dict[str, str]:
    """IETF draft (httpapi-ratelimit-headers): the quota, what is left, and seconds until the
    bucket is full again."""
    return {
        "RateLimit-Limit": str(limit.burst),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_s),
    }
