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

from ingest_api.admission import Appended, Lane, Refusal, refusal
from ingest_api.bulk_budget import BulkBudget
from ingest_api.services import AppendFailed, Services
from runtime.key_registry import ApiKey
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


def _report(rejected: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "rejected": [{"line": n, "error": e} for n, e in rejected[:BULK_MAX_REPORTED]],
        "rejected_count": len(rejected),
    }


class Lines(NamedTuple):
    """A bulk body decoded: its valid lines and (number, error) of its bad ones."""

    valid: list[ValidLine]
    rejected: list[tuple[int, str]]


def decode_bulk(body: bytes, encoding: str | None) -> Lines | Refusal:
    """The body's lines (gunzipped as declared), or why the request is refused. Pure."""
    try:
        encoding = (encoding or "").strip().lower()
        if encoding == "gzip":
            body = gunzip_capped(body, BULK_MAX_BYTES)
        elif encoding not in ("", "identity"):
            return refusal(415, f"Content-Encoding {encoding!r}: send gzip or nothing", "invalid")
        valid, rejected = parse_ndjson(body)
    except DecompressedTooLarge as exc:
        return too_large(str(exc))
    except ValueError as exc:
        return refusal(400, str(exc), "invalid")
    if not valid:
        # Every line was decoded and refused: they count as the events refused.
        answer = {"error": "no valid event in the request", "accepted": 0, **_report(rejected)}
        return Refusal(400, _json.encode(answer), {}, "invalid", len(rejected))
    return Lines(valid, rejected)


def too_large(detail: str) -> Refusal:
    limit = detail or f"over {BULK_MAX_BYTES} bytes"
    return refusal(
        413,
        f"bulk request {limit}: split it (at most {BULK_MAX_EVENTS} events, {BULK_MAX_BYTES} bytes)",
        "too_large",
    )


def take_budget(budget: BulkBudget, key_id: str, n: int, now: float) -> None | Refusal:
    """n events from the key's bulk budget, or the 429 that refuses them."""
    if n > budget.max_request:
        # Like the normal lane's batch over its burst: no wait makes it pass, so no Retry-After.
        answer = {
            "error": f"{n} events is more than the bulk budget lets one request have"
            f" ({budget.max_request}); split it",
            "max_events": budget.max_request,
        }
        return Refusal(429, _json.encode(answer), {}, "rate_limited", n)
    wait = budget.take(key_id, n, now)
    if wait is None:
        return None
    limit = budget.limit
    return refusal(
        429,
        f"bulk budget exceeded ({limit.rate_per_minute * 60}/hour, burst {limit.burst}"
        f" per API process); retry in {wait}s",
        "rate_limited",
        {"Retry-After": str(wait)},
        n,
    )


class BulkLane(Lane[Lines, None]):
    path = PATH
    max_bytes = BULK_MAX_BYTES
    reads_encoding = True

    def body_timeout_s(self, services: Services) -> float:
        return services.settings.bulk_body_timeout_s

    def too_large(self, detail: str) -> Refusal:
        return too_large(detail)

    def decode(self, body: bytes, encoding: str | None) -> Lines | Refusal:
        return decode_bulk(body, encoding)

    def charge(self, services: Services, key: ApiKey, decoded: Lines, now: float) -> Refusal | None:
        return take_budget(services.bulk_budget, key.id, len(decoded.valid), now)

    async def append(
        self, services: Services, key: ApiKey, decoded: Lines, charged: None, now_ms: int
    ) -> Appended:
        valid, rejected = decoded
        acknowledged = await _append(services, key, valid, now_ms)
        if acknowledged == len(valid):
            answer = {"accepted": len(valid), **_report(rejected)}
            return Appended((202, _json.encode(answer), {}), acknowledged, len(rejected))
        services.bulk_budget.give_back(key.id, len(valid) - acknowledged, time.time())
        through = valid[acknowledged - 1].number if acknowledged else 0
        # The bad lines of the stored prefix are reported now: a client resending from the
        # next line never sees them again.
        settled = [(n, e) for n, e in rejected if n <= through]
        answer = {
            "error": "the log did not acknowledge every batch; resend from the line after"
            " acknowledged_through_line",
            "accepted": acknowledged,
            "acknowledged_through_line": through,
            **_report(settled),
        }
        return Appended(
            (503, _json.encode(answer), {"Retry-After": "1"}), acknowledged, len(settled)
        )


async def _append(services: Services, key: ApiKey, valid: list[ValidLine], now_ms: int) -> int:
    """Append the records one after the other, each acknowledged before the next is sent, so
    that what was stored is always a prefix of the file; how many events that prefix holds."""
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


# The OpenAPI document's answers of this path (ingest_api.openapi).
RESPONSES = {
    202: 'Stored: {"accepted": n, "rejected": [{"line": i, "error": "..."}], "rejected_count": k}',
    400: "No valid line, or a body that is not NDJSON (or not gzip as declared)",
    401: "Missing, unknown or revoked API key",
    408: "The body did not arrive within COALMINE_BULK_BODY_TIMEOUT_S (120 s by default);"
    " the connection is closed",
    413: f"Over {BULK_MAX_EVENTS} events or {BULK_MAX_BYTES} bytes (sent or decompressed)",
    415: "A Content-Encoding other than gzip",
    429: "Bulk budget exhausted (see Retry-After), or more events than it ever allows one"
    " request (no Retry-After; see max_events)",
    503: "Log unavailable or pipeline behind; see acknowledged_through_line and Retry-After",
}

LANE = BulkLane()
