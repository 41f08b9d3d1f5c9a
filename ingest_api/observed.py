"""Every HTTP request of the API observed: a request id (in the log context and the
X-Request-Id response header) and a latency observation (runtime.metrics)."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable
from typing import Any

from ingest_api import asgi
from runtime.logging_setup import request_id
from runtime.metrics import observe_request

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

# New request ids: 16 hex digits, a random prefix of this process and a counter (unique
# without a random draw or a clock read per request).
_RID_PREFIX = secrets.token_hex(4)
_rid_counter = itertools.count(secrets.randbits(20))


def new_request_id() -> str:
    return f"{_RID_PREFIX}{next(_rid_counter) & 0xFFFFFFFF:08x}"


def incoming_request_id(scope: asgi.Scope) -> str:
    """The client's X-Request-Id when it is short and plain, else a new one."""
    given = asgi.header(scope, b"x-request-id")
    if given is not None and _SAFE_ID.match(given):
        return given
    return new_request_id()


_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}


class Observed:
    """An ASGI app wrapped with a request id (in the log context and the response's
    X-Request-Id header) and a latency observation per request. `route_of(scope)` names the
    route template once the request is handled."""

    def __init__(self, app: Any, route_of: Any) -> None:
        self.app, self.route_of = app, route_of

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        rid = incoming_request_id(scope)
        token = request_id.set(rid)
        status = 500
        header = (b"x-request-id", rid.encode())

        def tagged(message: dict[str, Any]) -> Awaitable[None]:
            # Not a coroutine of its own: `send`'s awaitable, returned (one frame less per send).
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            return send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            observe_request(
                self.route_of(scope),
                scope["method"],
                _STATUS_CLASS.get(status // 100) or f"{status // 100}xx",
                time.perf_counter() - started,
            )
            request_id.reset(token)
