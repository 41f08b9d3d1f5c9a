"""The check-in API of specs/checkin-api.txt: GET, HEAD or POST /checkin/<token>, with an
optional message (query string, form data or JSON), plus the /start and /fail signals.

200 only after the log acknowledged the check-in. Decisions where the spec is silent (also in
the README): a message may come in the query string of a POST too; JSON bodies may carry
other fields (ignored); a body over 8 KB or of another content type is a 400; a check-in of a
paused canary is recorded and leaves it paused; a log outage is a 503 in the error shape.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import parse_qs

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from ingest_api.body import BodyTooLarge, read_capped
from ingest_api.keys import events_partition
from ingest_api.responses import json_response
from ingest_api.services import AppendFailed, Services
from schemas.canaries import CHECKIN_MESSAGE_MAX_CHARS, CheckIn, CheckinKind
from schemas.ids import new_batch_id
from schemas.records import record_encoder
from schemas.topics import Topic

router = APIRouter()

CHECKIN_BODY_MAX_BYTES = 8 * 1024
METHODS = ["GET", "HEAD", "POST"]


class BadCheckin(ValueError):
    pass


class _JsonBody(msgspec.Struct):
    message: str | None = None


_json_body = msgspec.json.Decoder(_JsonBody)


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


def _error(status: int, message: str) -> Response:
    return json_response(status, {"status": "error", "message": message})


async def _checkin(request: Request, token: str, kind: CheckinKind) -> Response:
    services: Services = request.app.state.services
    canary = services.control.canary_by_token(token)
    if canary is None:
        return _error(404, "Invalid token")
    try:
        body = await read_capped(request, CHECKIN_BODY_MAX_BYTES)
        query = parse_qs(request.url.query, keep_blank_values=True)
        message = checkin_message(
            request.method, query, request.headers.get("content-type", ""), body
        )
    except BodyTooLarge:
        return _error(400, f"body over {CHECKIN_BODY_MAX_BYTES} bytes")
    except (BadCheckin, UnicodeDecodeError) as exc:
        return _error(400, str(exc))
    record = CheckIn(new_batch_id(), canary.id, kind, time.time(), message or "")
    try:
        await services.append(
            Topic.CHECKINS,
            record_encoder.encode(record),
            checkin_partition(canary.id),
            canary.id.encode(),
        )
    except AppendFailed as exc:
        return _error(503, f"{exc}; the check-in was not recorded, retry later")
    answer: dict[str, str] = {"status": "success", "message": "Check-in received"}
    if message is not None:
        answer["received_message"] = message
    if request.method == "HEAD":
        return Response(status_code=200, media_type="application/json")
    return json_response(200, answer)


@functools.lru_cache(maxsize=65_536)
def checkin_partition(canary_id: str) -> int:
    return events_partition(canary_id, Topic.CHECKINS)


@router.api_route("/checkin/{token}", methods=METHODS)
async def checkin(token: str, request: Request) -> Response:
    """A check-in: the job ran (specs/checkin-api.txt)."""
    return await _checkin(request, token, "success")


@router.api_route("/checkin/{token}/start", methods=METHODS)
async def checkin_start(token: str, request: Request) -> Response:
    """A run began; with the canary's max_runtime, a run that never ends goes down."""
    return await _checkin(request, token, "start")


@router.api_route("/checkin/{token}/fail", methods=METHODS)
async def checkin_fail(token: str, request: Request) -> Response:
    """The job failed: the canary goes down now."""
    return await _checkin(request, token, "fail")
