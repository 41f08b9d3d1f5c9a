"""The check-in API of specs/checkin-api.txt: GET, HEAD or POST /checkin/<token>, with an
optional message (query string, form data or JSON), plus the /start and /fail signals.

200 only after the log acknowledged the check-in. Decisions where the spec is silent (also in
the README): a message may come in the query string of a POST too; any other body is the
message itself (a job piping its output, as Healthchecks users do), cut at the spec's 500
characters, so that no message is dropped silently; a check-in of a paused canary is recorded
and leaves it paused; a log outage is a 503 in the error shape; another method is a 405 and
another path under /checkin/ a 404, both in that shape too.

This is a plain ASGI handler, not a FastAPI route (ingest_api.asgi says why). Concurrent
check-ins of one partition share one log record (ingest_api.group_append).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import msgspec

from ingest_api.asgi import JSON, ClientGone, Receive, Scope, Send, body_chunks, header, respond
from ingest_api.body import BodyTooLarge, BodyTooSlow, read_prefix
from ingest_api.group_append import AppendCancelled, GroupAppend
from ingest_api.services import AppendFailed, Services
from runtime.metrics import CHECKINS, count
from schemas.canaries import (
    CHECKIN_MESSAGE_MAX_CHARS,
    CHECKINS_PER_RECORD_MAX,
    CheckIn,
    CheckinKind,
    CheckIns,
)
from schemas.errors import BadCheckin, LogRestoring
from schemas.ids import new_batch_id
from schemas.partitions import canary_partition
from schemas.records import record_encoder
from schemas.topics import Topic

PREFIX = "/checkin/"
# A form or JSON body is parsed only up to this size; a raw body's message is its beginning.
CHECKIN_BODY_MAX_BYTES = 8 * 1024
# A larger body is read (and dropped) up to this size, then refused: a job's whole log output
# still checks in, an endless upload does not hold the connection.
CHECKIN_RAW_BODY_MAX_BYTES = 1024 * 1024
FORM = "application/x-www-form-urlencoded"
METHODS = ("GET", "HEAD", "POST")
SIGNALS: dict[str, CheckinKind] = {"start": "start", "fail": "fail"}
# At most one check-ins record per partition per 20 ms from one API process: at most 20 ms
# added to a check-in's answer under load, none when idle (ingest_api.group_append).
CHECKIN_RECORD_SPACING_S = 0.02
RECEIVED = {"status": "success", "message": "Check-in received"}
_RECEIVED_BODY = msgspec.json.encode(RECEIVED)  # the common answer, encoded once
# Its headers as ingest_api.asgi.respond makes them (a tuple: nobody can append to it).
_RECEIVED_HEADERS = ((b"content-type", JSON), (b"content-length", b"%d" % len(_RECEIVED_BODY)))
_ACCEPTED = ("accepted",)


UNSET = msgspec.UNSET


class _JsonBody(msgspec.Struct):
    # Unset: the body has no message (the query string's or the body itself is taken);
    # null or "": the client says there is none.
    message: str | None | msgspec.UnsetType = msgspec.UNSET


_json_body = msgspec.json.Decoder(_JsonBody)
_encode = msgspec.json.encode


def checkin_message(
    method: str,
    query: dict[str, list[str]],
    content_type: str,
    body: bytes,
    complete: bool = True,
) -> str | None:
    """The check-in's message from wherever the client put it; BadCheckin if malformed.

    `body` is the request body, or only its beginning when `complete` is false. In order: the
    body's `message` field (JSON, or form data, which is also what curl's `-d` sends without a
    Content-Type: so a JSON object there is read as JSON), else the query string's, else the
    body itself (text/plain and any other type: the body wins over the query string)."""
    message = query.get("message", [None])[0]
    if method == "POST" and body.strip():
        media = content_type.split(";")[0].strip().lower()
        in_body: str | None | msgspec.UnsetType = UNSET
        if media == "application/json":
            if not complete:
                raise BadCheckin(f"JSON body over {CHECKIN_BODY_MAX_BYTES} bytes")
            in_body = _json_message(body, strict=True)
        elif media in (FORM, "") and complete:
            in_body = _form_or_json_message(body)
        else:
            message = None  # the body is the message
        if in_body is not UNSET:
            message = in_body  # type: ignore[assignment]
        elif message is None:
            return _raw_message(body)
    if message is not None and len(message) > CHECKIN_MESSAGE_MAX_CHARS:
        raise BadCheckin(f"message over {CHECKIN_MESSAGE_MAX_CHARS} characters")
    return message or None


def _json_message(body: bytes, strict: bool) -> str | None | msgspec.UnsetType:
    """`message` of a JSON object body; a malformed one is a 400 only when declared JSON."""
    try:
        return _json_body.decode(body).message
    except msgspec.MsgspecError as exc:
        if strict:
            raise BadCheckin(f"malformed JSON: {exc}") from None
        return UNSET


def _form_or_json_message(body: bytes) -> str | None | msgspec.UnsetType:
    if body.lstrip()[:1] == b"{":
        in_json = _json_message(body, strict=False)
        if in_json is not UNSET:
            return in_json
    # Bytes that are not UTF-8 become U+FFFD, as browsers read them.
    form = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return form["message"][0] if "message" in form else UNSET


def _raw_message(body: bytes) -> str | None:
    """The body as the message: UTF-8 (U+FFFD for other bytes), cut at the spec's limit.
    CHECKIN_BODY_MAX_BYTES always holds more than CHECKIN_MESSAGE_MAX_CHARS characters."""
    return body.decode(errors="replace")[:CHECKIN_MESSAGE_MAX_CHARS] or None


def checkin_log(services: Services) -> GroupAppend[CheckIn]:
    """Check-ins onto the check-ins topic, one CheckIns record per group."""

    async def append(partition: int, checkins: list[CheckIn]) -> None:
        value = record_encoder.encode(CheckIns(checkins))
        await services.append(Topic.CHECKINS, value, partition)

    return GroupAppend(append, CHECKINS_PER_RECORD_MAX, CHECKIN_RECORD_SPACING_S)


async def handle(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one request whose path starts with PREFIX."""
    method = scope["method"]
    token, _, signal = scope["path"][len(PREFIX) :].partition("/")
    kind = SIGNALS.get(signal) if signal else "success"
    if kind is None:
        return await _respond(send, method, 404, {"status": "error", "message": "Not found"})
    if method not in METHODS:
        return await _respond(
            send,
            method,
            405,
            {"status": "error", "message": "Method not allowed"},
            {"Allow": ", ".join(METHODS)},
        )
    # A known token is answered from memory; only an unknown one awaits the log (services).
    try:
        canary = services.control.canary_by_token(token) or await services.canary(token)
    except LogRestoring as exc:
        return await _respond(send, method, 503, {"status": "error", "message": str(exc)})
    if canary is None:
        return await _respond(send, method, 404, {"status": "error", "message": "Invalid token"})
    if method != "POST" and not scope["query_string"]:
        message = None  # the common check-in: nothing to parse
    else:
        try:
            message = await _message(scope, receive, method)
        except BadCheckin as exc:
            return await _respond(send, method, 400, {"status": "error", "message": str(exc)})
    checkin = CheckIn(new_batch_id(), canary.id, kind, time.time(), message or "")
    try:
        await services.checkins.add(canary_partition(canary.id), checkin)
    except (AppendFailed, AppendCancelled) as exc:
        answer = {
            "status": "error",
            "message": f"{exc}; the check-in was not recorded, retry later",
        }
        return await _respond(send, method, 503, answer)
    if message is None:
        count(CHECKINS, _ACCEPTED)
        if method == "HEAD":
            return await respond(send, 200, _RECEIVED_BODY, None, head=True)
        await send({"type": "http.response.start", "status": 200, "headers": _RECEIVED_HEADERS})
        return await send({"type": "http.response.body", "body": _RECEIVED_BODY})
    return await _respond(send, method, 200, {**RECEIVED, "received_message": message})


