"""Plain ASGI for the hot paths (ingest and check-ins), which skip FastAPI's routing and
request objects: on these small, frequent requests those cost more than the work itself
(measured with py-spy). Everything else goes to FastAPI (ingest_api.app.HotPathsFirst)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from schemas.errors import ClientGone

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
JSON = b"application/json"


def header(scope: Scope, name: bytes) -> str | None:
    """A request header (lower-case name), decoded as HTTP says: latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        event = await receive()
        if event["type"] != "http.request":
            raise ClientGone
        yield event.get("body", b"")
        if not event.get("more_body", False):
            return


async def respond(
    send: Send, status: int, body: bytes, headers: dict[str, str] | None = None, head: bool = False
) -> None:
    """A JSON answer; `head`: the same headers without the body."""
    sent = b"" if head else body
    raw = [(b"content-type", JSON), (b"content-length", str(len(sent)).encode())]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": sent})
