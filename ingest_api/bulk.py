"""POST /api/v1/events/bulk: backfills. NDJSON (one event per line), optionally gzip-encoded,
up to BULK_MAX_EVENTS events and BULK_MAX_BYTES bytes (sent, and once decompressed).

Unlike the normal lane, a bad line does not fail the file: valid lines are stored, bad ones
are reported (`{"accepted": n, "rejected": [{"line": i, "error": "..."}]}`, lines counted
from 1, at most BULK_MAX_REPORTED listed). Events are charged against a separate bulk
budget per key (a token bucket of `bulk_rate_per_hour`, burst `bulk_burst`, kept by each API
process for its share), and every batch of the bulk lane is **historical**: stored and rolled
up like any other, but it never trips nor resolves a canary and never raises an immediate
alert (a backfill is history, not news).

Valid events go onto the log in records of up to MAX_EVENTS_PER_BATCH_ID events (128: as many
as one batch id numbers; the fewer records, the less the log and every consumer pay per event)
and RECORD_MAX_BYTES, each acknowledged before the next is sent, so what is stored is always a
prefix of the valid lines. If the log fails one, the answer is a 503 that says up to which line
everything was acknowledged (`acknowledged_through_line`): resending from the next line stores
nothing twice (but for the record that timed out, which the log may still have taken).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from ingest_api.asgi import ClientGone, Receive, Scope, Send, body_chunks, header, respond
from ingest_api.body import BodyTooLarge, BodyTooSlow, read_capped
from ingest_api.services import AppendFailed, Services
from schemas.errors import DecompressedTooLarge
from schemas.ids import MAX_EVENTS_PER_BATCH_ID, new_batch_id
from schemas.limits import MAX_BODY_BYTES
from schemas.records import EventBatch, record_encoder
from schemas.topics import Topic
from schemas.wire import Event, event_problem

PATH = "/api/v1/events/bulk"
BULK_MAX_EVENTS = 100_000
BULK_MAX_BYTES = 50 * 1024 * 1024
BULK_MAX_REPORTED = 1_000
BULK_BODY_TIMEOUT_S = 120.0  # 50 MB over a slow link
# A record's events, by the size of their lines: 128 events of the largest kind (4 KB of meta,
# 2,000 characters of message) would pass the producer's 1 MB request limit, and the rollups'
# deltas grow with a record's names and messages. Half a normal lane's body, at most.
RECORD_MAX_BYTES = MAX_BODY_BYTES // 2

_event = msgspec.json.Decoder(Event)
_json = msgspec.json.Encoder()


def gunzip_capped(body: bytes, cap: int) -> bytes:
    """The decompressed body, or DecompressedTooLarge once it passes `cap` bytes (a gzip bomb stops at
    the cap); ValueError if it is not gzip."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, cap + 1)
    except zlib.error as exc:
        raise ValueError(f"the body is not valid gzip ({exc})") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise DecompressedTooLarge(f"over {cap} bytes once decompressed")
    return out


class ValidLine(NamedTuple):
    number: int  # from 1
    event: Event
    size: int  # bytes of the line: about what the event takes in a record


def parse_ndjson(body: bytes) -> tuple[list[ValidLine], list[tuple[int, str]]]:
    """Every valid line and (line number, error) of every invalid one; blank lines are
    neither. DecompressedTooLarge past BULK_MAX_EVENTS lines. Pure."""
    valid: list[ValidLine] = []
    rejected: list[tuple[int, str]] = []
    count = 0
    for number, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        count += 1
        if count > BULK_MAX_EVENTS:
            raise DecompressedTooLarge(f"over {BULK_MAX_EVENTS} events")
        try:
            event = _event.decode(line)
        except msgspec.ValidationError as exc:
            rejected.append((number, str(exc)))
            continue
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            rejected.append((number, f"malformed JSON: {exc}"))
            continue
        problem = event_problem(event, "$") if (event.meta or event.ts is not None) else None
        if problem:
            rejected.append((number, problem))
        else:
            valid.append(ValidLine(number, event, len(line)))
    return valid, rejected


def records_of(
    valid: list[ValidLine], max_events: int, max_bytes: int
) -> Iterator[list[ValidLine]]:
    """The valid lines cut, in order, into records of at most `max_events` events and about
    `max_bytes` (a single larger line makes a record of its own). Pure."""
    record: list[ValidLine] = []
    held = 0
    for line in valid:
        if record and (len(record) == max_events or held + line.size > max_bytes):
            yield record
            record, held = [], 0
        record.append(line)
        held += line.size
    if record:
        yield record


Answer = tuple[int, bytes, dict[str, str]]


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return status, _json.encode(body), headers or {}


def _report(rejected: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "rejected": [{"line": n, "error": e} for n, e in rejected[:BULK_MAX_REPORTED]],
        "rejected_count": len(rejected),
    }


