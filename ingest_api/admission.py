"""One admission path for the two ways events come in: the normal lane (ingest_api.ingest,
the hot path) and the bulk lane (ingest_api.bulk). Every request goes the same way:

    auth → back-pressure → read → decode → budget → append → count

A lane says only what is its own: how large and how slow its body may be, how it decodes
it, what budget it charges, and how its events go onto the log. Everything else is here,
once, and so is the counting: a refused request is counted (runtime.metrics and the
rejections topic, ingest_api.rejections) where it is answered, under the same reason on
both lanes:

    401 unauthorized · 503 back-pressure overloaded · 413 too_large · 429 rate_limited
    400, 408 (the body did not arrive in time) and 415 (bulk: an encoding it cannot read)
    invalid

with the number of events it carried when they were decoded (0 when the body was never read
or could not be decoded). A 503 because the log did not acknowledge an append is not a
rejection (the client did nothing wrong; the log's own metrics tell). Events the log
acknowledged count as accepted (coalmine_events_accepted_total), on both lanes.

A lane is also the ASGI application of its path (`__call__`): the app mounts it as a plain
Starlette route, which answers other methods with 405 and redirects a trailing slash as any
route does, and ingest_api.app.HotPathsFirst hands it the POSTs directly, without FastAPI's
routing; ingest_api.openapi documents it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from ingest_api.asgi import ClientGone, Receive, Scope, Send, body_chunks, header, respond
from ingest_api.body import BODY_TIMEOUT_S, BodyTooLarge, BodyTooSlow, read_capped
from ingest_api.responses import error_body
from ingest_api.services import Services
from runtime.key_registry import ApiKey
from runtime.metrics import EVENTS_ACCEPTED, count
from schemas.errors import LogRestoring
from schemas.records import RejectReason

Answer = tuple[int, bytes, dict[str, str]]
Decoded = TypeVar("Decoded")
Charged = TypeVar("Charged")


class Refusal(NamedTuple):
    """A request refused before anything was appended: its answer, and how it is counted."""

    status: int
    body: bytes
    headers: dict[str, str]
    reason: RejectReason
    events: int = 0

    @property
    def answer(self) -> Answer:
        return self.status, self.body, self.headers


class Appended(NamedTuple):
    """The append step's outcome: the answer, the events the log acknowledged, and events
    the answer refuses (bulk: its bad lines, settled by this answer)."""

    answer: Answer
    accepted: int
    invalid: int = 0


def refusal(
    status: int,
    message: str,
    reason: RejectReason,
    headers: dict[str, str] | None = None,
    events: int = 0,
) -> Refusal:
    """A refusal in the error shape, {"error": "..."}."""
    return Refusal(status, error_body(message), headers or {}, reason, events)


class Lane(ABC, Generic[Decoded, Charged]):
    """What one way in has of its own; `admit` runs the steps."""

    path: ClassVar[str]
    max_bytes: ClassVar[int]
    reads_encoding: ClassVar[bool] = False  # whether `decode` is given Content-Encoding

    def body_timeout_s(self, services: Services) -> float:
        """How long the body may take to arrive."""
        return BODY_TIMEOUT_S

    @abstractmethod
    def too_large(self, detail: str) -> Refusal:
        """The 413 of a body over its cap (`detail`: which cap, when the decoding knows)."""

    @abstractmethod
    def decode(self, body: bytes, encoding: str | None) -> Decoded | Refusal:
        """The request's events, or why it is refused. Pure."""

    @abstractmethod
    def charge(
        self, services: Services, key: ApiKey, decoded: Decoded, now: float
    ) -> Charged | Refusal:
        """Take the events from the key's budget, or refuse them."""

    @abstractmethod
    async def append(
        self, services: Services, key: ApiKey, decoded: Decoded, charged: Charged, now_ms: int
    ) -> Appended:
        """Put the events on the log and say what became of them."""

    async def admit(
        self,
        services: Services,
        authorization: str | None,
        content_length: str | None,
        chunks: AsyncIterator[bytes],
        encoding: str | None = None,
    ) -> Answer:
        """One request, start to end: (status, JSON body, headers)."""
        # A known key is answered from memory; only an unknown one awaits the log (services).
        try:
            key = services.registry.authenticate(authorization, "ingest") or await services.key(
                authorization, "ingest"
            )
        except LogRestoring as exc:  # not a refusal of this key: nothing counted against it
            return refusal(503, str(exc), "overloaded", {"Retry-After": "1"}).answer
        if key is None:
            message = services.registry.ingest_refusal(authorization)
            return _counted(services, "", refusal(401, message, "unauthorized"))
        backpressure = services.backpressure
        refused = backpressure.refusal()
        if refused is not None:
            retry = {"Retry-After": str(backpressure.retry_after_s)}
            return _counted(services, key.id, refusal(503, refused, "overloaded", retry))
        timeout_s = self.body_timeout_s(services)
        try:
            body = await read_capped(content_length, chunks, self.max_bytes, timeout_s)
        except BodyTooLarge as exc:
            return _counted(services, key.id, self.too_large(str(exc)))
        except BodyTooSlow:
            return _counted(services, key.id, too_slow(timeout_s))
        decoded = self.decode(body, encoding)
        if isinstance(decoded, Refusal):
            return _counted(services, key.id, decoded)
        now_ms = time.time_ns() // 1_000_000
        charged = self.charge(services, key, decoded, now_ms / 1000)
        if isinstance(charged, Refusal):
            return _counted(services, key.id, charged)
        # In flight until the log answers: back-pressure bounds how many bodies are held.
        backpressure.in_flight += 1
        try:
            appended = await self.append(services, key, decoded, charged, now_ms)
        finally:
            backpressure.in_flight -= 1
        if appended.accepted:
            count(EVENTS_ACCEPTED, (), appended.accepted)
        if appended.invalid:
            services.rejections.count(key.id, "invalid", appended.invalid)
        return appended.answer

    async def handle(self, services: Services, scope: Scope, receive: Receive, send: Send) -> None:
        """The lane's POST as plain ASGI, without FastAPI's per-request cost."""
        try:
            status, body, headers = await self.admit(
                services,
                header(scope, b"authorization"),
                header(scope, b"content-length"),
                body_chunks(receive),
                header(scope, b"content-encoding") if self.reads_encoding else None,
            )
        except ClientGone:
            return
        await respond(send, status, body, headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As the app's route (a POST that did not come through HotPathsFirst)."""
        app: Any = scope["app"]
        await self.handle(app.state.services, scope, receive, send)


def too_slow(timeout_s: float) -> Refusal:
    """The 408 of a body that did not arrive in time, on either lane."""
    # The connection is closed: what is left of the body would be read as a request.
    message = f"the body did not arrive within {timeout_s:g}s"
    return refusal(408, message, "invalid", {"Connection": "close"})


def _counted(services: Services, key_id: str, refused: Refusal) -> Answer:
    services.rejections.count(key_id, refused.reason, refused.events)
    return refused.answer
