"""Reading a request body without ever holding more than the cap in memory, nor waiting for
it forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

# A client that sends its headers and then trickles (or stalls) its body would otherwise hold
# a connection and a task for as long as it likes (slowloris). 10 s is ample for 512 KB on any
# working link; bigger uploads do not exist on these routes.
BODY_TIMEOUT_S = 10.0


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    """The body did not arrive within BODY_TIMEOUT_S: 408."""


async def read_capped(
    declared_length: str | None,
    chunks: AsyncIterator[bytes],
    cap: int,
    timeout_s: float = BODY_TIMEOUT_S,
) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed cap bytes, or
    BodyTooSlow when it has not all arrived within `timeout_s`.

    A declared Content-Length over the cap is refused before a byte is read; a chunked (or
    lying) body is cut off at the first chunk that crosses the cap.
    """
    declared = declared_length or ""
    if declared.isascii() and declared.isdigit() and int(declared) > cap:  # "²".isdigit() too
        raise BodyTooLarge
    received = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                size += len(chunk)
                if size > cap:
                    raise BodyTooLarge
                received.append(chunk)
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(received)


async def read_prefix(
    declared_length: str | None,
    chunks: AsyncIterator[bytes],
    keep: int,
    cap: int,
    timeout_s: float = BODY_TIMEOUT_S,
) -> tuple[bytes, bool]:
    """The body's first `keep` bytes and whether that is all of it; the rest is read and
    dropped (a job piping its output sends more than a message holds, and must still be
    answered). BodyTooLarge past `cap` bytes (a declared length too, before any is read),
    BodyTooSlow as read_capped."""
    declared = declared_length or ""
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge
    received = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                if size < keep:
                    received.append(chunk[: keep - size])
                size += len(chunk)
                if size > cap:
                    raise BodyTooLarge
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(received), size <= keep
