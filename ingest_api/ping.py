"""Healthchecks-compatible ping URLs: a job that pings Healthchecks migrates by changing the
host. HEAD, GET or POST:

    /ping/<token>[/start|/fail|/log|/<exit status 0-255>]          [?rid=<uuid>]
    /ping/<ping-key>/<slug>[/start|/fail|/log|/<0-255>]             [?rid=<uuid>][&create=1]

Healthchecks' check UUID maps to the canary's check-in token: the same secret as
/checkin/<token> (which stays exactly as the check-in contract says, beside these). A canary
created here has a generated token; one imported from Healthchecks (`coalmine
import-healthchecks`) keeps its ping UUID as its token, so its URLs stay the same. The ping
key is one per service (its "project"): COALMINE_PING_KEY, else derived from the admin token
(an HMAC of it: it tells nothing of the token, and changes with it); GET
/api/v1/admin/ping-key shows it. A canary's slug is its own (`slug`) or its name's.

Answers as Healthchecks gives them, text/plain: 200 `OK`; 201 `Created` for a first ping with
`?create=1` that created the canary (daily, an hour's grace, every channel); 404 `not found`;
400 `invalid url format` (exit status over 255) or `invalid uuid format` (a `rid` that is not a
UUID); 409 `ambiguous slug`; 503 when the log did not acknowledge. The request body is the
check-in's message: its first `ping_body_max_bytes` (10,000 by default, as Healthchecks),
UTF-8 with U+FFFD for other bytes, and a marker when cut; a large body is never refused (read
and dropped up to PING_BODY_DRAIN_MAX_BYTES, then the answer is sent without reading more).
`/log` records a message that changes nothing; a non-zero exit status is a failure.

`/snooze?minutes=N` (Coalmine's own, not Healthchecks'): a maintenance window for this canary
alone, from now for N minutes (SNOOZE_DEFAULT_MINUTES without `minutes`; 0 ends it), so a job
about to do something noisy can silence itself with its own URL. One snooze per canary: a new
one replaces it (domain.quiet; docs/checkins.md, "Maintenance windows").
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from urllib.parse import parse_qs

from ingest_api.admin_canaries import append_control
from ingest_api.asgi import ClientGone, Receive, Scope, Send, body_chunks
from ingest_api.group_append import AppendCancelled
from ingest_api.services import AppendFailed, Services
from runtime.control_registry import could_be_token, generate_token, hash_token, is_uuid, ping_key
from runtime.metrics import CHECKINS, count
from schemas.canaries import (
    CHECKINS_PER_RECORD_MAX,
    CanaryDefined,
    CheckIn,
    CheckinKind,
    CheckIns,
    slug_of,
)
from schemas.errors import LogRestoring
from schemas.ids import new_batch_id
from schemas.partitions import canary_partition
from schemas.quiet import SNOOZE_DEFAULT_MINUTES, SNOOZE_MAX_MINUTES, WindowDefined
from schemas.records import record_encoder
from schemas.topics import Topic

PREFIX = "/ping/"
METHODS = ("GET", "HEAD", "POST")
SIGNALS: dict[str, CheckinKind] = {"": "success", "start": "start", "fail": "fail", "log": "log"}
SNOOZE = "snooze"
PING_BODY_DRAIN_MAX_BYTES = 64 * 1024 * 1024
PING_BODY_TIMEOUT_S = 30.0
# Check-ins are grouped CHECKINS_PER_RECORD_MAX to a log record, each assumed ~3 KB at most
# (schemas.canaries): a ping with a longer message is a record of its own.
GROUPED_MESSAGE_MAX_CHARS = 1000
assert CHECKINS_PER_RECORD_MAX * (GROUPED_MESSAGE_MAX_CHARS * 3 + 500) < 1024 * 1024
TRUNCATED = "\n[… cut at {kept} of {size} bytes]"
# What a canary created by `?create=1` gets: Healthchecks' defaults for a new check.
CREATED_INTERVAL_S, CREATED_GRACE_S = 86400, 3600
TEXT = b"text/plain; charset=utf-8"


class PingPath:
    """A ping URL taken apart; `problem` is the answer when it cannot be a ping URL."""

    __slots__ = ("token", "key", "slug", "kind", "exit_status", "problem", "snooze")

    def __init__(self, path: str) -> None:
        self.token = self.key = self.slug = ""
        self.kind: CheckinKind = "success"
        self.exit_status: int | None = None
        self.problem: tuple[int, str] | None = None
        self.snooze = False
        parts = path[len(PREFIX) :].removesuffix("/").split("/")
        if could_be_token(parts[0]):
            self.token, rest = parts[0], parts[1:]
        elif len(parts) >= 2:
            self.key, self.slug, rest = parts[0], parts[1], parts[2:]
        else:
            self.problem = (404, "not found")
            return
        signal = rest[0] if rest else ""
        if len(rest) > 1:
            self.problem = (404, "not found")
        elif signal in SIGNALS:
            self.kind = SIGNALS[signal]
        elif signal == SNOOZE:
            self.snooze = True
        elif signal.isascii() and signal.isdigit() and len(signal) <= 6:
            self.exit_status = int(signal)
            self.kind = "success" if self.exit_status == 0 else "fail"
            if self.exit_status > 255:
                self.problem = (400, "invalid url format")
        else:
            self.problem = (404, "not found")


_create_lock = asyncio.Lock()


async def handle(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one request whose path starts with PREFIX."""
    try:
        await _handle(services, scope, receive, send)
    except LogRestoring as exc:  # raised before any answer began
        await _answer(send, scope["method"], 503, str(exc))