async def accept(
    services: Services, authorization: str | None, headers: dict[str, str | None], chunks: Any
) -> Answer:
    key = await services.key(authorization, "ingest")
    if key is None:
        services.rejections.count("", "unauthorized")
        return _answer(401, {"error": services.registry.ingest_refusal(authorization)})
    refused = services.backpressure.refusal()
    if refused is not None:
        services.rejections.count(key.id, "overloaded")
        return _answer(
            503, {"error": refused}, {"Retry-After": str(services.backpressure.retry_after_s)}
        )
    try:
        body = await read_capped(
            headers["content-length"], chunks, BULK_MAX_BYTES, BULK_BODY_TIMEOUT_S
        )
        encoding = (headers["content-encoding"] or "").strip().lower()
        if encoding == "gzip":
            body = gunzip_capped(body, BULK_MAX_BYTES)
        elif encoding not in ("", "identity"):
            return _answer(415, {"error": f"Content-Encoding {encoding!r}: send gzip or nothing"})
        valid, rejected = parse_ndjson(body)
    except (BodyTooLarge, DecompressedTooLarge) as exc:
        services.rejections.count(key.id, "too_large")
        limit = str(exc) or f"over {BULK_MAX_BYTES} bytes"
        return _answer(
            413,
            {
                "error": f"bulk request {limit}: split it (at most {BULK_MAX_EVENTS} events, {BULK_MAX_BYTES} bytes)"
            },
        )
    except BodyTooSlow:
        return _answer(
            408,
            {"error": f"the body did not arrive within {BULK_BODY_TIMEOUT_S:g}s"},
            {"Connection": "close"},
        )
    except ValueError as exc:
        return _answer(400, {"error": str(exc)})
    if not valid:
        services.rejections.count(key.id, "invalid", len(rejected))
        return _answer(
            400, {"error": "no valid event in the request", "accepted": 0, **_report(rejected)}
        )
    budget = services.bulk_budget
    if len(valid) > budget.max_request:
        # Like the normal lane's batch over its burst: no wait makes it pass, so no Retry-After.
        services.rejections.count(key.id, "rate_limited", len(valid))
        return _answer(
            429,
            {"error": f"{len(valid)} events is more than the bulk budget lets one request have"
             f" ({budget.max_request}); split it", "max_events": budget.max_request},
        )  # fmt: skip
    wait = budget.take(key.id, len(valid), time.time())
    if wait is not None:
        services.rejections.count(key.id, "rate_limited", len(valid))
        limit = budget.limit
        return _answer(
            429,
            {"error": f"bulk budget exceeded ({limit.rate_per_minute * 60}/hour, burst {limit.burst}"
             f" per API process); retry in {wait}s"},
            {"Retry-After": str(wait)},
        )  # fmt: skip
    acknowledged = await _append(services, key, valid)
    if acknowledged < len(valid):
        budget.give_back(key.id, len(valid) - acknowledged, time.time())
        through = valid[acknowledged - 1].number if acknowledged else 0
        # The bad lines of the stored prefix are reported now: a client resending from the
        # next line never sees them again.
        settled = [(n, e) for n, e in rejected if n <= through]
        if settled:
            services.rejections.count(key.id, "invalid", len(settled))
        return _answer(
            503,
            {"error": "the log did not acknowledge every batch; resend from the line after acknowledged_through_line",
             "accepted": acknowledged, "acknowledged_through_line": through, **_report(settled)},
            {"Retry-After": "1"},
        )  # fmt: skip
    if rejected:
        services.rejections.count(key.id, "invalid", len(rejected))
    return _answer(202, {"accepted": len(valid), **_report(rejected)})


async def _append(services: Services, key: Any, valid: list[ValidLine]) -> int:
    """Append the records one after the other, each acknowledged before the next is sent, so
    that what was stored is always a prefix of the file; how many events that prefix holds."""
    now_ms = time.time_ns() // 1_000_000
    acknowledged = 0
    for chunk in records_of(valid, MAX_EVENTS_PER_BATCH_ID, RECORD_MAX_BYTES):
        record = EventBatch(
            new_batch_id(now_ms),
            key.id,
            now_ms / 1000,
            [line.event for line in chunk],
            services.origin,
            historical=True,
        )
        try:
            await services.append(
                Topic.EVENTS, record_encoder.encode(record), key.partition, key.key_id_bytes
            )
        except AppendFailed:
            break
        acknowledged += len(chunk)
    return acknowledged


router = APIRouter()


@router.post(
    PATH,
    status_code=202,
    responses={
        202: {
            "description": 'Stored: {"accepted": n, "rejected": [{"line": i, "error": "..."}], "rejected_count": k}'
        },
        400: {
            "description": "No valid line, or a body that is not NDJSON (or not gzip as declared)"
        },
        401: {"description": "Missing, unknown or revoked API key"},
        413: {
            "description": f"Over {BULK_MAX_EVENTS} events or {BULK_MAX_BYTES} bytes (sent or decompressed)"
        },
        429: {
            "description": "Bulk budget exhausted (see Retry-After), or more events than it ever allows one request (no Retry-After; see max_events)"
        },
        503: {
            "description": "Log unavailable or pipeline behind; see acknowledged_through_line and Retry-After"
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def post_bulk(request: Request) -> Response:
    """The documented route (OpenAPI); requests reach `handle` first (ingest_api.app)."""
    status, body, headers = await accept(
        request.app.state.services,
        request.headers.get("authorization"),
        {
            "content-length": request.headers.get("content-length"),
            "content-encoding": request.headers.get("content-encoding"),
        },
        request.stream(),
    )
    return Response(body, status, headers, media_type="application/json")


async def handle(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """POST PATH as plain ASGI."""
    try:
        status, body, headers = await accept(
            services,
            header(scope, b"authorization"),
            {
                "content-length": header(scope, b"content-length"),
                "content-encoding": header(scope, b"content-encoding"),
            },
            body_chunks(receive),
        )
    except ClientGone:
        return
    await respond(send, status, body, headers)
