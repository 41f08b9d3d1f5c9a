"""Lingering close (as nginx and Apache do it): an answer given before the request's body was
all read (413 from Content-Length, 401 before the body, 408, a check-in's 400) must reach a
client that is still sending that body.

Closing a socket whose received data is unread makes the kernel send a reset instead of a
normal end; a blocking client (urllib, http.client, curl), still writing its body, then gets
EPIPE or ECONNRESET and never reads the answer already on its way (measured: 93 of 200 too-large
bodies sent with urllib, which asks for `Connection: close`). So when uvicorn closes such a
connection, this ends our side of it (FIN, the answer flushed first) and keeps reading and
discarding what the client sends, until the client closes, LINGER_MAX_BYTES or LINGER_S.

The normal path pays nothing but one indirection per transport call: a connection whose
request was read to its end is closed at once, as before. The same wrapper sends an answer's
head and body together (`_Transport`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A blocking client sends its whole body before it reads: on a working link the biggest
# body we refuse early (a bulk upload just over its 50 MB cap) arrives within these bounds;
# nothing lingers longer, whatever the client does.
LINGER_S = 10.0
LINGER_MAX_BYTES = 64 * 1024 * 1024
# A held write is joined with the next one (one send) below this size, else sent before it.
COALESCE_MAX_BYTES = 64 * 1024


class _Transport:
    """The connection's transport as uvicorn sees it: `close()` lingers when needed, and the
    writes of one turn of the event loop leave in one send.

    uvicorn writes an answer's head and its body in two calls: two send() system calls and
    two TCP segments per request, the API's largest single cost on small answers (py-spy under
    bench/checkins.py). The first write of a turn is held and goes out with the writes that
    follow it in the same turn (the body comes right after its head), or at the end of the
    turn: nothing waits longer than the callbacks already queued."""

    __slots__ = ("_held", "_protocol", "_raw")

    def __init__(self, raw: asyncio.Transport, protocol: LingeringHttpProtocol) -> None:
        self._raw = raw
        self._protocol = protocol
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._protocol.loop.call_soon(self.flush)
        else:
            self._held = None
            if len(data) < COALESCE_MAX_BYTES:
                self._raw.write(held + data)
            else:  # not worth a copy
                self._raw.write(held)
                self._raw.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._raw.is_closing():  # lost meanwhile: nobody to send it to
                self._raw.write(held)

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._raw.is_closing()

    def close(self) -> None:
        self.flush()
        self._protocol.close_lingering()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._raw.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        self.flush()  # whatever it is, it comes after what was written
        return getattr(self._raw, name)


class LingeringHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a lingering close (see the module's docstring)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._raw = transport
        self._body_unread = False  # a request's headers arrived, the end of its body did not
        self.lingering = False
        self._linger_budget = LINGER_MAX_BYTES
        self._linger_timer: asyncio.TimerHandle | None = None
        super().connection_made(_Transport(transport, self))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        self._body_unread = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._body_unread = False
        super().on_message_complete()

    def close_lingering(self) -> None:
        if self.lingering:
            return
        raw = self._raw
        if not self._body_unread or raw.is_closing():
            raw.close()
            return
        self.lingering = True
        if raw.can_write_eof():  # not under TLS: there the answer is simply left to be read
            raw.write_eof()
        raw.resume_reading()  # flow control may have paused it while the app did not read
        self._linger_timer = self.loop.call_later(LINGER_S, raw.close)

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)
            return
        self._linger_budget -= len(data)
        if self._linger_budget < 0:
            self._raw.close()

    def eof_received(self) -> None:
        # The client has sent all it will: the transport closes (nothing unread is left).
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self._body_unread = False  # uvicorn closes the transport here: really close it
        super().connection_lost(exc)