async def _handle(services: Services, scope: Scope, receive: Receive, send: Send) -> None:
    method = scope["method"]
    if method not in METHODS:
        return await _answer(send, method, 405, "method not allowed", {"Allow": ", ".join(METHODS)})
    ping = PingPath(scope["path"])
    if ping.problem:
        return await _answer(send, method, *ping.problem)
    query = parse_qs(scope["query_string"].decode("latin-1")) if scope["query_string"] else {}
    rid = query.get("rid", [""])[0]
    if rid and not is_uuid(rid.lower()):
        return await _answer(send, method, 400, "invalid uuid format")
    created = False
    if ping.token:
        canary = services.control.canary_by_token(ping.token) or await services.canary(ping.token)
    else:
        if not hmac.compare_digest(ping.key.encode(), ping_key(services.settings).encode()):
            return await _answer(send, method, 404, "not found")
        found = await _by_slug(services, ping.slug)
        if found == "ambiguous":
            return await _answer(send, method, 409, "ambiguous slug")
        canary = found or None  # type: ignore[assignment]
        if canary is None and query.get("create", [""])[0] == "1":
            answer = await _create(services, ping.slug)
            if isinstance(answer, tuple):
                return await _answer(send, method, *answer)
            canary, created = answer, True
    if canary is None or canary.events is not None:
        return await _answer(send, method, 404, "not found")
    if ping.snooze:
        return await _answer(send, method, *await _snooze(services, canary, query))
    message = (
        await _body_message(receive, services.settings.ping_body_max_bytes)
        if method == "POST"
        else ""
    )
    if not message and ping.exit_status:
        message = f"exit status {ping.exit_status}"
    checkin = CheckIn(new_batch_id(), canary.id, ping.kind, time.time(), message, rid.lower())
    partition = canary_partition(canary.id)
    try:
        if len(message) > GROUPED_MESSAGE_MAX_CHARS:
            await services.append(
                Topic.CHECKINS, record_encoder.encode(CheckIns([checkin])), partition
            )
        else:
            await services.checkins.add(partition, checkin)
    except (AppendFailed, AppendCancelled) as exc:
        return await _answer(send, method, 503, f"{exc}; the ping was not recorded, retry later")
    limit = {"Ping-Body-Limit": str(services.settings.ping_body_max_bytes)}
    if created:
        return await _answer(send, method, 201, "Created", limit)
    return await _answer(send, method, 200, "OK", limit)