async def _message(scope: Scope, receive: Receive, method: str) -> str | None:
    query_string: bytes = scope["query_string"]
    query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True) if query_string else {}
    if method != "POST":
        return checkin_message(method, query, "", b"")
    try:
        body, complete = await read_prefix(
            header(scope, b"content-length"),
            body_chunks(receive),
            CHECKIN_BODY_MAX_BYTES,
            CHECKIN_RAW_BODY_MAX_BYTES,
        )
    except BodyTooLarge:
        raise BadCheckin(f"body over {CHECKIN_RAW_BODY_MAX_BYTES} bytes") from None
    except BodyTooSlow:
        raise BadCheckin("the request body did not arrive in time") from None
    except ClientGone:
        raise BadCheckin("the request body was not received") from None
    return checkin_message(method, query, header(scope, b"content-type") or "", body, complete)


async def _respond(
    send: Send,
    method: str,
    status: int,
    answer: dict[str, str],
    headers: dict[str, str] | None = None,
) -> None:
    count(CHECKINS, (CHECKIN_RESULTS.get(status, "other"),))
    await respond(send, status, _encode(answer), headers, head=method == "HEAD")


# Check-in answers by status, as the coalmine_checkins_total metric names them.
CHECKIN_RESULTS = {
    200: "accepted",
    400: "invalid",
    404: "not_found",
    405: "not_allowed",
    503: "unavailable",
}
