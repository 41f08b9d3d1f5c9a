"""The check-in API of specs/checkin-api.txt: GET, HEAD or POST /checkin/<token>, with an
optional message (query string, form data or JSON), plus the /start and /fail signals.

200 only after the log acknowledged the check-in. Decisions where the spec is silent (also in
the README): a message may come in the query string of a POST too; JSON bodies may carry
other fields (ignored); a body over 8 KB or of another content type is a 400; a check-in of a
paused canary is recorded and leaves it paused; a log outage is a 503 in the error shape;
another method is a 405 and another path under /checkin/ a 404, both in that shape too.

This is a plain ASGI handler, not a FastAPI route (ingest_api.asgi says why). Concurrent
check-ins of one partition share one log record (ingest_api.group_append).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import msgspec

from ingest_api.asgi import JSON, ClientGone, Receive, Scope, Send, body_chunks, header, respond
from ingest_api.body import BodyTooLarge, BodyTooSlow, read_capped
from ingest_api.group_append import AppendCancelled, GroupAppend
from ingest_api.metrics import CHECKINS, count
from ingest_api.services import AppendFailed, Services
from schemas.canaries import (
    CHECKIN_MESSAGE_MAX_CHARS,
    CHECKINS_PER_RECORD_MAX,
    CheckIn,
    CheckinKind,
    CheckIns,
)
from schemas.ids import new_batch_id
from schemas.partitions import canary_partition
from schemas.records import record_encoder
from schemas.topics import Topic

PREFIX = "/checkin/"
CHECKIN_BODY_MAX_BYTES = 8 * 1024
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


class BadCheckin(ValueError):
    pass


class _JsonBody(msgspec.Struct):
    message: str | None = None


_json_body = msgspec.json.Decoder(_JsonBody)
_encode = msgspec.json.encode


def checkin_message(
    method: str, query: dict[str, list[str]], content_type: str, body: bytes
) -> str | None:
    """The check-in's message from wherever the client put it; BadCheckin if malformed."""
    message = query.get("message", [None])[0]
    if method == "POST" and body.strip():
        media = content_type.split(";")[0].strip().lower()
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise BadCheckin("body is not valid UTF-8") from None
        if media == "application/json":
            try:
                in_body = _json_body.decode(body).message
            except msgspec.MsgspecError as exc:
                raise BadCheckin(f"malformed JSON: {exc}") from None
            message = in_body if in_body is not None else message
        elif media in ("application/x-www-form-urlencoded", ""):
            message = parse_qs(text, keep_blank_values=True).get("message", [message])[0]
        else:
            raise BadCheckin("send the message as form data or JSON")
    if message is not None and len(message) > CHECKIN_MESSAGE_MAX_CHARS:
        raise BadCheckin(f"message over {CHECKIN_MESSAGE_MAX_CHARS} characters")
    return message or None


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
            send, method, 405, {"status": "error", "message": "Method not allowed"},
            {"Allow": ", ".join(METHODS)},
        )
    # A known token is answered from memory; only an unknown one awaits the log (services).
    canary = services.control.canary_by_token(token) or await services.canary(token)
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
        answer = {"status": "error", "message": f"{exc}; the check-in was not recorded, retry later"}
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
        body = await read_capped(
            header(scope, b"content-length"), body_chunks(receive), CHECKIN_BODY_MAX_BYTES
        )
    except BodyTooLarge:
        raise BadCheckin(f"body over {CHECKIN_BODY_MAX_BYTES} bytes") from None
    except BodyTooSlow:
        raise BadCheckin("the request body did not arrive in time") from None
    except ClientGone:
        raise BadCheckin("the request body was not received") from None
    return checkin_message(method, query, header(scope, b"content-type") or "", body)


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
CHECKIN_RESULTS = {200: "accepted", 400: "invalid", 404: "not_found", 405: "not_allowed", 503: "unavailable"}