async def _by_slug(services: Services, slug: str) -> CanaryDefined | str | None:
    """The canary of a slug, "ambiguous" if several, None if none (after reading the
    control topic to its end: one created through another API process counts)."""
    for attempt in range(2):
        found = [c for c in services.control.canaries.values() if slug_of(c) == slug]
        if len(found) > 1:
            return "ambiguous"
        if found:
            return found[0]
        if attempt == 0 and not await services.control_caught_up.wait():
            break
    services.refusable(services.control_caught_up)  # nor created twice while it is restored
    return None


async def _create(services: Services, slug: str) -> CanaryDefined | tuple[int, str]:
    async with _create_lock:  # two first pings of one slug at once make one canary
        found = await _by_slug(services, slug)
        if isinstance(found, CanaryDefined):
            return found
        if found == "ambiguous" or any(c.name == slug for c in services.control.canaries.values()):
            return (409, "ambiguous slug")
        now = time.time()
        record = CanaryDefined(
            id="can_" + secrets.token_hex(8),
            name=slug,
            token_hash=hash_token(generate_token()),  # pinged by slug; the admin API can show
            interval_s=CREATED_INTERVAL_S,
            grace_s=CREATED_GRACE_S,
            channels=sorted(services.control.channels),
            created_at=now,
            changed_at=now,
            slug=slug,
        )
        if await append_control(services, record) is not None:
            return (503, "the log did not acknowledge; nothing was created, retry later")
        return record


async def _snooze(
    services: Services, canary: CanaryDefined, query: dict[str, list[str]]
) -> tuple[int, str]:
    text = query.get("minutes", [str(SNOOZE_DEFAULT_MINUTES)])[0]
    if not (text.isascii() and text.isdigit() and int(text) <= SNOOZE_MAX_MINUTES):
        return (400, f"minutes must be 0 to {SNOOZE_MAX_MINUTES}")
    now, minutes = time.time(), int(text)
    snooze_id = f"snz_{canary.id}"
    previous = services.control.windows.get(snooze_id)
    record = WindowDefined(
        id=snooze_id,
        starts_at=now,
        created_at=now,
        changed_at=max(now, previous.changed_at if previous else now),
        ends_at=now + minutes * 60,
        canaries=[canary.id],
        comment=f"snoozed for {minutes} min by its ping URL",
        created_by="ping",
    )
    if await append_control(services, record) is not None:
        return (503, "the log did not acknowledge; not snoozed, retry later")
    return (200, "OK")


async def _body_message(receive: Receive, keep: int) -> str:
    """The body's first `keep` bytes as text, with a marker if there was more."""
    kept: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(PING_BODY_TIMEOUT_S):
            async for chunk in body_chunks(receive):
                if size < keep:
                    kept.append(chunk[: keep - size])
                size += len(chunk)
                if size > PING_BODY_DRAIN_MAX_BYTES:
                    break  # answered without reading more: still never a 400
    except (TimeoutError, ClientGone):
        pass  # what arrived is the message
    text = b"".join(kept).decode(errors="replace")
    if size <= keep:
        return text
    more = "+" if size > PING_BODY_DRAIN_MAX_BYTES else ""  # not read to its end
    return text + TRUNCATED.format(kept=f"{keep:,}", size=f"{size:,}{more}")


async def _answer(
    send: Send, method: str, status: int, text: str, headers: dict[str, str] | None = None
) -> None:
    count(CHECKINS, (_RESULTS.get(status, "other"),))
    body = text.encode()
    raw = [(b"content-type", TEXT), (b"content-length", b"%d" % len(body))]
    raw += [(b"access-control-allow-origin", b"*")]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


_RESULTS = {
    200: "accepted",
    201: "accepted",
    400: "invalid",
    404: "not_found",
    405: "not_allowed",
    409: "invalid",
    503: "unavailable",
}
