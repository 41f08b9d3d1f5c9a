"""Reading a request body without ever holding more than the cap in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator


class BodyTooLarge(Exception):
    pass


async def read_capped(declared_length: str | None, chunks: AsyncIterator[bytes], cap: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it is known to exceed cap bytes.

    A declared Content-Length over the cap is refused before a byte is read; a chunked (or
    lying) body is cut off at the first chunk that crosses the cap.
    """
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > cap:
        raise BodyTooLarge
    received = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge
        received.append(chunk)
    return b"".join(received)
