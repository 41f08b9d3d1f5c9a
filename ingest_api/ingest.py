"""POST /api/v1/events: the hot path. Bytes in, one log record out, 202 only after acks=all.

The normal lane of the admission path (ingest_api.admission): key (401) before the body is
read, so unauthenticated clients cost nothing; size (413) while reading; content (400) on the
whole body; then the key's token bucket (429), so only valid events are charged.
"""

from __future__ import annotations

import logging

from domain.token_bucket import Decision, Limit
from ingest_api.admission import Answer, Appended, Lane, Refusal, refusal
from ingest_api.body import BODY_TIMEOUT_S
from ingest_api.ratelimit import Admission, RateLimiter
from ingest_api.responses import error_body
from ingest_api.services import AppendFailed, Services
from runtime.key_registry import ApiKey
from schemas.ids import new_batch_id
from schemas.limits import MAX_BODY_BYTES
from schemas.records import EventBatch, record_encoder
from schemas.topics import Topic
from schemas.wire import Event, InvalidBatch, decode_batch

log = logging.getLogger(__name__)
PATH = "/api/v1/events"

# The OpenAPI document's answers of this path (ingest_api.openapi).
RESPONSES = {
    202: 'Accepted and stored: {"accepted": n}',
    400: 'Invalid batch: {"error": "..."} with the first problem',
    401: "Missing, unknown or revoked API key",
    408: f"The body did not arrive within {BODY_TIMEOUT_S:g}s; the connection is closed",
    413: f"Body over {MAX_BODY_BYTES} bytes",
    429: "Rate limit exceeded; nothing was stored. See Retry-After",
    503: "The log did not acknowledge the batch, or the pipeline is behind (see Retry-After);"
    " nothing was stored",
}

# What the token bucket granted: the admission (refunded if the log fails) and its headers.
Granted = tuple[Admission, dict[str, str]]


class IngestLane(Lane[list[Event], Granted]):
    path = PATH
    max_bytes = MAX_BODY_BYTES

    def too_large(self, detail: str) -> Refusal:
        return refusal(413, f"body over {MAX_BODY_BYTES} bytes", "too_large")

    def decode(self, body: bytes, encoding: str | None) -> list[Event] | Refusal:
        try:
            return decode_batch(body)
        except InvalidBatch as exc:
            return refusal(400, str(exc), "invalid")

    def charge(
        self, services: Services, key: ApiKey, decoded: list[Event], now: float
    ) -> Granted | Refusal:
        return take_tokens(services.limiter, key, len(decoded), now)

    async def append(
        self,
        services: Services,
        key: ApiKey,
        decoded: list[Event],
        charged: Granted,
        now_ms: int,
    ) -> Appended:
        admission, headers = charged
        limit = key.limit
        record = EventBatch(
            new_batch_id(now_ms),
            key.id,
            now_ms / 1000,
            decoded,
            services.origin,
            limit.rate_per_minute,
            limit.burst,
        )
        try:
            offset = await services.append(
                Topic.EVENTS, record_encoder.encode(record), key.partition, key.key_id_bytes
            )
        except AppendFailed as exc:
            services.limiter.refund(key.id, admission)
            log.warning("ingest: batch of %d events not acknowledged (%s): 503", len(decoded), exc)
            answer: Answer = (
                503,
                error_body(f"{exc}; nothing was stored, retry later"),
                {"Retry-After": "1"},
            )
            return Appended(answer, 0)
        services.limiter.acknowledged(admission, offset)
        return Appended((202, b'{"accepted":%d}' % len(decoded), headers), len(decoded))


def take_tokens(limiter: RateLimiter, key: ApiKey, n: int, now: float) -> Granted | Refusal:
    """n events from the key's token bucket, or the 429 that refuses them (with Retry-After
    when waiting helps: never for a batch over the burst)."""
    limit = key.limit
    decision, admission = limiter.take(key.id, n, limit, now)
    headers = rate_limit_headers(limit, decision)
    if admission is not None:
        return admission, headers
    if decision.retry_after_s is None:
        message = f"a batch of {n} events exceeds this key's burst of {limit.burst}"
    else:
        headers["Retry-After"] = str(decision.retry_after_s)
        message = (
            f"rate limit exceeded: {limit.rate_per_minute} events/minute, burst {limit.burst};"
            f" retry in {decision.retry_after_s}s"
        )
    return Refusal(429, error_body(message), headers, "rate_limited", n)


def rate_limit_headers(limit: Limit, decision: Decision) -> dict[str, str]:
    """IETF draft (httpapi-ratelimit-headers): the quota, what is left, and seconds until the
    bucket is full again."""
    return {
        "RateLimit-Limit": str(limit.burst),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_s),
    }


LANE = IngestLane()
